"""Token logins outlive Redis: an emptied Redis, a stopped Redis and a database that briefly does not answer
(real server processes, a private redis-server, a cut TCP path to PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis
from channels.db import database_sync_to_async
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect

from accounts import tokens
from accounts.models import EndReason
from tests.e2e.processes import RedisServer, Server
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def call(method: str, url: str, body: Any = None, access: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if access:
        headers["Authorization"] = f"Bearer {access}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read().decode() or "null")


async def open_token_socket(server: Server, access: str) -> ClientConnection:
    ws = await connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", access], origin=server.http,
                       ping_interval=None)
    await ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
    return ws


async def wait_for_log(server: Server, text: str, timeout: float = 30) -> None:
    await asyncio.to_thread(server.wait_for_log, text, timeout)



async def close_code(ws: ClientConnection, timeout: float) -> int | None:
    """The close code the server sends within `timeout` (frames before it are skipped), or None if it stays open."""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.wait_for(ws.recv(), left)
    except TimeoutError:
        return None
    except Exception:  # noqa: BLE001 - websockets raises ConnectionClosed* on the close we are waiting for
        assert ws.close_code is not None
        return ws.close_code
    return None


async def test_a_token_login_refreshes_after_redis_is_emptied(alice: Any, start_server: Any,
                                                               private_redis: RedisServer) -> None:
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    pair = await database_sync_to_async(tokens.start_session)(alice)
    redis.Redis.from_url(private_redis.url).flushall()

    status, renewed = await asyncio.to_thread(call, "POST", f"{server.http}/api/auth/refresh/",
                                              {"refresh": pair.refresh})
    assert status == 200, renewed
    status, body = await asyncio.to_thread(call, "GET", f"{server.http}/api/orders/", access=renewed["access"])
    assert status == 200, body


async def test_with_redis_stopped_token_reads_refreshes_and_logouts_work(
    alice: Any, start_server: Any, private_redis: RedisServer
) -> None:
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    pair = await database_sync_to_async(tokens.start_session)(alice)
    private_redis.stop()

    status, body = await asyncio.to_thread(call, "GET", f"{server.http}/api/orders/", access=pair.access)
    assert status == 200, body
    status, renewed = await asyncio.to_thread(call, "POST", f"{server.http}/api/auth/refresh/",
                                              {"refresh": pair.refresh})
    assert status == 200, renewed
    status, body = await asyncio.to_thread(call, "POST", f"{server.http}/api/auth/logout/",
                                           {"refresh": renewed["refresh"]})
    assert status == 204, body
    status, body = await asyncio.to_thread(call, "GET", f"{server.http}/api/orders/", access=renewed["access"])
    assert status == 401, body
    # A password login is what the throttle guards: without its counters it is refused, and says so.
    status, body = await asyncio.to_thread(call, "POST", f"{server.http}/api/auth/token/",
                                           {"username": "alice", "password": "whatever"})
    assert status == 503, body


async def test_an_open_socket_stays_while_the_database_does_not_answer_and_closes_once_revoked(
    alice: Any, start_server: Any
) -> None:
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).start()
    try:
        database_url = f"postgres://{db['USER'] or 'postgres'}@127.0.0.1:{proxy.port}/{db['NAME']}"
        server = await asyncio.to_thread(start_server, env={
            "DATABASE_URL": database_url, "DATABASE_POOL_TIMEOUT": "2", "WS_REAUTH_INTERVAL_SECONDS": "1"})
        pair = await database_sync_to_async(tokens.start_session)(alice)
        ws = await open_token_socket(server, pair.access)

        proxy.cut()
        await wait_for_log(server, "Credentials not re-checked, database unavailable")
        assert await close_code(ws, timeout=2.5) is None, "an unanswered re-check is not a revocation"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}

        proxy.restore()
        await database_sync_to_async(tokens.end_all_sessions)(alice, EndReason.LOGOUT_EVERYWHERE)
        assert await close_code(ws, timeout=20) == 4001, "re-checks resume once the database answers"
    finally:
        proxy.stop()
