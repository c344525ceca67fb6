"""Presence and the e-mail fallback across real processes: the server tracks watchers in Redis, staff see them
live, and the celery worker e-mails a status change only when the customer has no socket open."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from accounts import tokens
from orders import services
from orders.models import Order
from tests.e2e.processes import Process

pytestmark = pytest.mark.e2e


async def next_of_type(ws: ClientConnection, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == frame_type:
            return frame


def pushes_done(worker: Process) -> int:
    return sum(1 for line in worker.log.splitlines() if "send_order_update[" in line and "succeeded" in line)


async def wait_for_pushes(worker: Process, count: int) -> None:
    deadline = time.monotonic() + 15
    while pushes_done(worker) < count:
        assert time.monotonic() < deadline, f"the worker did not finish push {count}:\n{worker.log[-2000:]}"
        await asyncio.sleep(0.1)


async def test_staff_see_watchers_live_and_only_an_offline_customer_is_emailed(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any
) -> None:
    # platform_env hands the children this test's presence key prefix, so they share its presence.
    server = await asyncio.to_thread(start_server)
    # Production sends no mail without EMAIL_HOST; the console backend shows each message in the worker's output.
    console = {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    worker = await asyncio.to_thread(start_worker, env=console)
    path = f"{server.ws}/ws/orders/{alice_order.pk}/"
    staff_token, alice_token = tokens.issue_access_token(staff), tokens.issue_access_token(alice)

    async with connect(path, subprotocols=["bearer", staff_token], origin=server.http) as staff_ws:
        assert [w["user"] for w in (await next_of_type(staff_ws, "presence"))["watchers"]] == ["staff"]
        async with connect(path, subprotocols=["bearer", alice_token], origin=server.http) as alice_ws:
            presence = await next_of_type(staff_ws, "presence")
            assert [w["user"] for w in presence["watchers"]] == ["staff", "alice"]

            before = pushes_done(worker)
            await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
            assert (await next_of_type(alice_ws, "order.status"))["status"] == "confirmed"
            await wait_for_pushes(worker, before + 1)  # the e-mail decision is taken by then

        assert [w["user"] for w in (await next_of_type(staff_ws, "presence"))["watchers"]] == ["staff"]
        await asyncio.to_thread(services.change_status, order=alice_order, to="preparing", actor=staff)
        # The console e-mail backend writes the message to the worker's output.
        await asyncio.to_thread(worker.wait_for_log, f"Subject: Order {alice_order.number}: Preparing", 15)
        assert f"Subject: Order {alice_order.number}: Confirmed" not in worker.log
        assert "To: alice@example.com" in worker.log
