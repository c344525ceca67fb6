"""Replays longer than REPLAY_LIMIT are sent page by page: every event once, in order, then live ones."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from orders import services
from orders.models import Order
from tests.realtime.sockets import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

LIFECYCLE = ["confirmed", "preparing", "shipped", "out_for_delivery", "delivered"]


@pytest.fixture
def small_pages(settings: Any) -> None:
    settings.REPLAY_LIMIT = 2  # six events: three pages


async def statuses(socket: Socket, count: int) -> list[tuple[int, str]]:
    frames = [await socket.next("order.status") for _ in range(count)]
    return [(frame["seq"], frame["status"]) for frame in frames]


async def test_order_socket_replays_a_log_longer_than_one_page_in_full(
    small_pages: None, alice: Any, staff: Any, alice_order: Order
) -> None:
    for status in LIFECYCLE:
        await database_sync_to_async(services.change_status)(order=alice_order, to=status, actor=staff)
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/?after_seq=0", alice)
    assert await statuses(socket, 6) == list(enumerate(["pending", *LIFECYCLE], start=1))
    assert await socket.nothing_of("order.status")
    await socket.close()


async def test_subscribe_replays_a_log_longer_than_one_page_then_streams_live(
    small_pages: None, alice: Any, staff: Any, alice_order: Order
) -> None:
    for status in LIFECYCLE[:3]:
        await database_sync_to_async(services.change_status)(order=alice_order, to=status, actor=staff)
    socket = await Socket.open("/ws/notifications/", alice)
    await socket.send({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 0})
    assert await statuses(socket, 4) == list(enumerate(["pending", *LIFECYCLE[:3]], start=1))
    await database_sync_to_async(services.change_status)(order=alice_order, to=LIFECYCLE[3], actor=staff)
    assert await statuses(socket, 1) == [(5, LIFECYCLE[3])]
    assert await socket.nothing_of("order.status")
    await socket.close()
