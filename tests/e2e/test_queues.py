"""Pushes never wait behind e-mail: the split deployment of docs/deployment.md with real workers, one on
`realtime`, one on `email` and `periodic`, and an SMTP server that accepts the e-mail and never answers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from accounts import tokens
from orders.states import Status
from tests.e2e.holds import DELIVERY_TIMEOUT, SilentSmtpServer, change
from tests.e2e.resuming_client import ResumingClient, in_thread, wait_until_delivered
from tests.helpers import make_order

pytestmark = pytest.mark.e2e

EMAIL_TIMEOUT_SECONDS = 12


def wait_until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


async def test_a_push_is_delivered_while_an_email_hangs_on_a_silent_smtp_server(
    alice: Any, staff: Any, start_server: Any, start_worker: Any
) -> None:
    with SilentSmtpServer() as smtp:
        env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port), "EMAIL_USE_TLS": "false",
               "EMAIL_TIMEOUT": str(EMAIL_TIMEOUT_SECONDS)}
        order = await in_thread(make_order, alice)
        server = await asyncio.to_thread(start_server, env=env)
        pusher = await asyncio.to_thread(start_worker, env=env, name="pusher", queues=["realtime"])
        mailer = await asyncio.to_thread(start_worker, env=env, name="mailer", queues=["email", "periodic"],
                                         concurrency=1)
        # Staff watch the order; alice has no socket open, so each change is also e-mailed to her.
        staff_client = ResumingClient(server.ws, await in_thread(tokens.issue_access_token, staff), {order.pk: 1})
        await staff_client.start()
        try:
            await change(order, Status.CONFIRMED, staff)
            assert await wait_until_delivered([staff_client], {order.pk: [2]}, DELIVERY_TIMEOUT)
            await asyncio.to_thread(wait_until, lambda: smtp.accepted >= 1, "the mailer connects to SMTP")
            await asyncio.to_thread(mailer.wait_for_log, "email_order_update[", 30)  # it holds the e-mail task

            started = time.monotonic()
            await change(order, Status.PREPARING, staff)  # its e-mail queues behind the one that hangs
            assert await wait_until_delivered([staff_client], {order.pk: [2, 3]}, DELIVERY_TIMEOUT)
            delivered_after = time.monotonic() - started
            assert smtp.still_open >= 1, "the first e-mail should still be waiting for the SMTP greeting"
            assert "succeeded" not in "".join(line for line in mailer.log.splitlines() if "email_order_update[" in line)
            # The e-mail's own bound: smtplib gives up at EMAIL_TIMEOUT and the task is retried later.
            await asyncio.to_thread(mailer.wait_for_log, "retry: Retry in", EMAIL_TIMEOUT_SECONDS + 15)
            assert time.monotonic() - started < EMAIL_TIMEOUT_SECONDS + 15
        finally:
            await staff_client.stop()
        print(f"\npush delivered {delivered_after:.2f} s after the change, the e-mail still hanging on SMTP")
        assert delivered_after < EMAIL_TIMEOUT_SECONDS / 2
        assert staff_client.accepted == {order.pk: [2, 3]}
        # (A task's log lines name it with its id in brackets; the start-up banner lists every task without.)
        assert "email_order_update[" not in pusher.log and "send_order_update[" not in mailer.log
