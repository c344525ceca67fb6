"""Tracking tokens never reach the real servers' logs: not from the page's URL (daphne's access log, Django's
"Not Found" line), nor from the socket's subprotocol."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect

from integrations import tracking
from orders.models import Order

pytestmark = pytest.mark.e2e


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
async def test_real_servers_never_log_a_tracking_token(
        alice_order: Order, start_server: Any, server_kind: str) -> None:
    server = await asyncio.to_thread(start_server, server=server_kind, env={"LOG_LEVEL": "DEBUG"})
    token = await asyncio.to_thread(tracking.tracking_token, alice_order)
    bad = token[:-4] + "AAAA"
    assert await asyncio.to_thread(get_status, f"{server.http}/t/{token}") == 200
    assert await asyncio.to_thread(get_status, f"{server.http}/t/{bad}") == 404
    async with connect(f"{server.ws}/ws/orders/{alice_order.pk}/", origin=server.http,
                       subprotocols=["tracking", token]) as ws:
        assert ws.subprotocol == "tracking"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"type": "pong"}
    await asyncio.sleep(0.5)
    server.stop()
    log = server.log
    assert "/t/[redacted]" in log, "the server logged nothing about the page; the check would be empty"
    signature = token.rsplit(".", 1)[1]
    assert signature not in log and bad.rsplit(".", 1)[1] not in log


async def test_uvicorn_logs_its_startup_but_not_every_sockets_open_and_close(
        alice_order: Order, start_server: Any) -> None:
    """config.logs.DropSocketLifecycle: a line per socket says nothing the metrics do not and cost CPU per
    handshake; the startup lines that ops (and tests) wait for still pass."""
    server = await asyncio.to_thread(start_server, server="uvicorn", env={"LOG_LEVEL": "INFO"})
    token = await asyncio.to_thread(tracking.tracking_token, alice_order)
    for _ in range(3):
        async with connect(f"{server.ws}/ws/orders/{alice_order.pk}/", origin=server.http,
                           subprotocols=["tracking", token]) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"type": "pong"}
    await asyncio.sleep(0.5)
    server.stop()
    log = server.log
    assert "Application startup complete" in log, log
    assert "connection open" not in log and "connection closed" not in log, log
