"""The position check: a push lost on its way (never sent, dropped by a full channel) reaches an order socket, a
customer's stream and a staff stream within one check interval, with no later change and no ping needed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from orders import services, tasks
from orders.models import Order, OrderEvent
from realtime import positions, push
from tests.helpers import make_order
from tests.realtime.sockets import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

CHECK_EVERY = 0.3


@pytest.fixture
def frequent_checks(settings: Any) -> None:
    settings.WS_POSITION_CHECK_SECONDS = CHECK_EVERY


@pytest.fixture
def pushes_lost(monkeypatch: Any) -> None:
    """Status changes reach the log but their pushes never leave (a lost push, as far as any socket can tell)."""
    monkeypatch.setattr(tasks, "enqueue_push", lambda event_id: None)


async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def seqs_until(socket: Socket, order_id: int, last: int, timeout: float = 15) -> list[int]:
    """The seqs of the order's status frames, as they arrive, up to `last`."""
    seqs: list[int] = []
    while not seqs or seqs[-1] < last:
        frame = await socket.next("order.status", timeout=timeout)
        if frame["order_id"] == order_id:
            seqs.append(frame["seq"])
    return seqs


@pytest.mark.parametrize("who, path", [("alice", "order"), ("alice", "stream"), ("staff", "stream")])
@pytest.mark.usefixtures("frequent_checks")
async def test_an_event_whose_push_never_came_reaches_the_socket_at_the_next_check(
    who: str, path: str, alice: Any, staff: Any, alice_order: Order, pushes_lost: None
) -> None:
    user = {"alice": alice, "staff": staff}[who]
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/" if path == "order" else "/ws/notifications/", user)
    await change(alice_order, "confirmed", staff)
    await change(alice_order, "preparing", staff)
    seqs = await seqs_until(socket, alice_order.pk, 3)
    if who == "staff":
        # A staff stream starts an order it has not seen at the latest event a check finds, then goes on in order.
        assert seqs == list(range(seqs[0], 4))
    else:
        assert seqs == [2, 3]
    assert await socket.nothing_of("order.status", timeout=CHECK_EVERY * 3)
    await socket.close()


@pytest.mark.usefixtures("frequent_checks")
async def test_an_order_created_after_a_customers_stream_opened_reaches_it_though_no_push_came(
    alice: Any, staff: Any, pushes_lost: None
) -> None:
    socket = await Socket.open("/ws/notifications/", alice)
    order = await database_sync_to_async(make_order)(alice)
    assert await seqs_until(socket, order.pk, 1) == [1]
    await socket.close()


@pytest.mark.usefixtures("frequent_checks")
async def test_a_push_dropped_by_a_full_channel_reaches_the_socket_at_the_next_check(
    alice: Any, staff: Any, alice_order: Order, pushes_lost: None, settings: Any, caplog: Any
) -> None:
    layers = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": {**layers["default"]["CONFIG"],
                                                                          "capacity": 1}}}
    channel_layers.backends = {}
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    for status in ("confirmed", "preparing", "shipped"):
        await change(alice_order, status, staff)
    events = await database_sync_to_async(list)(
        OrderEvent.objects.select_related("order").filter(order=alice_order, seq__gt=1).order_by("seq"))
    # Pushed while this event loop, and so the socket's consumer, is blocked: the channel holds one message and
    # the layer drops what comes after, as it does for a server that falls behind.
    with caplog.at_level(logging.INFO, logger="channels_redis"):
        for event in events:
            push.publish_event(event)
    assert "over capacity" in caplog.text
    assert await seqs_until(socket, alice_order.pk, 4) == [2, 3, 4]
    await socket.close()


@pytest.mark.usefixtures("frequent_checks")
async def test_one_database_read_per_check_serves_every_socket_of_the_process(
    alice: Any, bob: Any, staff: Any, alice_order: Order, bob_order: Order, monkeypatch: Any
) -> None:
    reads: list[list[positions.Following]] = []
    read_positions = positions.read_positions

    def counted(followings: list[positions.Following], changed_since: Any) -> positions.Positions:
        reads.append(followings)
        return read_positions(followings, changed_since)

    monkeypatch.setattr(positions, "read_positions", counted)
    sockets = [
        await Socket.open(f"/ws/orders/{alice_order.pk}/", alice),
        await Socket.open(f"/ws/orders/{bob_order.pk}/", bob),
        await Socket.open("/ws/notifications/", alice),
        await Socket.open("/ws/notifications/", staff),
    ]
    reads.clear()
    deadline = asyncio.get_running_loop().time() + 15
    while len(reads) < 2 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    assert len(reads) >= 2
    assert [len(followings) for followings in reads] == [len(sockets)] * len(reads)
    for socket in sockets:
        await socket.close()
