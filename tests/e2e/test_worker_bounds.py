"""Every blocking call of a push has a bound of its own, so no pool hangs: Celery's time limits apply to prefork
only, and the threads and solo pools rely on these. Real worker processes on each pool, a real Redis frozen with
SIGSTOP, a real row lock in PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from django.conf import settings

from orders.states import Status
from realtime.layer import LAYER_SEND_TIMEOUT_SECONDS
from tests.e2e.holds import (
    DELIVERY_TIMEOUT,
    SilentSmtpServer,
    change,
    open_clients,
    push_held_in_flight,
    wait_all_published,
)
from tests.e2e.processes import ROOT, RedisServer
from tests.e2e.resuming_client import in_thread, wait_until_delivered
from tests.helpers import make_order

pytestmark = pytest.mark.e2e

POOLS = ["prefork", "threads", "solo"]
# What a loaded 2-core machine adds to a bound: process scheduling, a prefork pool's shutdown, the test's own
# polling (12 s for a 10 s bound when the machine is quiet; over 25 s seen with other suites running). Without
# the bounds these waits are endless, so a generous slack still tells the two apart.
SLACK_SECONDS = 30


def layer_on(redis_server: RedisServer) -> dict[str, str]:
    """The channel layer (and presence) on `redis_server`, which the test freezes; the broker stays up."""
    return {"REDIS_URL": redis_server.url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}


@pytest.mark.parametrize("pool", POOLS)
async def test_a_push_stuck_on_a_frozen_redis_ends_within_the_layer_send_timeout_and_later_pushes_flow(
    pool: str, alice: Any, staff: Any, private_redis: RedisServer, start_server: Any, start_worker: Any
) -> None:
    env = layer_on(private_redis)
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server, env=env)
    worker = await asyncio.to_thread(start_worker, env=env, pool=pool)
    clients = await open_clients(server, order)
    await change(order, Status.CONFIRMED, staff)
    assert await wait_until_delivered(clients, {order.pk: [2]}, DELIVERY_TIMEOUT)

    private_redis.send_signal(signal.SIGSTOP)  # up, silent: connections stay open, nothing answers
    try:
        received = worker.log.count("] received")
        await change(order, Status.PREPARING, staff)
        await asyncio.to_thread(worker.wait_for_log, "] received", 30, received + 1)
        started = time.monotonic()
        # The push gives up at the layer send timeout and is retried with backoff (the pool slot is free again).
        await asyncio.to_thread(worker.wait_for_log, "retry: Retry in", LAYER_SEND_TIMEOUT_SECONDS + SLACK_SECONDS)
        assert time.monotonic() - started < LAYER_SEND_TIMEOUT_SECONDS + SLACK_SECONDS
        assert "TimeoutError" in worker.log
    finally:
        private_redis.send_signal(signal.SIGCONT)
    await change(order, Status.SHIPPED, staff)
    delivered = await wait_until_delivered(clients, {order.pk: [2, 3, 4]}, DELIVERY_TIMEOUT)
    for client in clients:
        await client.stop()
    assert delivered, [client.accepted for client in clients]
    assert all(client.accepted == {order.pk: [2, 3, 4]} for client in clients)
    assert worker.alive


@pytest.mark.parametrize("pool", POOLS)
async def test_sigterm_stops_a_worker_with_a_push_stuck_on_a_frozen_redis_within_its_bound(
    pool: str, alice: Any, staff: Any, private_redis: RedisServer, start_worker: Any
) -> None:
    worker = await asyncio.to_thread(start_worker, env=layer_on(private_redis), pool=pool)
    order = await in_thread(make_order, alice)  # its creation push is the worker's first task
    await asyncio.to_thread(worker.wait_for_log, "succeeded in", 30)

    private_redis.send_signal(signal.SIGSTOP)
    try:
        await change(order, Status.CONFIRMED, staff)  # the second task: it hangs on the frozen layer
        await asyncio.to_thread(worker.wait_for_log, "] received", 30, 2)
        assert worker.popen is not None
        started = time.monotonic()
        worker.popen.send_signal(signal.SIGTERM)  # a warm shutdown: the running push ends first
        try:
            code = await asyncio.to_thread(worker.popen.wait, LAYER_SEND_TIMEOUT_SECONDS + SLACK_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{pool} worker still running {time.monotonic() - started:.0f} s after SIGTERM:\n"
                        f"{worker.log[-4000:]}")
        elapsed = time.monotonic() - started
    finally:
        private_redis.send_signal(signal.SIGCONT)
    assert code == 0, worker.log[-3000:]
    assert elapsed < LAYER_SEND_TIMEOUT_SECONDS + SLACK_SECONDS
    print(f"\n{pool}: stopped {elapsed:.1f} s after SIGTERM with a push stuck on a frozen Redis")


STATEMENT_TIMEOUT_SECONDS = 2


@pytest.mark.parametrize("pool", ["threads", "solo"])
async def test_a_push_waiting_on_a_row_lock_ends_at_the_statement_timeout_and_later_pushes_flow(
    pool: str, alice: Any, staff: Any, start_server: Any, start_worker: Any, start_beat: Any
) -> None:
    env = {"DATABASE_STATEMENT_TIMEOUT_SECONDS": str(STATEMENT_TIMEOUT_SECONDS)}
    order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server)
    worker = await asyncio.to_thread(start_worker, env=env, pool=pool)
    await asyncio.to_thread(start_beat)
    clients = await open_clients(server, order)
    await change(order, Status.CONFIRMED, staff)
    assert await wait_until_delivered(clients, {order.pk: [2]}, DELIVERY_TIMEOUT)

    lock = await push_held_in_flight(worker, order, Status.PREPARING, staff, clients)
    try:
        started = time.monotonic()
        await asyncio.to_thread(worker.wait_for_log, "canceling statement due to statement timeout",
                                STATEMENT_TIMEOUT_SECONDS + SLACK_SECONDS)
        assert time.monotonic() - started < STATEMENT_TIMEOUT_SECONDS + SLACK_SECONDS
        # Still holding the lock: the worker serves the next push (another row) all the same.
        await change(order, Status.SHIPPED, staff)
        assert await wait_until_delivered(clients, {order.pk: [2, 3, 4]}, DELIVERY_TIMEOUT)
    finally:
        lock.release()
    left = await wait_all_published(order)  # the sweep marks the cut-off push's event (and re-sends it)
    await asyncio.sleep(0.5)
    for client in clients:
        await client.stop()
    assert not left, f"still unpublished: {left}"
    assert all(client.accepted == {order.pk: [2, 3, 4]} for client in clients)


@pytest.mark.parametrize("pooled", [False, True])
def test_a_database_that_accepts_and_never_answers_fails_within_the_connect_and_pool_timeouts(pooled: bool) -> None:
    """A PostgreSQL address that accepts TCP and never speaks: the connect gives up at
    DATABASE_CONNECT_TIMEOUT_SECONDS; with the pool, a checkout gives up at DATABASE_POOL_TIMEOUT."""
    with SilentSmtpServer() as silent:  # any listener that never answers will do
        env = {**os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{silent.port}/nowhere",
               "DATABASE_POOL": "true" if pooled else "false", "DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
               "DATABASE_POOL_TIMEOUT": "4"}
        code = ("import time, django; django.setup(); from django.db import connection; started = time.monotonic()\n"
                "try:\n    connection.ensure_connection()\nexcept Exception as exc:\n"
                "    print(type(exc).__name__, round(time.monotonic() - started, 1))\n")
        result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                                timeout=60)
    error, elapsed = result.stdout.split()
    bound = 4 if pooled else 2
    assert error == "OperationalError", result.stdout + result.stderr
    assert bound - 0.5 <= float(elapsed) < bound + SLACK_SECONDS, result.stdout
    assert silent.accepted >= 1
