"""A socket to a path no endpoint serves is refused cleanly before the handshake, by both servers: never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from accounts import tokens

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("server_kind", "status"), [("uvicorn", 404), ("daphne", 403)])
@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/orders/abc/"])
async def test_an_unknown_socket_path_is_refused_without_a_server_error(
    server_kind: str, status: int, path: str, alice: Any, start_server: Any
) -> None:
    server = await asyncio.to_thread(start_server, server=server_kind)
    token = tokens.issue_access_token(alice)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{server.ws}{path}", subprotocols=["bearer", token], origin=server.http):
            pass
    assert refused.value.response.status_code == status
    if status == 404:
        assert json.loads(refused.value.response.body) == {"detail": "No such WebSocket endpoint."}
    # The known endpoints still answer.
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", token], origin=server.http) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
    assert "Traceback" not in server.log, server.log[-3000:]
