"""A test socket that knows when the server finished its connect work, and picks frames by type."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from accounts import tokens
from tests.realtime.conftest import communicator


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
