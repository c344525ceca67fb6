"""`order.updated` frames: a change of an order's shipment or promise rides the order's seq stream, live and
replayed by `after_seq` (and `subscribe`), in seq order with its status changes, on every socket that shows it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from channels.db import database_sync_to_async

from integrations import tracking
from orders import services, tasks
from orders.models import Order
from tests.realtime.sockets import Socket, communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

ETA = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)


async def update(order: Order, actor: Any, **changes: Any) -> None:
    await database_sync_to_async(services.update_order)(order=order, changes=changes, actor=actor)


async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def test_an_update_reaches_the_order_page_the_customers_stream_and_staff_live(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    stream = await Socket.open("/ws/notifications/", alice)
    board = await Socket.open("/ws/notifications/", staff)
    await update(alice_order, staff, carrier="UPS", tracking_number="1Z999", eta=ETA)
    for socket in (page, stream, board):
        frame = await socket.next("order.updated")
        assert frame == {
            "type": "order.updated", "order_id": alice_order.pk, "number": alice_order.number, "seq": 2,
            "at": frame["at"], "event_id": frame["event_id"], "carrier": "UPS", "tracking_number": "1Z999",
            "carrier_tracking_url": "https://www.ups.com/track?tracknum=1Z999", "eta": ETA.isoformat(),
        }
    # A no-op sends nothing; the next status change follows at seq 3.
    await update(alice_order, staff, carrier="UPS")
    await change(alice_order, "confirmed", staff)
    assert (await page.next("order.status"))["seq"] == 3
    assert await page.nothing_of("order.updated")
    for socket in (page, stream, board):
        await socket.close()


async def test_after_seq_replays_updates_in_seq_order_with_status_changes(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    await change(alice_order, "confirmed", staff)
    await update(alice_order, staff, promised_at=ETA)
    await change(alice_order, "preparing", staff)
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/?after_seq=1", alice)
    frames = socket.kept  # all sent before the pong that ended Socket.open, in the order they came
    assert [(frame["type"], frame["seq"]) for frame in frames] == [
        ("order.status", 2), ("order.updated", 3), ("order.status", 4)]
    assert frames[1]["promised_at"] == ETA.isoformat() and "status" not in frames[1]
    await socket.close()

    # The same from /ws/notifications/ with subscribe.
    stream = await Socket.open("/ws/notifications/", alice)
    await stream.send({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 2})
    assert (await stream.next("order.updated"))["seq"] == 3
    assert (await stream.next("order.status"))["seq"] == 4
    await stream.close()


async def test_a_lost_update_push_is_filled_from_the_log_before_the_next_status_change(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    # The broker is down for this process: the update stays in the outbox, unpushed (orders.tasks.enqueue_push).
    tasks._broker_down_until = time.monotonic() + 60
    await update(alice_order, staff, eta=ETA)
    tasks._broker_down_until = 0.0
    await change(alice_order, "confirmed", staff)
    first = await socket.comm.receive_json_from(timeout=3)
    second = await socket.comm.receive_json_from(timeout=3)
    assert [(first["type"], first["seq"]), (second["type"], second["seq"])] == [
        ("order.updated", 2), ("order.status", 3)]
    await socket.close()


async def test_a_guest_tracking_page_gets_updates_live_and_replayed(alice_order: Order, staff: Any) -> None:
    token = await database_sync_to_async(tracking.tracking_token)(alice_order)
    comm = communicator(f"/ws/orders/{alice_order.pk}/?after_seq=1", subprotocols=["tracking", token])
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await update(alice_order, staff, carrier="DPD", tracking_number="0987")
    frame = await comm.receive_json_from(timeout=5)
    assert (frame["type"], frame["seq"], frame["carrier"]) == ("order.updated", 2, "DPD")
    await comm.disconnect()
    replayed = communicator(f"/ws/orders/{alice_order.pk}/?after_seq=1", subprotocols=["tracking", token])
    assert (await replayed.connect())[0]
    assert (await replayed.receive_json_from(timeout=3))["tracking_number"] == "0987"
    await replayed.disconnect()
