"""In-band token refresh: a socket opened with an access token takes a fresh one ({"type": "auth"}) and is not
closed at the old one's expiry; a bad token, or another user's, closes it with 4001 `token refused`."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts import tokens
from tests.realtime.sockets import Socket, communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def closed_with(socket: Socket) -> tuple[int, str]:
    while True:
        message = await socket.comm.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            return message["code"], message.get("reason", "")


async def test_a_refreshed_socket_outlives_its_first_tokens_expiry(alice: Any, settings: Any) -> None:
    settings.JWT_ACCESS_LIFETIME = timedelta(seconds=2)
    socket = await Socket.open("/ws/notifications/", alice)  # its token expires in 2 s
    settings.JWT_ACCESS_LIFETIME = timedelta(minutes=15)
    fresh = await database_sync_to_async(tokens.issue_access_token)(alice)
    await socket.send({"type": "auth", "token": fresh})
    ok = await socket.next("auth.ok")
    assert ok["exp"] == tokens.decode_token(fresh, expected_type=tokens.ACCESS)["exp"] > time.time() + 600
    await asyncio.sleep(3)  # past the first token's expiry
    await socket.ping()  # still open: the pong came
    await socket.close()


async def test_without_a_refresh_the_socket_closes_at_expiry_as_before(alice: Any, settings: Any) -> None:
    """The control: the same short token, not refreshed, is closed with 4001 `token expired`."""
    settings.JWT_ACCESS_LIFETIME = timedelta(seconds=2)
    socket = await Socket.open("/ws/notifications/", alice)
    assert await closed_with(socket) == (4001, "token expired")


@pytest.mark.parametrize("bad", ["not-a-token", None, "other-user"])
async def test_a_bad_token_or_another_users_closes_the_socket(alice: Any, bob: Any, bad: str | None) -> None:
    socket = await Socket.open("/ws/notifications/", alice)
    token: Any = bad
    if bad == "other-user":
        token = await database_sync_to_async(tokens.issue_access_token)(bob)
    await socket.send({"type": "auth", "token": token})
    assert await closed_with(socket) == (4001, "token refused")


async def test_a_session_socket_has_no_token_to_refresh(alice: Any) -> None:
    comm = communicator("/ws/notifications/", headers=[await database_sync_to_async(session_cookie)(alice)])
    socket = Socket(comm)
    assert (await comm.connect())[0]
    fresh = await database_sync_to_async(tokens.issue_access_token)(alice)
    await socket.send({"type": "auth", "token": fresh})
    assert (await socket.next("error"))["code"] == "auth_not_accepted"
    await socket.ping()  # still open
    await socket.close()
