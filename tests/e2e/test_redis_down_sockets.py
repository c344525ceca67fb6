"""A socket opened while the server cannot reach Redis is closed cleanly with 1013, not dropped by a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts import tokens
from realtime import consumers
from tests.e2e.processes import RedisServer
from tests.helpers import make_order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def close_of(url: str, token: str, origin: str) -> tuple[int | None, str]:
    async with connect(url, subprotocols=["bearer", token], origin=origin, open_timeout=10) as ws:
        try:
            await ws.send(json.dumps({"type": "ping"}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if frame == {"type": "pong"}:
                    return None, "open"
        except ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "no close frame")


async def test_a_socket_opened_while_redis_is_down_is_closed_with_1013_and_served_once_redis_is_back(
    alice: Any, private_redis: RedisServer, start_process: Any, start_server: Any,
) -> None:
    order = await asyncio.to_thread(make_order, alice)
    server = await asyncio.to_thread(
        start_server, env={"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url})
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    url = f"{server.ws}/ws/orders/{order.pk}/"
    assert await close_of(url, token, server.http) == (None, "open")

    private_redis.stop()
    for path in (f"/ws/orders/{order.pk}/", "/ws/notifications/", f"/ws/orders/{order.pk}/chat/"):
        code, reason = await close_of(f"{server.ws}{path}", token, server.http)
        assert (code, reason) == (consumers.CLOSE_TRY_AGAIN_LATER, consumers.SERVER_UNAVAILABLE), path

    start_process(RedisServer(port=private_redis.port)).wait_ready()
    # As a client would: retry with a delay; the server's first use of a stale Redis connection may fail once.
    answers = []
    for _ in range(10):
        answers.append(await close_of(url, token, server.http))
        if answers[-1] == (None, "open"):
            break
        await asyncio.sleep(1)
    assert answers[-1] == (None, "open"), answers
    assert set(answers[:-1]) <= {(consumers.CLOSE_TRY_AGAIN_LATER, consumers.SERVER_UNAVAILABLE)}, answers
