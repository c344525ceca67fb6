"""The servers themselves refuse a WebSocket message over WS_MAX_FRAME_BYTES, before reading it in: real uvicorn
(which negotiates no compression, so a message costs on the wire what it costs the server) and real daphne, started as
in production."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from accounts import tokens
from tests.e2e.processes import Server

pytestmark = pytest.mark.e2e

MESSAGE_TOO_BIG = 1009  # RFC 6455: the server refused a message it will not read
# uvicorn closes with 1009; daphne (autobahn's failByDrop) drops the connection on any protocol failure, this one
# included: no close frame, which the client sees as 1006. Either way the app never sees the message.
REFUSAL = {"uvicorn": MESSAGE_TOO_BIG, "daphne": None}


async def closed_with(ws: Any) -> int | None:
    """The close code the server sent, or None if it dropped the connection without one."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
async def test_a_message_over_the_frame_limit_is_refused_by_the_server_and_one_at_it_is_read(
    server_kind: str, alice: Any, start_server: Callable[..., Server]
) -> None:
    server = await asyncio.to_thread(start_server, server=server_kind)
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    url = f"{server.ws}/ws/notifications/"
    limit = settings.WS_MAX_FRAME_BYTES
    async with connect(url, subprotocols=["bearer", token], origin=server.http, max_size=None) as ws:
        # Exactly at the limit: the server reads it and the app answers (it is not JSON); the socket stays open.
        await ws.send("x" * limit)
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["code"] == "bad_json"
        # One byte over, in a message that deflates to almost nothing: before the fix uvicorn inflated up to
        # 16 MiB and daphne read up to 1 MiB, and only then did the app close with 4009.
        await ws.send("x" * (limit + 1))
        assert await closed_with(ws) == REFUSAL[server_kind]


async def test_a_client_offering_deflate_gets_none_and_a_large_message_is_still_refused(
    alice: Any, start_server: Callable[..., Server]
) -> None:
    """Browsers offer permessage-deflate; our frames are ~250 bytes, so it saves little and costs each socket ~40 KiB
    of compressor state (docs/performance.md), and it is how a 10 MiB message once cost 10 KB on the wire: uvicorn
    runs with --ws-per-message-deflate false."""
    server = await asyncio.to_thread(start_server)
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", token], origin=server.http,
                       max_size=None, compression="deflate") as ws:
        assert "permessage-deflate" not in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        await ws.send(json.dumps({"type": "message", "text": "x" * 2**20}))
        assert await closed_with(ws) == MESSAGE_TOO_BIG
        # The server is fine: the next socket is served.
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", token], origin=server.http) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


async def test_daphne_reads_a_message_sent_in_small_frames_and_the_app_closes_it_with_4009(
    alice: Any, start_server: Callable[..., Server]
) -> None:
    # daphne's message limit stays 1 MiB (it caps what daphne sends too, worker/processes.py): a message in frames
    # each within the limit reaches the app, whose own check is the second line.
    server = await asyncio.to_thread(start_server, server="daphne")
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    limit = settings.WS_MAX_FRAME_BYTES
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", token], origin=server.http) as ws:
        await ws.send(iter(["x" * limit] * 4))
        assert await closed_with(ws) == 4009
