"""The Celery tasks on the real database and Redis channel layer: the push is safe to run twice, the outbox sweep
re-sends what was never pushed, stuck orders alert staff, and the at-least-once settings hold."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from orders import services, tasks
from orders.models import Order, OrderEvent
from tests.helpers import make_order
from tests.realtime.sockets import bearer_subprotocols, communicator
from worker.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]





async def open_socket(path: str, user: Any) -> Any:
    """A connected socket that has joined its groups (it is accepted first; a pong comes after it joined)."""
    comm = communicator(path, subprotocols=await bearer_subprotocols(user))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert await next_frame(comm, "pong") == {"type": "pong"}
    return comm


async def next_frame(comm: Any, frame_type: str, timeout: float = 3) -> dict[str, Any]:
    """The next frame of `frame_type`, skipping others (staff also get presence frames)."""
    while True:
        frame = await comm.receive_json_from(timeout=timeout)
        if frame["type"] == frame_type:
            return frame


async def no_frame(comm: Any, frame_type: str, timeout: float = 0.5) -> bool:
    """True if no frame of `frame_type` arrives within `timeout` (a communicator timing out would be closed)."""
    while not await comm.receive_nothing(timeout=timeout):
        if (await comm.receive_json_from())["type"] == frame_type:
            return False
    return True


def lose_pushes(order: Order, *, seqs: list[int], age: timedelta) -> None:
    """What a push lost to a Redis or broker outage leaves behind: the event, unpublished, `age` old."""
    OrderEvent.objects.filter(order=order, seq__in=seqs).update(published_at=None, created_at=timezone.now() - age)


async def test_outbox_sweep_republishes_old_unpublished_events_in_order_once(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    for status in ("confirmed", "preparing", "shipped"):
        await database_sync_to_async(services.change_status)(order=alice_order, to=status, actor=staff)
    await database_sync_to_async(lose_pushes)(alice_order, seqs=[2, 3], age=timedelta(minutes=5))
    # Seq 4 was lost a moment ago: its own task may still be on the way, the sweep leaves it alone for now.
    await database_sync_to_async(lose_pushes)(alice_order, seqs=[4], age=timedelta(seconds=0))
    staff_ws = await open_socket("/ws/notifications/", staff)

    assert await database_sync_to_async(tasks.republish_unpublished_events)() == 2
    frames = [await next_frame(staff_ws, "order.status") for _ in range(2)]
    assert [(f["order_id"], f["seq"], f["status"]) for f in frames] == [
        (alice_order.pk, 2, "confirmed"), (alice_order.pk, 3, "preparing")]
    unpublished = OrderEvent.objects.filter(order=alice_order, published_at=None).values_list("seq", flat=True)
    assert await database_sync_to_async(list)(unpublished) == [4]

    assert await database_sync_to_async(tasks.republish_unpublished_events)() == 0
    assert await no_frame(staff_ws, "order.status")
    await staff_ws.disconnect()


async def test_push_task_run_twice_marks_the_event_published_once_and_the_client_sees_it_once(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    event = await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=staff)
    await database_sync_to_async(lose_pushes)(alice_order, seqs=[2], age=timedelta(0))
    alice_ws = communicator(f"/ws/orders/{alice_order.pk}/?after_seq=1", subprotocols=await bearer_subprotocols(alice))
    assert (await alice_ws.connect())[0]
    assert (await next_frame(alice_ws, "order.status"))["seq"] == 2  # the replay, sent after joining the group

    await database_sync_to_async(tasks.send_order_update)(event.pk)
    first = await database_sync_to_async(lambda: OrderEvent.objects.get(pk=event.pk).published_at)()
    await database_sync_to_async(tasks.send_order_update)(event.pk)
    again = await database_sync_to_async(lambda: OrderEvent.objects.get(pk=event.pk).published_at)()
    assert first is not None and again == first
    assert await no_frame(alice_ws, "order.status")
    await alice_ws.disconnect()


def test_push_task_for_an_event_that_no_longer_exists_logs_and_does_nothing(caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="orders.tasks"):
        tasks.send_order_update(987654)
    assert "event 987654 does not exist" in caplog.text


async def test_stuck_order_alert_sends_order_stuck_to_staff_only_and_logs(
    alice: Any, bob: Any, staff: Any, caplog: Any
) -> None:
    stuck, fresh, done = [await database_sync_to_async(make_order)(user) for user in (alice, alice, bob)]
    await database_sync_to_async(services.change_status)(order=done, to="cancelled", actor=staff)
    long_ago = timezone.now() - timedelta(minutes=settings.STUCK_ORDER_AFTER_MINUTES + 5)
    await database_sync_to_async(
        lambda: Order.objects.filter(pk__in=[stuck.pk, done.pk]).update(status_changed_at=long_ago))()
    staff_ws = await open_socket("/ws/notifications/", staff)
    alice_ws = await open_socket("/ws/notifications/", alice)

    with caplog.at_level(logging.WARNING, logger="orders.tasks"):
        assert await database_sync_to_async(tasks.alert_stuck_orders)() == 1
    frame = await next_frame(staff_ws, "order.stuck")
    assert frame["orders"] == [
        {"order_id": stuck.pk, "number": stuck.number, "status": "pending", "since": long_ago.isoformat()}]
    assert await no_frame(alice_ws, "order.stuck")
    assert f"{stuck.number} (pending)" in caplog.text
    assert fresh.number not in caplog.text and done.number not in caplog.text
    for comm in (staff_ws, alice_ws):
        await comm.disconnect()


async def test_no_stuck_orders_means_no_alert_and_no_log(alice_order: Order, staff: Any, caplog: Any) -> None:
    staff_ws = await open_socket("/ws/notifications/", staff)
    with caplog.at_level(logging.WARNING, logger="orders.tasks"):
        assert await database_sync_to_async(tasks.alert_stuck_orders)() == 0
    assert await no_frame(staff_ws, "order.stuck")
    assert "unchanged for over" not in caplog.text
    await staff_ws.disconnect()


def test_celery_delivers_at_least_once_with_bounded_retries() -> None:
    conf = celery_app.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    push = tasks.send_order_update
    assert (push.acks_late, push.reject_on_worker_lost, push.retry_backoff, push.max_retries) == (True, True, True, 8)
    assert push.retry_backoff_max == 60
    # Publishing gives up fast and the sweep re-sends: tests/e2e/test_frozen_broker.py.
