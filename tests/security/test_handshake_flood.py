"""Handshake floods against a real uvicorn, alone and behind the real deploy/nginx.conf: the flooding address is
held to its handshake budget, handshakes without credentials (or with a session key that cannot exist) touch no
database, and a good client on another address is served meanwhile."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts import tokens
from orders.models import Order
from tests.e2e.processes import Nginx, Process, Server, free_port, own_origins

pytestmark = pytest.mark.e2e

# The production defaults (config/settings.py), spelled out: the e2e environment lifts them for its load tests.
PRODUCTION_LIMITS = {"WS_HANDSHAKES_PER_SECOND_PER_IP": "10", "WS_HANDSHAKE_BURST_PER_IP": "50",
                     "WS_HANDSHAKES_PER_SECOND": "200", "WS_HANDSHAKE_BURST": "400"}
PER_IP_RATE, PER_IP_BURST = 10, 50  # nginx's zone for /ws/ has the same figures (deploy/nginx.conf)
FLOOD_HANDSHAKES = 600
FLOOD_CONCURRENCY = 40
GOOD_CLIENT_BOUND_SECONDS = 3.0  # socket open and pong received, on a loaded two-core machine
GOOD_ADDRESS = "127.0.0.2"  # loopback has all of 127/8: the good client is another address than the flood's


def junk_key(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def junk_kind(index: int) -> dict[str, Any]:
    """Handshake options of one flood attempt, in turn: nothing, a malformed session cookie, a well-formed session
    key no session has, a garbage bearer token."""
    kind = index % 4
    if kind == 0:
        return {}
    if kind == 1:
        return {"additional_headers": {"Cookie": "sessionid=" + junk_key(string.ascii_letters + "+/=", 40)}}
    if kind == 2:
        return {"additional_headers": {"Cookie": "sessionid=" + junk_key(string.ascii_lowercase + string.digits, 32)}}
    return {"subprotocols": ["bearer", junk_key(string.ascii_letters, 200)]}


async def one_junk_handshake(url: str, origin: str, index: int) -> str:
    """What the server answered: `http <status>` during the handshake, or `close <code>` after accepting."""
    try:
        async with connect(url, origin=origin, open_timeout=30, **junk_kind(index)) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 30)
            except ConnectionClosed as closed:
                return f"close {closed.rcvd.code if closed.rcvd else None}"
            return "served"
    except InvalidStatus as refused:
        return f"http {refused.response.status_code}"


def flood(url: str, origin: str, outcomes: Counter[str], done: threading.Event) -> None:
    """FLOOD_HANDSHAKES junk handshakes, FLOOD_CONCURRENCY at a time, on an event loop of their own (a thread), so
    the good client's loop in the test is not the one busy with them."""

    async def run() -> None:
        queue = iter(range(FLOOD_HANDSHAKES))

        async def worker() -> None:
            for index in queue:
                outcomes[await one_junk_handshake(url, origin, index)] += 1

        await asyncio.gather(*(worker() for _ in range(FLOOD_CONCURRENCY)))

    try:
        asyncio.run(run())
    finally:
        done.set()


async def good_client_round_trip(url: str, origin: str, token: str) -> float:
    started = time.monotonic()
    async with connect(url, origin=origin, subprotocols=["bearer", token], local_addr=(GOOD_ADDRESS, 0),
                       open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 30)) != {"type": "pong"}:
            pass
    return time.monotonic() - started


async def flood_while_a_good_client_connects(ws_base: str, origin: str, order: Order, token: str,
                                             ) -> tuple[Counter[str], list[float], float]:
    outcomes: Counter[str] = Counter()
    done = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=flood, args=(f"{ws_base}/ws/notifications/", origin, outcomes, done))
    thread.start()
    round_trips: list[float] = []
    try:
        while not done.is_set() or not round_trips:
            round_trips.append(await good_client_round_trip(f"{ws_base}/ws/orders/{order.pk}/", origin, token))
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(thread.join, 120)
    return outcomes, round_trips, time.monotonic() - started


def admitted(outcomes: Counter[str]) -> int:
    return sum(count for outcome, count in outcomes.items() if not outcome.startswith("http 429"))


async def test_a_handshake_flood_from_one_address_is_held_to_its_budget_and_a_good_client_is_served(
    alice: Any, alice_order: Order, start_server: Callable[..., Server]
) -> None:
    server = await asyncio.to_thread(start_server, env=PRODUCTION_LIMITS)  # no nginx: the process's own limits
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    outcomes, round_trips, elapsed = await flood_while_a_good_client_connects(server.ws, server.http, alice_order,
                                                                              token)
    assert sum(outcomes.values()) == FLOOD_HANDSHAKES, outcomes
    # Without the limit every one of them was accepted and closed 4001, each after a trip to the database thread.
    assert admitted(outcomes) <= PER_IP_BURST + PER_IP_RATE * elapsed + 5, (outcomes, elapsed)
    assert set(outcomes) <= {"http 429", "close 4001"}, outcomes
    assert max(round_trips) < GOOD_CLIENT_BOUND_SECONDS, round_trips
    # At least twice: the flood ends sooner once the budget is spent, and after another test in the session it
    # did, leaving time for two connections (each answered in well under a second).
    assert len(round_trips) >= 2, "the good client should have connected while the flood ran"


async def test_behind_nginx_the_flood_is_held_at_the_edge_and_a_good_client_is_served(
    alice: Any, alice_order: Order, start_server: Callable[..., Server], start_process: Callable[..., Process],
    tmp_path: Path,
) -> None:
    edge_port = free_port()
    # The app's own limits lifted: what holds the flood here is nginx's limit_req on /ws/.
    server = await asyncio.to_thread(start_server, env=own_origins(edge_port))
    edge = start_process(Nginx(server.port, tmp_path, port=edge_port)).wait_ready()
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    outcomes, round_trips, elapsed = await flood_while_a_good_client_connects(
        edge.http.replace("http://", "ws://"), edge.http, alice_order, token)
    assert sum(outcomes.values()) == FLOOD_HANDSHAKES, outcomes
    assert admitted(outcomes) <= PER_IP_BURST + PER_IP_RATE * elapsed + 5, (outcomes, elapsed)
    assert set(outcomes) <= {"http 429", "close 4001"}, outcomes
    assert max(round_trips) < GOOD_CLIENT_BOUND_SECONDS, round_trips


async def test_handshakes_without_credentials_or_with_an_impossible_session_key_need_no_database(
    platform_env: dict[str, str], start_process: Callable[..., Process]
) -> None:
    # PostgreSQL unreachable (nothing listens there): any handshake that looked a session up would wait out the
    # pool's timeout (DATABASE_POOL_TIMEOUT, 10 s) and fail.
    port = free_port()
    env = {**platform_env, **own_origins(port), "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/none"}
    server = start_process(Server(f"uvicorn-{port}", server_command(port), env, port))
    await asyncio.to_thread(server.wait_http_ok, f"{server.http}/livez", 30)
    url = f"{server.ws}/ws/notifications/"
    for index in (0, 1, 0, 1):  # nothing; a malformed session cookie
        started = time.monotonic()
        assert await one_junk_handshake(url, server.http, index) == "close 4001"
        assert time.monotonic() - started < 2.0, junk_kind(index)


def server_command(port: int) -> list[str]:
    from worker.processes import web_command

    return web_command(port=port)
