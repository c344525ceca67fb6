"""The conformance run: clients built from the AsyncAPI document alone (tests/conformance/client.py) keep every
order level, once and in order, through a channel-layer outage, a server restart, token expiry and a remote logout.

Two uvicorn processes share a private Redis (the channel layer, auth state, presence) and the test database: the
clients talk to `edge` only (document, tokens, sockets), staff change statuses over the HTTP API of `api`, which
stays up while `edge` is killed. Access tokens live ACCESS_LIFETIME seconds on these servers, so every client
meets expiry several times; open sockets are re-checked every second, so a logout closes them at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from accounts import tokens
from orders.models import Order, OrderEvent
from tests.conformance.client import Account, Document, LiveOrders, http
from tests.e2e.processes import RedisServer, Server
from tests.e2e.resuming_client import in_thread
from tests.helpers import PASSWORD, make_order

pytestmark = pytest.mark.e2e

ACCESS_LIFETIME = 6
PHASE_TIMEOUT = 15
EXPIRED = (4001, "token expired")


async def levels(orders: list[Order]) -> dict[int, list[int]]:
    """Every seq the server produced, per order: its event log."""
    def read() -> dict[int, list[int]]:
        return {order.pk: list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("seq", flat=True))
                for order in orders}
    return await in_thread(read)


def expected_for(client: LiveOrders, log: dict[int, list[int]], start: dict[int, int]) -> dict[int, list[int]]:
    """What the client must have applied: each of its orders' seqs after where it started (from 1 for an order
    it learnt of on the way)."""
    mine = [client.order_id] if client.order_id is not None else list(log)
    return {order_id: [seq for seq in log[order_id] if seq > start.get(order_id, 0)] for order_id in mine}


async def until(condition: Callable[[], bool], timeout: float = PHASE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_clients_built_from_the_asyncapi_document_apply_every_level_once_in_order_through_outage_restart_expiry_and_logout(  # noqa: E501
    alice: Any, staff: Any, private_redis: RedisServer, start_process: Callable[..., Any],
    start_server: Callable[..., Server], start_worker: Callable[..., Any],
) -> None:
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "JWT_ACCESS_LIFETIME_SECONDS": str(ACCESS_LIFETIME), "WS_REAUTH_INTERVAL_SECONDS": "1",
           "WS_POSITION_CHECK_SECONDS": "2"}
    first, second = [await in_thread(make_order, alice) for _ in range(2)]
    edge, api, _worker = await asyncio.gather(asyncio.to_thread(start_server, env=env),
                                              asyncio.to_thread(start_server, env=env),
                                              asyncio.to_thread(start_worker, env=env))
    staff_token = await in_thread(tokens.issue_access_token, staff)  # this process's lifetime: 15 min

    async def change(order: Order, to: str) -> None:
        answer = await asyncio.to_thread(http, "POST", f"{api.http}/api/orders/{order.pk}/status/", {"status": to},
                                         staff_token)
        assert answer.status == 200, (to, answer.status, answer.body)

    document = await asyncio.to_thread(Document.fetch, f"{edge.http}/api/asyncapi.json")

    def device() -> Account:
        return Account(document, edge.http, alice.username, PASSWORD, max_wait=1.0)

    # One order's socket and the user's stream, each renewing its token by reconnecting (at `token expired`)
    # or in band (`auth`).
    clients = [LiveOrders(document, device(), edge.ws, order_id=first.pk),
               LiveOrders(document, device(), edge.ws, order_id=second.pk, in_band_refresh=True),
               LiveOrders(document, device(), edge.ws),
               LiveOrders(document, device(), edge.ws, in_band_refresh=True)]
    for client in clients:
        await client.account.login()
        await client.start()
    starts = [dict(client.last) for client in clients]
    assert starts[2] == starts[3] == {first.pk: 1, second.pk: 1}
    orders = [first, second]

    began = time.monotonic()

    async def all_level(phase: str) -> bool:
        log = await levels(orders)
        wanted = [(client, expected_for(client, log, start)) for client, start in zip(clients, starts, strict=True)]
        level = await until(lambda: all(client.applied.get(order_id, []) == seqs
                                        for client, expected in wanted for order_id, seqs in expected.items()))
        print(f"{phase}: every client level at {time.monotonic() - began:.1f}s", flush=True)
        return level

    try:
        # Live.
        await change(first, "confirmed")
        await change(second, "confirmed")
        assert await all_level("live"), "live"

        # The channel layer goes away (and with it auth state): changes and a new order meanwhile.
        private_redis.stop()
        await change(first, "preparing")
        await change(second, "preparing")
        third = await in_thread(make_order, alice)
        orders.append(third)
        await asyncio.sleep(1)
        start_process(RedisServer(port=private_redis.port)).wait_ready()
        assert await all_level("after the outage"), "after the outage"

        # The clients' server is killed and comes back on its port; changes while it is down and after.
        edge.kill()
        await change(first, "shipped")
        await change(third, "confirmed")
        edge = await asyncio.to_thread(start_server, port=edge.port, env=env)
        await change(second, "shipped")
        assert await all_level("after the restart"), "after the restart"

        # Token expiry: the reconnecting clients' sockets close `token expired` and a change lands while they get
        # a fresh token and reconnect; the in-band ones' sockets stay open meanwhile.
        reconnecting = [client for client in clients if not client.in_band_refresh]
        expiries = [client.closes.count(EXPIRED) for client in reconnecting]
        closes_before = [len(client.closes) for client in clients]
        assert await until(lambda: all(client.closes.count(EXPIRED) > seen
                                       for client, seen in zip(reconnecting, expiries, strict=True)),
                           ACCESS_LIFETIME + 5), "no token expiry"
        await change(first, "out_for_delivery")
        await change(third, "preparing")
        assert await all_level("after token expiry"), "after token expiry"
        for client, before in zip(clients, closes_before, strict=True):
            if client.in_band_refresh:
                assert EXPIRED not in client.closes[before:], "renewed in band, yet closed at expiry"

        # Another device of the user logs out everywhere: every login ends, the sockets close, the clients log
        # in again and resume; changes meanwhile.
        elsewhere = await asyncio.to_thread(http, "POST", f"{api.http}/api/auth/token/",
                                            {"username": alice.username, "password": PASSWORD})
        assert elsewhere.status == 200, elsewhere.body
        logout = await asyncio.to_thread(http, "POST", f"{api.http}/api/auth/logout/", {"everywhere": True},
                                         elsewhere.body["access"])
        assert logout.status == 204, logout.body
        await change(first, "delivered")
        await change(second, "out_for_delivery")
        await change(third, "cancelled")
        assert await until(lambda: all(client.account.logins >= 2 for client in clients)), "logged in again"
        await change(second, "delivered")
        assert await all_level("after the logout"), "after the logout"
        await asyncio.sleep(1)  # a frame sent twice has arrived by now
    finally:
        for client in clients:
            await client.stop()
        # Not a graceful stop (which is not under test): a uvicorn that served these clients was seen waiting its
        # whole graceful-shutdown timeout for a consumer stuck in a cancelled channels_redis receive.
        edge.kill()

    log = await levels(orders)
    for client in clients:
        print(f"{client.channel} (in-band refresh: {client.in_band_refresh}): {client.connections} sockets,",
              f"{client.repeats} repeats dropped, {client.held_back} held, {client.auth_oks} auth.ok,",
              f"{client.account.logins} logins, {client.account.refreshes} refreshes, closes {client.closes}")
    assert log[first.pk] == log[second.pk] == [1, 2, 3, 4, 5, 6] and log[third.pk] == [1, 2, 3, 4]
    for client, start in zip(clients, starts, strict=True):
        expected = expected_for(client, log, start)
        assert client.applied == expected, (client.channel, client.applied, expected, client.trace)
        assert (client.violations, client.errors, client.resets) == ([], [], [])
    # The disruptions reached every client: its socket was lost to the outage and the restart, the logout
    # ended its login; the in-band ones renewed their token on an open socket.
    for client in clients:
        assert client.connections >= 3, (client.channel, client.closes, client.refusals)
        # The logout reached each: its socket closed, or its refresh was refused (it was between sockets).
        assert (4001, "credentials revoked") in client.closes or client.account.refused, client.closes
    assert all(client.auth_oks >= 1 for client in clients if client.in_band_refresh)
