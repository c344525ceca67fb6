"""Fault tests with real processes: every status change reaches the customer once and in order, whatever breaks.

Each test starts its own uvicorn, celery worker(s) and beat on the test PostgreSQL database and Redis (a private
redis-server when the test stops Redis), breaks one thing for real and waits, bounded, for full delivery.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from typing import Any

import pytest
import redis
from django.conf import settings

from accounts import tokens
from orders import services
from orders.models import Order, OrderEvent
from orders.states import Status
from tests.e2e.browser_session import BrowserSession
from tests.e2e.processes import RedisServer
from tests.e2e.resuming_client import ResumingClient, in_thread, report, settle, wait_until_delivered
from tests.helpers import PASSWORD, make_order
from worker.queues import queue_name

pytestmark = pytest.mark.e2e

# The state machine's longest path: five changes after creation (seq 1), seqs 2..6.
FORWARD = [Status.CONFIRMED, Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY, Status.DELIVERED]
DELIVERY_TIMEOUT = 45


async def change(order: Order, to: str, actor: Any) -> int:
    """Change status through the service in this process; its push is enqueued to the test's worker queue."""
    event = await in_thread(services.change_status, order=order, to=to, actor=actor)
    return event.seq


async def unpublished(order_ids: list[int]) -> list[str]:
    events = OrderEvent.objects.filter(order_id__in=order_ids, published_at=None)
    return await in_thread(lambda: [str(event) for event in events])


async def wait_all_published(order_ids: list[int], timeout: float) -> list[str]:
    """Wait until every event of these orders is marked published; the events still unpublished at the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := await unpublished(order_ids)) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    return left


async def test_client_that_reconnects_with_its_last_seq_gets_all_10_missed_changes_once_in_order(
    alice: Any, staff: Any, start_server: Any, start_worker: Any
) -> None:
    first, second, third = [await in_thread(make_order, alice) for _ in range(3)]
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    token = await in_thread(tokens.issue_access_token, alice)
    # One client on the customer's stream (subscribe frames), one on the first order's own socket (?after_seq).
    stream = ResumingClient(server.ws, token, {first.pk: 1, second.pk: 1, third.pk: 1}, order_socket=False)
    single = ResumingClient(server.ws, token, {first.pk: 1})
    await stream.start()
    await single.start()
    await change(first, Status.CONFIRMED, staff)
    assert await wait_until_delivered([stream, single], {first.pk: [2]}, DELIVERY_TIMEOUT)

    await stream.stop()
    await single.stop()
    for status in FORWARD[1:]:
        await change(first, status, staff)
    for status in FORWARD:
        await change(second, status, staff)
    await change(third, Status.CANCELLED, staff)  # 4 + 5 + 1 = 10 changes while disconnected

    await stream.start()
    await single.start()
    expected = {first.pk: [2, 3, 4, 5, 6], second.pk: [2, 3, 4, 5, 6], third.pk: [2]}
    delivered = await wait_until_delivered([stream, single], expected, DELIVERY_TIMEOUT)
    await settle([stream, single])  # a frame sent twice has arrived by now
    await stream.stop()
    await single.stop()
    tally = report("reconnect after 10 missed changes", [stream, single], expected)
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {stream.accepted} {single.accepted}"
    assert stream.accepted == expected
    assert single.accepted == {first.pk: expected[first.pk]}
    assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)
    assert (stream.connections, single.connections) == (2, 2)


async def test_clients_dropping_and_resuming_while_changes_keep_coming_get_each_change_once_in_order(
    alice: Any, staff: Any, start_server: Any, start_worker: Any
) -> None:
    """The replay/live seam under fire: events committed while a replay runs arrive once, after it."""
    orders = [await in_thread(make_order, alice) for _ in range(8)]
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    token = await in_thread(tokens.issue_access_token, alice)
    clients = [ResumingClient(server.ws, token, {order.pk: 1}, retry_every=0.05) for order in orders for _ in range(2)]
    for client in clients:
        await client.start()

    async def flaky_network() -> None:
        chaos = random.Random(3)
        while True:
            await chaos.choice(clients).drop()
            await asyncio.sleep(0.05)

    def drops() -> int:
        return sum(client.connections - 1 for client in clients)

    dropping = asyncio.create_task(flaky_network())
    try:
        for status in FORWARD:
            before = drops()
            for order in orders:
                await change(order, status, staff)
            # However fast the changes went, the next round starts only after a few drops (and reconnects).
            deadline = time.monotonic() + 10
            while drops() - before < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
    finally:
        dropping.cancel()
    expected = {order.pk: [2, 3, 4, 5, 6] for order in orders}
    delivered = await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
    await settle(clients)
    for client in clients:
        await client.stop()
    tally = report("drops during changes", clients, expected)
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
    assert all(client.accepted == {o: expected[o] for o in client.last} for client in clients)
    assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)
    assert drops() >= 10, "the network should have dropped sockets"


def unacked_in(queue: str) -> dict[bytes, bytes]:
    """The broker's unacknowledged messages of `queue` (kombu's Redis transport keeps them in the hash
    `unacked` until acked, and gives them back only after the visibility timeout)."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return {tag: raw for tag, raw in broker.hgetall("unacked").items() if json.loads(raw)[2] == queue}


def forget_unacked(queue: str) -> None:
    """Drop the killed worker's unacked messages so they are not restored into a dead queue after the test."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for tag in unacked_in(queue):
        broker.hdel("unacked", tag)
        broker.zrem("unacked_index", tag)


async def test_events_of_a_worker_killed_mid_task_and_those_still_queued_are_all_delivered(
    alice: Any, staff: Any, platform_env: dict[str, str], private_redis: RedisServer,
    start_server: Any, start_worker: Any, start_beat: Any,
) -> None:
    # The channel layer gets a Redis of its own, which the test freezes so the worker's pushes hang mid-task;
    # the broker stays on the test Redis.
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    queue = queue_name("realtime")  # this test's (platform_env set the prefix)
    orders = [await in_thread(make_order, alice) for _ in range(6)]
    server = await asyncio.to_thread(start_server, env=env)
    doomed = await asyncio.to_thread(start_worker, env=env)
    token = await in_thread(tokens.issue_access_token, alice)
    clients = [ResumingClient(server.ws, token, {order.pk: 1}) for order in orders]
    clients.append(ResumingClient(server.ws, token, {order.pk: 1 for order in orders}, order_socket=False))
    for client in clients:
        await client.start()
    # The orders' creation pushes are done, so the two pushes frozen below are the only ones in flight.
    assert not await wait_all_published([order.pk for order in orders], DELIVERY_TIMEOUT)
    received_before = doomed.log.count("] received")  # the orders' creation pushes
    os.kill(private_redis.popen.pid, signal.SIGSTOP)
    try:
        # The first two pushes occupy both pool processes (prefetch 1 × concurrency 2) and hang in group_send.
        for order in orders[:2]:
            await change(order, Status.CONFIRMED, staff)
        await asyncio.to_thread(wait_for_count, doomed, "] received", received_before + 2)
        # These stay queued in the broker behind them.
        for order in orders[2:]:
            for status in (Status.CONFIRMED, Status.PREPARING):
                await change(order, status, staff)
        in_flight = await asyncio.to_thread(unacked_in, queue)
        assert len(in_flight) == 2, "the killed worker should hold two unacknowledged pushes"
        doomed.kill(signal.SIGKILL)
    finally:
        os.kill(private_redis.popen.pid, signal.SIGCONT)

    try:
        await asyncio.to_thread(start_worker, env=env)
        await asyncio.to_thread(start_beat, env=env)
        expected = {order.pk: [2] if index < 2 else [2, 3] for index, order in enumerate(orders)}
        delivered = await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
        left = await wait_all_published([order.pk for order in orders], DELIVERY_TIMEOUT)
        await settle(clients)  # a frame sent twice has arrived by now
        for client in clients:
            await client.stop()
        tally = report("worker killed", clients, expected)
        assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
        assert not left, f"still unpublished: {left}"
        assert all(client.accepted == {o: expected[o] for o in client.last} for client in clients)
        assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)
        # Nothing redelivered the two unacked pushes (that takes the visibility timeout): the sweep sent them.
        assert len(await asyncio.to_thread(unacked_in, queue)) == 2
    finally:
        await asyncio.to_thread(forget_unacked, queue)


def wait_for_count(process: Any, text: str, count: int, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while process.log.count(text) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} did not log {text!r} {count} times:\n{process.log[-3000:]}")
        time.sleep(0.05)


async def test_admin_saves_while_redis_is_down_and_every_event_reaches_the_client_after_redis_returns(
    alice: Any, staff: Any, private_redis: RedisServer, start_process: Any,
    start_server: Any, start_worker: Any, start_beat: Any,
) -> None:
    # Redis here is everything Redis carries: the broker, the channel layer, presence and connection slots.
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url}
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server, env=env)
    await asyncio.to_thread(start_worker, env=env)
    await asyncio.to_thread(start_beat, env=env)
    token = await in_thread(tokens.issue_access_token, alice)
    clients = [ResumingClient(server.ws, token, {order.pk: 1}),
               ResumingClient(server.ws, token, {order.pk: 1}, order_socket=False)]
    for client in clients:
        await client.start()
    admin = BrowserSession(server.http)
    await asyncio.to_thread(admin.admin_login, staff.username, PASSWORD)
    url, _page = await asyncio.to_thread(admin.admin_change_order, order.pk, status=Status.CONFIRMED)
    assert url.endswith("/admin/orders/order/")
    assert await wait_until_delivered(clients, {order.pk: [2]}, DELIVERY_TIMEOUT)

    private_redis.stop()
    for status in (Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY):
        url, page = await asyncio.to_thread(admin.admin_change_order, order.pk, status=status)
        assert url.endswith("/admin/orders/order/"), f"the admin did not save {status} with Redis down:\n{page[-2000:]}"
    saved = await in_thread(lambda: list(OrderEvent.objects.filter(order=order).values_list("seq", "to_status")))
    assert saved[-3:] == [(3, "preparing"), (4, "shipped"), (5, "out_for_delivery")]
    assert [c.last[order.pk] for c in clients] == [2, 2], "nothing can be pushed while Redis is down"

    # The same port, as a restarted Redis (empty: the queued pushes are gone, the outbox still has them).
    start_process(RedisServer(port=private_redis.port)).wait_ready()
    expected = {order.pk: [2, 3, 4, 5]}
    delivered = await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
    left = await wait_all_published([order.pk], DELIVERY_TIMEOUT)
    await settle(clients)
    for client in clients:
        await client.stop()
    tally = report("redis down", clients, expected)
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
    assert not left, f"still unpublished: {left}"
    assert all(client.accepted == expected for client in clients)
    assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)


async def test_clients_of_a_killed_server_reconnect_to_its_restart_with_after_seq_and_miss_nothing(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any
) -> None:
    orders = [await in_thread(make_order, customer) for customer in (alice, alice, bob)]
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    tokens_by_customer = {user.pk: await in_thread(tokens.issue_access_token, user) for user in (alice, bob)}
    clients = [ResumingClient(server.ws, tokens_by_customer[order.customer_id], {order.pk: 1}) for order in orders]
    clients.append(ResumingClient(server.ws, tokens_by_customer[alice.pk], {o.pk: 1 for o in orders[:2]},
                                  order_socket=False))
    for client in clients:
        await client.start()
    for order in orders:
        await change(order, Status.CONFIRMED, staff)
    assert await wait_until_delivered(clients, {order.pk: [2] for order in orders}, DELIVERY_TIMEOUT)

    server.kill(signal.SIGKILL)
    for status in (Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY):
        for order in orders:
            await change(order, status, staff)  # pushed by the worker to a server that is not there
    # The clients storm the new process as it starts listening (its /healthz must hold up: realtime/health.py).
    await asyncio.to_thread(start_server, port=server.port)
    await change(orders[0], Status.DELIVERED, staff)  # and one after the restart, live

    expected = {order.pk: [2, 3, 4, 5] for order in orders}
    expected[orders[0].pk].append(6)
    delivered = await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
    await settle(clients)
    for client in clients:
        await client.stop()
    tally = report("server restarted", clients, expected)
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
    assert all(client.accepted == {o: expected[o] for o in client.last} for client in clients)
    assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)
    assert all(client.connections == 2 for client in clients), [client.connections for client in clients]
