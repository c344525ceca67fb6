"""Helpers for consumer tests: an application communicator with an allowed Origin, tokens, eager Celery."""

from __future__ import annotations

from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import Client

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

