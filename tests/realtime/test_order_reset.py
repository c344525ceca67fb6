"""A client ahead of the order's log (a database restored from a backup, a client bug) gets `order.reset` with the
log's end, then every later event live, instead of silence until the order passes its after_seq."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from orders import services
from orders.models import Order
from tests.helpers import restore_order_at_seq_1
from tests.realtime.sockets import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def test_an_order_socket_resuming_beyond_the_log_gets_order_reset_then_live_events(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/?after_seq=5", alice)
    assert await socket.next("order.reset") == {"type": "order.reset", "order_id": alice_order.pk, "seq": 1}
    await change(alice_order, "confirmed", staff)
    frame = await socket.next("order.status")
    assert (frame["seq"], frame["status"]) == (2, "confirmed")
    assert await socket.nothing_of("order.status")
    await socket.close()


async def test_subscribing_beyond_the_log_gets_order_reset_then_live_events(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    await change(alice_order, "confirmed", staff)
    socket = await Socket.open("/ws/notifications/", alice)
    await socket.send({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 7})
    assert await socket.next("order.reset") == {"type": "order.reset", "order_id": alice_order.pk, "seq": 2}
    await change(alice_order, "preparing", staff)
    frame = await socket.next("order.status")
    assert (frame["seq"], frame["status"]) == (3, "preparing")
    assert await socket.nothing_of("order.status")
    await socket.close()


async def test_resuming_at_the_logs_end_gets_no_reset_and_no_replay(alice: Any, staff: Any, alice_order: Order) -> None:
    await change(alice_order, "confirmed", staff)
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/?after_seq=2", alice)
    assert await socket.nothing_of("order.reset", timeout=0.1)
    assert await socket.nothing_of("order.status", timeout=0.1)
    await socket.close()


async def test_an_open_socket_whose_database_was_restored_behind_it_gets_order_reset_at_the_next_check(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    settings.WS_POSITION_CHECK_SECONDS = 0.2
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/?after_seq=0", alice)
    await change(alice_order, "confirmed", staff)
    await change(alice_order, "preparing", staff)
    assert [(await socket.next("order.status"))["seq"] for _ in range(3)] == [1, 2, 3]
    await database_sync_to_async(restore_order_at_seq_1)(alice_order)
    assert await socket.next("order.reset", timeout=10) == {"type": "order.reset", "order_id": alice_order.pk,
                                                           "seq": 1}
    # The next change is seq 2 again, and this time the socket sends it: it is level with the log.
    await database_sync_to_async(alice_order.refresh_from_db)()
    await change(alice_order, "confirmed", staff)
    frame = await socket.next("order.status")
    assert (frame["seq"], frame["status"]) == (2, "confirmed")
    await socket.close()
