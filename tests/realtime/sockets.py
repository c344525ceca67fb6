"""Consumer-test helpers: an application communicator with an allowed Origin, a session cookie, close codes, and a
test socket that knows when the server finished its connect work and picks frames by type."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts import tokens
from config.asgi import application
from tests.twofactor import force_login_verified

ORIGIN = (b"origin", b"http://localhost")


def communicator(path: str, *, headers: list[tuple[bytes, bytes]] | None = None,
                 subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[ORIGIN, *(headers or [])], subprotocols=subprotocols)


def session_cookie(user: Any) -> tuple[bytes, bytes]:
    client = Client()
    force_login_verified(client, user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def connect_ok(comm: WebsocketCommunicator) -> None:
    connected, _ = await comm.connect()
    assert connected


async def close_code(comm: WebsocketCommunicator) -> int:
    """Connect and return the close code the server sends straight after accepting."""
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_output(timeout=3)
    assert message["type"] == "websocket.close", message
    # As a server does after a close: deliver websocket.disconnect so the consumer finishes now, not when
    # the test's event loop is torn down (where cancelling its channel-layer receive can stall).
    await comm.disconnect(code=message["code"])
    return message["code"]


async def refused_with(comm: Any) -> dict[str, Any]:
    """Connect, read the close the server sends right after accepting, then disconnect as a real server would
    (an app left waiting on the channel layer slows the event loop's teardown)."""
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_output(timeout=3)
    await comm.disconnect()
    assert message["type"] == "websocket.close", message
    return message


async def bearer_subprotocols(user: Any) -> list[str]:
    """The bearer subprotocol pair carrying a fresh access token for `user`."""
    return ["bearer", await database_sync_to_async(tokens.issue_access_token)(user)]


class Socket:
    """A WebsocketCommunicator whose frames of other types are kept for later instead of failing a test."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.kept: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, path: str, user: Any) -> Socket:
        """Connect as `user` (bearer token) and wait until the consumer's connect work is done."""
        token = await database_sync_to_async(tokens.issue_access_token)(user)
        socket = cls(communicator(path, subprotocols=["bearer", token]))
        assert (await socket.comm.connect())[0]
        await socket.ping()
        return socket

    async def ping(self) -> None:
        """A ping is answered only after every earlier frame was handled: a barrier, and a heartbeat."""
        await self.comm.send_json_to({"type": "ping"})
        await self.next("pong")

    async def send(self, frame: dict[str, Any]) -> None:
        await self.comm.send_json_to(frame)

    async def next(self, frame_type: str, timeout: float = 3) -> dict[str, Any]:
        for i, frame in enumerate(self.kept):
            if frame["type"] == frame_type:
                return self.kept.pop(i)
        while True:
            frame = await self.comm.receive_json_from(timeout=timeout)
            if frame["type"] == frame_type:
                return frame
            self.kept.append(frame)

    async def nothing_of(self, frame_type: str, timeout: float = 0.3) -> bool:
        """True if no frame of `frame_type` is waiting or arrives within `timeout`."""
        if any(frame["type"] == frame_type for frame in self.kept):
            return False
        while not await self.comm.receive_nothing(timeout=timeout):
            frame = await self.comm.receive_json_from(timeout=timeout)
            if frame["type"] == frame_type:
                return False
            self.kept.append(frame)
        return True

    async def close(self) -> None:
        await self.comm.disconnect()
