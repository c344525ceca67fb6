"""Socket hardening: ?token= off in production, a cap on sockets per user, and open sockets closed when their
credentials are revoked (logout, session ended, user deactivated)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from accounts import tokens
from tests.helpers import login, post_json
from tests.realtime.sockets import communicator, refused_with, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def setting_in_fresh_process(name: str, env: dict[str, str]) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    base = {key: value for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "WS_ALLOW_QUERY_TOKEN", "REDIS_SENTINELS")}
    result = subprocess.run([sys.executable, "-c", code], env={
        **base, "DJANGO_SETTINGS_MODULE": "config.settings", "QUIET_EMBEDDED_WARNING": "1", **env,
    }, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_query_tokens_are_off_in_production_and_on_in_embedded_mode() -> None:
    production = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test", "REDIS_URL": "redis://127.0.0.1:6379/3",
                  "SECRET_KEY": "test-only-" + "0123456789abcdef" * 4}
    assert setting_in_fresh_process("WS_ALLOW_QUERY_TOKEN", production) == "False"
    assert setting_in_fresh_process("WS_ALLOW_QUERY_TOKEN", {**production, "WS_ALLOW_QUERY_TOKEN": "true"}) == "True"
    assert setting_in_fresh_process("WS_ALLOW_QUERY_TOKEN", {}) == "True"


async def test_a_disabled_query_token_is_refused_even_alongside_a_session_cookie(alice: Any, settings: Any) -> None:
    settings.WS_ALLOW_QUERY_TOKEN = False
    token = await database_sync_to_async(tokens.issue_access_token)(alice)
    cookie = await database_sync_to_async(session_cookie)(alice)
    assert (await refused_with(communicator(f"/ws/notifications/?token={token}", headers=[cookie])))["code"] == 4001
    assert (await refused_with(communicator(f"/ws/notifications/?token={token}")))["code"] == 4001


async def open_bearer(user: Any, path: str = "/ws/notifications/") -> Any:
    token = await database_sync_to_async(tokens.issue_access_token)(user)
    comm = communicator(path, subprotocols=["bearer", token])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def test_one_socket_over_the_per_user_cap_is_closed_with_4008_and_a_reason(
    alice: Any, bob: Any, settings: Any
) -> None:
    settings.WS_MAX_CONNECTIONS_PER_USER = 2
    first, second = await open_bearer(alice), await open_bearer(alice)
    third = await open_bearer(alice)
    closed = await third.receive_output(timeout=3)
    await third.disconnect()
    assert (closed["type"], closed["code"], closed["reason"]) == ("websocket.close", 4008, "too many connections")
    bob_socket = await open_bearer(bob)
    await bob_socket.send_json_to({"type": "ping"})
    assert await bob_socket.receive_json_from(timeout=3) == {"type": "pong"}

    # Closing one frees its slot at once.
    await first.disconnect()
    fourth = await open_bearer(alice)
    await fourth.send_json_to({"type": "ping"})
    assert await fourth.receive_json_from(timeout=3) == {"type": "pong"}
    for comm in (second, fourth, bob_socket):
        await comm.disconnect()


async def test_the_cap_counts_every_kind_of_socket_of_the_user(alice: Any, alice_order: Any, settings: Any) -> None:
    settings.WS_MAX_CONNECTIONS_PER_USER = 2
    stream = await open_bearer(alice)
    order_socket = await open_bearer(alice, f"/ws/orders/{alice_order.pk}/")
    chat = await open_bearer(alice, f"/ws/orders/{alice_order.pk}/chat/")
    assert (await chat.receive_output(timeout=3))["code"] == 4008
    await chat.disconnect()
    for comm in (stream, order_socket):
        await comm.disconnect()


async def test_logout_closes_that_sessions_open_sockets_with_4001(alice: Any, settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 1
    client = Client()
    phone = await database_sync_to_async(login)(client, "alice")
    laptop = await database_sync_to_async(login)(client, "alice")
    phone_ws = communicator("/ws/notifications/", subprotocols=["bearer", phone["access"]])
    laptop_ws = communicator("/ws/notifications/", subprotocols=["bearer", laptop["access"]])
    assert (await phone_ws.connect())[0] and (await laptop_ws.connect())[0]

    response = await database_sync_to_async(post_json)(client, "/api/auth/logout/", {"refresh": phone["refresh"]})
    assert response.status_code == 204
    closed = await phone_ws.receive_output(timeout=5)
    await phone_ws.disconnect()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4001)
    await laptop_ws.send_json_to({"type": "ping"})
    assert await laptop_ws.receive_json_from(timeout=3) == {"type": "pong"}
    await laptop_ws.disconnect()


async def test_a_session_socket_closes_when_the_session_is_logged_out(alice: Any, settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 1
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    comm = communicator("/ws/notifications/", headers=[cookie])
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await database_sync_to_async(client.logout)()
    closed = await comm.receive_output(timeout=5)
    await comm.disconnect()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4001)


async def test_a_user_deactivated_while_connected_is_closed_with_4001(alice: Any, settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 1
    comm = await open_bearer(alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    closed = await comm.receive_output(timeout=5)
    await comm.disconnect()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4001)
