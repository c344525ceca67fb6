"""Delivery receipts: `{"type": "seen", "order_id", "seq"}` from the order's customer (or a guest with its tracking
link) moves the order's seen seq forward, never back nor past its seq; staff watching never move it; a malformed
receipt gets an error frame; the first receipt of each seq is timed (orders_event_seen_seconds)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from prometheus_client import REGISTRY

from integrations import tracking
from orders import services
from orders.models import Order
from tests.helpers import make_order
from tests.realtime.sockets import Socket, communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def receipt(order: Order) -> tuple[int, Any]:
    """The order's (seen_seq, seen_at) as stored."""
    row = await database_sync_to_async(
        lambda: Order.objects.filter(pk=order.pk).values_list("seen_seq", "seen_at").get())()
    return row[0], row[1]


async def seen(socket: Socket, order: Order | int, seq: Any) -> None:
    """Send a receipt and wait until the consumer handled it (a pong comes after every earlier frame)."""
    await socket.send({"type": "seen", "order_id": order if isinstance(order, int) else order.pk, "seq": seq})
    await socket.ping()


def seen_count() -> float:
    return REGISTRY.get_sample_value("orders_event_seen_seconds_count") or 0.0


async def test_the_customers_receipt_on_the_order_socket_moves_the_orders_seen_seq(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    assert await receipt(alice_order) == (0, None)
    await change(alice_order, "confirmed", staff)
    assert (await page.next("order.status"))["seq"] == 2
    await seen(page, alice_order, 2)
    seq, at = await receipt(alice_order)
    assert seq == 2 and at is not None
    await page.close()


async def test_the_customers_receipt_on_the_notification_stream_counts_for_their_order_only(
    alice: Any, bob: Any, staff: Any, alice_order: Order, bob_order: Order
) -> None:
    await change(alice_order, "confirmed", staff)
    await change(bob_order, "confirmed", staff)
    stream = await Socket.open("/ws/notifications/", alice)
    await seen(stream, alice_order, 2)
    await seen(stream, bob_order, 2)  # not alice's to acknowledge: nothing, and no answer either
    assert (await receipt(alice_order))[0] == 2
    assert await receipt(bob_order) == (0, None)
    assert await stream.nothing_of("error")
    await stream.close()


async def test_staff_watching_an_order_never_mark_it_seen(alice: Any, staff: Any, alice_order: Order) -> None:
    await change(alice_order, "confirmed", staff)
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", staff)
    board = await Socket.open("/ws/notifications/", staff)
    await seen(page, alice_order, 2)
    await seen(board, alice_order, 2)
    assert await receipt(alice_order) == (0, None)
    assert await page.nothing_of("error") and await board.nothing_of("error")
    await page.close()
    await board.close()


async def test_stale_repeated_and_future_receipts_change_nothing(alice: Any, staff: Any, alice_order: Order) -> None:
    for status in ("confirmed", "preparing"):
        await change(alice_order, status, staff)
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    await seen(page, alice_order, 2)
    first = await receipt(alice_order)
    await seen(page, alice_order, 2)  # repeated
    await seen(page, alice_order, 1)  # stale
    await seen(page, alice_order, 4)  # the order is at seq 3
    assert await receipt(alice_order) == first
    await seen(page, alice_order, 3)
    assert (await receipt(alice_order))[0] == 3
    assert await page.nothing_of("error")
    await page.close()


async def test_malformed_receipts_get_an_error_frame_and_the_socket_stays_open(
    alice: Any, alice_order: Order
) -> None:
    other = await database_sync_to_async(make_order)(alice)
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    for frame in ({"type": "seen", "order_id": alice_order.pk},
                  {"type": "seen", "order_id": alice_order.pk, "seq": 1.5},
                  {"type": "seen", "order_id": alice_order.pk, "seq": 0},
                  {"type": "seen", "order_id": alice_order.pk, "seq": -1},
                  {"type": "seen", "order_id": alice_order.pk, "seq": True},
                  {"type": "seen", "order_id": None, "seq": 1},
                  {"type": "seen", "order_id": other.pk, "seq": 1}):  # another order than the socket's
        await page.send(frame)
        assert (await page.next("error"))["code"] == "bad_frame", frame
    await seen(page, alice_order, 1)
    assert (await receipt(alice_order))[0] == 1
    assert await receipt(other) == (0, None)
    await page.close()

    chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    await chat.send({"type": "seen", "order_id": alice_order.pk, "seq": 1})
    assert (await chat.next("error"))["code"] == "unknown_type"  # the chat shows no status frames
    await chat.close()


async def test_a_guest_with_the_tracking_link_marks_its_order_seen(staff: Any, alice_order: Order) -> None:
    await change(alice_order, "confirmed", staff)
    token = await database_sync_to_async(tracking.tracking_token)(alice_order)
    guest = Socket(communicator(f"/ws/orders/{alice_order.pk}/", subprotocols=["tracking", token]))
    assert (await guest.comm.connect())[0]
    await seen(guest, alice_order, 2)
    assert (await receipt(alice_order))[0] == 2
    await guest.send({"type": "seen", "order_id": alice_order.pk + 1, "seq": 1})
    assert (await guest.next("error"))["code"] == "bad_frame"
    await guest.close()


async def test_the_first_receipt_of_each_seq_is_timed_once(alice: Any, staff: Any, alice_order: Order) -> None:
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    stream = await Socket.open("/ws/notifications/", alice)
    before = seen_count()
    await change(alice_order, "confirmed", staff)
    await seen(page, alice_order, 2)
    assert seen_count() == before + 1
    await seen(stream, alice_order, 2)  # the same change, shown on another of the customer's pages
    await seen(page, alice_order, 1)
    assert seen_count() == before + 1
    await change(alice_order, "preparing", staff)
    await seen(stream, alice_order, 3)
    assert seen_count() == before + 2
    await page.close()
    await stream.close()


async def test_a_receipt_that_moves_reaches_staff_streams_as_order_seen_and_customers_never(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    board = await Socket.open("/ws/notifications/", staff)
    stream = await Socket.open("/ws/notifications/", alice)
    await change(alice_order, "confirmed", staff)
    await seen(stream, alice_order, 2)
    frame = await board.next("order.seen")
    seq, at = await receipt(alice_order)
    assert frame == {"type": "order.seen", "order_id": alice_order.pk, "seq": 2, "at": at.isoformat()}
    await seen(stream, alice_order, 2)  # repeated: nothing moved, nothing told
    assert await board.nothing_of("order.seen")
    assert await stream.nothing_of("order.seen")
    await board.close()
    await stream.close()
