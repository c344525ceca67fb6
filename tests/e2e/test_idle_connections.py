"""An idle socket stays open and live: Redis client timeouts must not drop quiet customers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from accounts import tokens
from orders import services
from orders.models import Order

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 12  # more than two of channels_redis's 5 s blocking pops and redis-py's 5 s default timeout


async def test_idle_socket_stays_open_and_still_receives(alice: Any, staff: Any, alice_order: Order,
                                                         start_server: Any, start_worker: Any) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    token = tokens.issue_access_token(alice)
    async with connect(f"{server.ws}/ws/orders/{alice_order.pk}/", subprotocols=["bearer", token],
                       origin=server.http, ping_interval=None) as ws:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), timeout=IDLE_SECONDS)
        await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
        # Still open after the frame: a server-side Redis timeout would have closed it (1011).
        assert ws.close_code is None
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5))["type"] == "pong"
    assert (frame["seq"], frame["status"]) == (2, "confirmed")
    assert "Traceback" not in server.log
