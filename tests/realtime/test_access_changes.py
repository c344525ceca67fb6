"""Access decided at connect does not outlive its reason: a demoted staff member's feed, and a reassigned order's
previous customer's page and chat, close with 4003 within moments; posting to such a chat is refused."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission

from orders import services
from orders.models import ChatMessage, Order
from tests.helpers import make_user
from tests.realtime.sockets import Socket

pytestmark = pytest.mark.django_db(transaction=True)

SOON = 5  # seconds: a push, not the periodic re-check (set to an hour in these tests unless said otherwise)


@pytest.fixture
def slow_periodic_recheck(settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 3600


async def closed_with(socket: Socket, timeout: float = SOON) -> int:
    while True:
        message = await socket.comm.receive_output(timeout=timeout)
        if message["type"] == "websocket.close":
            return message["code"]


async def test_a_staff_member_demoted_while_connected_loses_the_all_orders_feed(
    slow_periodic_recheck: None, staff: Any, alice_order: Order
) -> None:
    board = await Socket.open("/ws/notifications/", staff)
    staff.is_staff = False
    await database_sync_to_async(staff.save)()
    assert await closed_with(board) == 4003


async def test_a_reassigned_orders_previous_customer_loses_its_page_and_chat(
    slow_periodic_recheck: None, alice: Any, bob: Any, alice_order: Order
) -> None:
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    alice_order.customer = bob
    await database_sync_to_async(alice_order.save)()
    assert await closed_with(page) == 4003
    assert await closed_with(chat) == 4003
    bobs_page = await Socket.open(f"/ws/orders/{alice_order.pk}/", bob)  # the new customer is let in
    await bobs_page.close()


async def test_a_change_that_sends_no_signal_is_caught_by_the_periodic_recheck(
    settings: Any, alice: Any, bob: Any, alice_order: Order
) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 1
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    await database_sync_to_async(Order.objects.filter(pk=alice_order.pk).update)(customer=bob)
    assert await closed_with(page) == 4003


async def test_posting_to_the_chat_of_an_order_that_changed_hands_is_refused(
    slow_periodic_recheck: None, alice: Any, bob: Any, alice_order: Order
) -> None:
    chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    await database_sync_to_async(Order.objects.filter(pk=alice_order.pk).update)(customer=bob)  # no signal
    await chat.send({"type": "message", "text": "still mine?"})
    assert await closed_with(chat) == 4003
    assert not await database_sync_to_async(ChatMessage.objects.filter(order=alice_order).exists)()


async def test_saving_a_user_or_an_order_leaves_sockets_that_may_stay_open(
    slow_periodic_recheck: None, alice: Any, staff: Any, alice_order: Order
) -> None:
    board = await Socket.open("/ws/notifications/", staff)
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    staff.first_name = "Sam"
    await database_sync_to_async(staff.save)()
    alice_order.internal_note = "fragile"
    await database_sync_to_async(alice_order.save)()
    for socket in (board, page):
        assert await socket.nothing_of("pong", timeout=1.5)  # the re-checks ran and closed nothing
        await socket.ping()
    # Positive control: the same sockets do close once the change matters.
    staff.is_staff = False
    await database_sync_to_async(staff.save)()
    assert await closed_with(board) == 4003
    await page.close()


async def test_staff_without_the_view_permission_get_a_customers_stream_not_every_order(
    slow_periodic_recheck: None, eager_celery: None, staff: Any, alice_order: Order
) -> None:
    clerk = await database_sync_to_async(make_user)("clerk")
    clerk.is_staff = True  # staff, but no orders permission: a customer here, as in the admin
    await database_sync_to_async(clerk.save)()
    stream = await Socket.open("/ws/notifications/", clerk)
    board = await Socket.open("/ws/notifications/", staff)  # positive control: the push did go out
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=None)
    assert (await board.next("order.status"))["seq"] == 2
    assert await stream.nothing_of("order.status", timeout=1.5)
    for socket in (stream, board):
        await socket.close()


async def test_taking_away_the_view_permission_closes_a_staff_stream(
    slow_periodic_recheck: None, eager_celery: None, alice_order: Order
) -> None:
    viewer = await database_sync_to_async(make_user)("viewer")
    view_order = await database_sync_to_async(Permission.objects.get)(codename="view_order")

    def grant() -> None:
        viewer.is_staff = True
        viewer.save()
        viewer.user_permissions.add(view_order)

    await database_sync_to_async(grant)()
    stream = await Socket.open("/ws/notifications/", viewer)
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=None)
    assert (await stream.next("order.status"))["seq"] == 2  # every order: it is a staff stream
    await database_sync_to_async(viewer.user_permissions.remove)(view_order)
    assert await closed_with(stream) == 4003
