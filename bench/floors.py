"""The floors, measured from the bench process in the same run: what the change's durable write and one Redis
round trip cost alone, with nothing of the platform around them."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import redis

from bench.loadgen import percentiles

STATUSES = ("confirmed", "preparing", "shipped", "out_for_delivery", "delivered")


def postgres_commit(database_url: str, order_id: int, *, count: int) -> dict[str, float]:
    """The change's write alone, as raw SQL on one connection: UPDATE the order row (status, seq, stamps) and
    INSERT its event row in one transaction, then COMMIT; milliseconds per transaction.

    The floor of the platform's change_status (which also locks the row with SELECT ... FOR UPDATE and goes
    through the ORM and the pool); the statements are prepared after the first few, as psycopg does."""
    from orders.models import Order, OrderEvent

    order_table, event_table = Order._meta.db_table, OrderEvent._meta.db_table
    times: list[float] = []
    with psycopg.connect(database_url) as conn:
        for i in range(count):
            to = STATUSES[i % len(STATUSES)]
            t0 = time.perf_counter()
            with conn.transaction():
                row = conn.execute(
                    f"UPDATE {order_table} SET status = %s, seq = seq + 1, status_changed_at = now(), "
                    "updated_at = now() WHERE id = %s RETURNING seq", (to, order_id)).fetchone()
                assert row is not None, f"order {order_id} is gone"
                conn.execute(
                    f"INSERT INTO {event_table} (order_id, seq, from_status, to_status, created_at) "
                    "VALUES (%s, %s, '', %s, now())", (order_id, row[0], to))
            times.append(time.perf_counter() - t0)
    return percentiles(times, 1000.0)


def redis_round_trip(redis_url: str, *, count: int) -> dict[str, float]:
    """One PING on an open connection to the platform's Redis (the broker and channel layer's server); ms."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.ping()  # connect outside the timing
        times: list[float] = []
        for _ in range(count):
            t0 = time.perf_counter()
            client.ping()
            times.append(time.perf_counter() - t0)
    finally:
        client.close()
    return percentiles(times, 1000.0)


def measure(database_url: str, redis_url: str, *, count: int) -> dict[str, Any]:
    """Both floors on an order of the bench's own, deleted afterwards (with its events)."""
    from bench import ours

    owner = ours.users("bench-floor", 1)[0]
    (order,) = ours.new_orders([owner], 1)
    try:
        return {"postgres_commit_ms": postgres_commit(database_url, order.pk, count=count),
                "redis_rtt_ms": redis_round_trip(redis_url, count=count)}
    finally:
        order.delete()
