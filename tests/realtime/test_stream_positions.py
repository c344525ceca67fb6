"""A customer's notification stream starts each order at its seq when the socket opens: pushes repeated by the
outbox or the worker are dropped, and an event overtaken by a later one is filled in from the log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from accounts import tokens
from orders import services, tasks
from orders.models import Order, OrderEvent
from realtime import push
from tests.helpers import make_order
from tests.realtime.sockets import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


async def stream(user: Any) -> Any:
    comm = communicator("/ws/notifications/",
                        subprotocols=["bearer", await database_sync_to_async(tokens.issue_access_token)(user)])
    assert (await comm.connect())[0]
    # The socket is accepted before it joins its group; a pong means the consumer has finished connecting.
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    return comm


async def age(order: Order, seqs: list[int]) -> None:
    """Make the events a minute old: long before the stream opened."""
    events = OrderEvent.objects.filter(order=order, seq__in=seqs)
    await database_sync_to_async(events.update)(created_at=timezone.now() - timedelta(minutes=1))


async def publish(order: Order, seq: int) -> None:
    """Push one stored event again, as the worker's retry or the outbox sweep does."""
    event = await database_sync_to_async(OrderEvent.objects.select_related("order").get)(order=order, seq=seq)
    await database_sync_to_async(push.publish_event)(event)


async def test_a_repeated_push_of_an_event_from_before_the_stream_opened_is_dropped(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=staff)
    await age(alice_order, [1, 2])
    comm = await stream(alice)
    await publish(alice_order, 2)
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_an_event_overtaken_by_a_later_one_reaches_the_stream_first_and_once(
    alice: Any, staff: Any, alice_order: Order, monkeypatch: Any
) -> None:
    comm = await stream(alice)
    # Two changes whose pushes are still on their way (a retry with backoff, a busy worker)...
    monkeypatch.setattr(tasks, "enqueue_push", lambda event_id: None)
    for status in ("confirmed", "preparing"):
        await database_sync_to_async(services.change_status)(order=alice_order, to=status, actor=staff)
    # ...and the later one is pushed first.
    await publish(alice_order, 3)
    await publish(alice_order, 2)
    frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
    assert [(frame["seq"], frame["status"]) for frame in frames] == [(2, "confirmed"), (3, "preparing")]
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_an_order_created_after_the_stream_opened_starts_from_its_first_event(alice: Any) -> None:
    comm = await stream(alice)
    order = await database_sync_to_async(make_order)(alice)
    frame = await comm.receive_json_from(timeout=3)
    assert (frame["order_id"], frame["seq"], frame["status"]) == (order.pk, 1, "pending")
    await comm.disconnect()



async def test_subscribe_does_not_repeat_what_this_stream_already_sent_after_that_seq(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    comm = await stream(alice)
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=staff)
    assert (await comm.receive_json_from(timeout=3))["seq"] == 2
    # The client's subscribe crossed that frame on the wire: it already has seq 2 from this very socket.
    await comm.send_json_to({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 1})
    assert await comm.receive_nothing(timeout=0.5)
    # But a client further behind gets everything after its seq again, in order.
    await comm.send_json_to({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 0})
    assert [(await comm.receive_json_from(timeout=3))["seq"] for _ in range(2)] == [1, 2]
    await comm.disconnect()
