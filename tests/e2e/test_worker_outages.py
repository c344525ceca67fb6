"""The worker survives its broker going away with a push in flight, on every pool, and its health check asks the
worker itself: real uvicorn, celery worker and beat, real redis-server and redis-sentinel processes of the
test's own."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orders.models import Order
from orders.states import Status
from tests.e2e.holds import DELIVERY_TIMEOUT, change, open_clients, push_held_in_flight, wait_all_published
from tests.e2e.processes import ROOT, RedisServer, SentinelServer
from tests.e2e.resuming_client import ResumingClient, in_thread, report, settle, wait_until_delivered
from tests.helpers import make_order
from worker.processes import worker_health_command
from worker.queues import QUEUES, queue_name

pytestmark = pytest.mark.e2e

POOLS = ["prefork", "threads", "solo"]
MASTER = "orders-master"


def assert_every_change_arrived_once_in_order(name: str, clients: list[ResumingClient], expected: list[int],
                                              order: Order) -> None:
    """Each client applied exactly `expected`. A push cut off mid-flight is sent again (by the sweep), so a
    repeated frame is allowed here: the resume rule drops it and the application never sees it."""
    tally = report(name, clients, {order.pk: expected})
    assert all(client.accepted == {order.pk: expected} for client in clients), [c.accepted for c in clients]
    assert (tally.lost, tally.out_of_order) == (0, 0)


@pytest.mark.parametrize("pool", POOLS)
async def test_worker_survives_redis_killed_under_a_push_in_flight_and_every_event_arrives(
    pool: str, alice: Any, staff: Any, private_redis: RedisServer, start_process: Any,
    start_server: Any, start_worker: Any, start_beat: Any,
) -> None:
    # One Redis for everything, as compose runs it: broker, channel layer, presence.
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url}
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server, env=env)
    worker = await asyncio.to_thread(start_worker, env=env, pool=pool)
    await asyncio.to_thread(start_beat, env=env)
    clients = await open_clients(server, order)
    await change(order, Status.CONFIRMED, staff)
    assert await wait_until_delivered(clients, {order.pk: [2]}, DELIVERY_TIMEOUT)

    lock = await push_held_in_flight(worker, order, Status.PREPARING, staff, clients)
    try:
        private_redis.kill(signal.SIGKILL)
    finally:
        lock.release()  # the push ends now (prefork: Celery cancelled it), unacked, on a connection that is gone
    await asyncio.to_thread(worker.wait_for_log, "Connection to broker lost", 60)
    # Until the fix the worker died here: "Unrecoverable error: AttributeError(... 'hostname')" (worker/broker.py).
    await asyncio.to_thread(worker.wait_for_log, "Cannot connect to", 60)
    await change(order, Status.SHIPPED, staff)  # committed with Redis down; its push waits for the sweep

    start_process(RedisServer(port=private_redis.port)).wait_ready()  # back, empty
    await asyncio.to_thread(worker.wait_for_log, "Connected to", 60, 2)
    await change(order, Status.OUT_FOR_DELIVERY, staff)  # live again
    expected = [2, 3, 4, 5]
    delivered = await wait_until_delivered(clients, {order.pk: expected}, DELIVERY_TIMEOUT)
    left = await wait_all_published(order)
    await settle(clients)  # a frame sent twice has arrived by now
    for client in clients:
        await client.stop()
    assert worker.alive, worker.log[-3000:]
    assert "Unrecoverable error" not in worker.log
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
    assert not left, f"still unpublished: {left}"
    assert_every_change_arrived_once_in_order(f"redis killed ({pool})", clients, expected, order)


@pytest.fixture
def sentinel_pair(private_redis: RedisServer, start_process: Any, platform_env: dict[str, str],
                  tmp_path: Path) -> tuple[dict[str, str], RedisServer, SentinelServer]:
    """A master (private_redis), its replica and a sentinel that fails the master over to the replica; the
    platform's environment reaches Redis only through the sentinel."""
    replica = start_process(RedisServer(replica_of=private_redis)).wait_ready()
    replica.wait_for_log("MASTER <-> REPLICA sync: Finished with success", 30)
    sentinel = start_process(SentinelServer(private_redis, tmp_path, MASTER)).wait_ready()
    sentinel.wait_for_log("+slave slave", 30)
    env = {**platform_env, "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}", "REDIS_SENTINEL_MASTER": MASTER}
    env.pop("REDIS_URL")
    return env, replica, sentinel


@pytest.mark.parametrize("pool", ["prefork", "threads"])
async def test_worker_survives_a_sentinel_failover_under_a_push_in_flight_and_every_event_arrives(
    pool: str, alice: Any, staff: Any, private_redis: RedisServer, sentinel_pair: Any,
    start_server: Any, start_worker: Any, start_beat: Any,
) -> None:
    env, replica, sentinel = sentinel_pair
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server, env=env)
    worker = await asyncio.to_thread(start_worker, env=env, pool=pool)
    await asyncio.to_thread(start_beat, env=env)
    clients = await open_clients(server, order)
    await change(order, Status.CONFIRMED, staff)
    assert await wait_until_delivered(clients, {order.pk: [2]}, DELIVERY_TIMEOUT)

    lock = await push_held_in_flight(worker, order, Status.PREPARING, staff, clients)
    try:
        private_redis.kill(signal.SIGKILL)  # the master dies; the sentinel promotes the replica
    finally:
        lock.release()
    await asyncio.to_thread(worker.wait_for_log, "Connection to broker lost", 60)
    await asyncio.to_thread(sentinel.wait_for_log, f"+switch-master {MASTER} 127.0.0.1 {private_redis.port} "
                                                   f"127.0.0.1 {replica.port}", 60)
    await asyncio.to_thread(worker.wait_for_log, "Connected to sentinel://", 60, 2)  # to the new master
    for status in (Status.SHIPPED, Status.OUT_FOR_DELIVERY, Status.DELIVERED):
        await change(order, status, staff)  # through the new master
    expected = [2, 3, 4, 5, 6]
    delivered = await wait_until_delivered(clients, {order.pk: expected}, DELIVERY_TIMEOUT)
    left = await wait_all_published(order)
    await settle(clients)
    for client in clients:
        await client.stop()
    assert worker.alive, worker.log[-3000:]
    assert "Unrecoverable error" not in worker.log
    assert delivered, f"not delivered within {DELIVERY_TIMEOUT}s: {[c.accepted for c in clients]}"
    assert not left, f"still unpublished: {left}"
    assert_every_change_arrived_once_in_order(f"sentinel failover ({pool})", clients, expected, order)


def health_check(destination: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(worker_health_command(destination), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


async def test_worker_health_check_fails_for_a_worker_alive_in_warm_shutdown(
    alice: Any, staff: Any, platform_env: dict[str, str], start_server: Any, start_worker: Any
) -> None:
    """The check is answered by the worker's consumer over the broker, not "the process exists": a worker stuck
    in a warm shutdown (it stopped taking tasks and waits for one to end) is alive and unhealthy. (For a while
    it still answers `celery inspect ping`, which is why the check asks `consuming` instead.)"""
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server)
    worker = await asyncio.to_thread(start_worker, name="pinged")
    destination = f"pinged@{socket.gethostname()}"
    healthy = await asyncio.to_thread(health_check, destination, platform_env)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    # Every queue the worker consumes by default (worker/queues.py), as the health check reports them.
    assert f"'queues': {sorted(queue_name(queue) for queue in QUEUES)}" in healthy.stdout

    clients = await open_clients(server, order)
    lock = await push_held_in_flight(worker, order, Status.CONFIRMED, staff, clients)
    try:
        assert worker.popen is not None
        worker.popen.send_signal(signal.SIGTERM)  # the worker only: its pool process keeps the held push
        await asyncio.to_thread(worker.wait_for_log, "Warm shutdown", 30)
        stuck = await asyncio.to_thread(health_check, destination, platform_env)
        assert worker.alive
        # Either it still answers, saying it is stopping, or its consumer no longer answers at all.
        print(f"\nhealth check of a worker in a warm shutdown: {stuck.stdout.strip()}")
        assert stuck.returncode == 1, stuck.stdout + stuck.stderr
        assert "'stopping': True" in stuck.stdout or "no answer" in stuck.stdout
    finally:
        lock.release()
        for client in clients:
            await client.stop()
    assert await asyncio.to_thread(worker.popen.wait, 60) == 0
