"""The order chat: who may join, history on join, sender from the authenticated user, limits, staff replies."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.test import Client

from orders.models import ChatMessage, Order
from tests.e2e.browser_session import FormParser
from tests.realtime.sockets import Socket, bearer_subprotocols, close_code, communicator
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db(transaction=True)




def chat(order: Order) -> str:
    return f"/ws/orders/{order.pk}/chat/"


async def closed_with(socket: Socket) -> tuple[int, str]:
    """Read up to the close message, which must come next or after frames already on the wire: (code, reason)."""
    while True:
        message = await socket.comm.receive_output(timeout=3)
        if message["type"] == "websocket.close":
            return message["code"], message.get("reason", "")


async def test_joining_sends_the_last_50_messages_oldest_first(alice: Any, staff: Any, alice_order: Order) -> None:
    await database_sync_to_async(ChatMessage.objects.bulk_create)(
        [ChatMessage(order=alice_order, sender=alice if i % 2 else staff, text=f"m{i}") for i in range(55)]
    )
    socket = await Socket.open(chat(alice_order), alice)
    history = [socket.kept.pop(0) for _ in range(50)] if len(socket.kept) >= 50 else None
    assert history is not None, f"expected 50 history frames before pong, got {len(socket.kept)}"
    assert [frame["text"] for frame in history] == [f"m{i}" for i in range(5, 55)]
    assert {frame["type"] for frame in history} == {"chat.message"}
    assert [frame["sender"] for frame in history[:2]] == ["alice", "staff"]
    assert all(frame["order_id"] == alice_order.pk and frame["id"] and frame["at"] for frame in history)
    assert socket.kept == []
    await socket.close()


async def test_messages_reach_the_room_with_the_authenticated_sender_whatever_the_frame_claims(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    alice_chat = await Socket.open(chat(alice_order), alice)
    staff_chat = await Socket.open(chat(alice_order), staff)
    await alice_chat.send({"type": "message", "text": "  Where is my parcel?  ", "sender": "staff", "user": 1})

    for socket in (alice_chat, staff_chat):
        frame = await socket.next("chat.message")
        assert (frame["order_id"], frame["sender"], frame["text"]) == (alice_order.pk, "alice", "Where is my parcel?")
    stored = await database_sync_to_async(lambda: list(ChatMessage.objects.values_list("sender__username", "text")))()
    assert stored == [("alice", "Where is my parcel?")]

    await staff_chat.send({"type": "message", "text": "It ships today."})
    assert (await alice_chat.next("chat.message"))["sender"] == "staff"
    await alice_chat.close()
    await staff_chat.close()


async def test_customer_cannot_join_another_customers_chat(alice: Any, bob: Any, alice_order: Order) -> None:
    assert await close_code(communicator(chat(alice_order), subprotocols=await bearer_subprotocols(bob))) == 4003
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0


async def test_chat_of_a_missing_order_is_closed_with_4004(alice: Any) -> None:
    comm = communicator("/ws/orders/999999/chat/", subprotocols=await bearer_subprotocols(alice))
    assert await close_code(comm) == 4004


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "text": "   "}, "empty_message"),
        ({"type": "message"}, "empty_message"),
        ({"type": "message", "text": 42}, "empty_message"),
        ({"type": "message", "text": "x" * 2001}, "message_too_long"),
    ],
)
async def test_empty_or_overlong_messages_get_an_error_frame_and_nothing_is_stored(
    alice: Any, alice_order: Order, settings: Any, frame: dict[str, Any], code: str
) -> None:
    settings.WS_MAX_FRAME_BYTES = 64 * 1024
    socket = await Socket.open(chat(alice_order), alice)
    await socket.send(frame)
    error = await socket.next("error")
    assert error["code"] == code and error["detail"]
    await socket.ping()  # still open
    await socket.send({"type": "message", "text": "x" * 2000 + "\n"})  # the limit counts the trimmed text
    assert len((await socket.next("chat.message"))["text"]) == 2000
    assert await database_sync_to_async(ChatMessage.objects.count)() == 1
    await socket.close()


async def test_a_user_posting_faster_than_the_chat_rate_is_closed_with_4008_across_tabs(
    alice: Any, alice_order: Order, settings: Any
) -> None:
    settings.CHAT_MESSAGES_PER_MINUTE = 3
    first_tab = await Socket.open(chat(alice_order), alice)
    second_tab = await Socket.open(chat(alice_order), alice)
    for text in ("one", "two"):
        await first_tab.send({"type": "message", "text": text})
        await first_tab.next("chat.message")
    await second_tab.send({"type": "message", "text": "three"})
    await second_tab.next("chat.message")
    await second_tab.send({"type": "message", "text": "four"})
    # The chat limit, told apart from the frame-rate limit by its reason.
    assert await closed_with(second_tab) == (4008, "too many chat messages")
    assert await database_sync_to_async(ChatMessage.objects.count)() == 3
    await first_tab.close()


async def test_flooding_the_chat_socket_with_frames_closes_it_with_4008(
    alice: Any, alice_order: Order, settings: Any
) -> None:
    settings.WS_RATE_LIMIT_BURST = 5
    settings.WS_RATE_LIMIT_PER_SECOND = 0  # no refill: however slowly the frames are handled, the sixth is over
    comm = communicator(chat(alice_order), subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    for _ in range(6):
        await comm.send_json_to({"type": "message", "text": "hi"})
    assert await closed_with(Socket(comm)) == (4008, "too many frames")
    assert await database_sync_to_async(ChatMessage.objects.count)() == 5


async def test_an_oversized_chat_frame_closes_with_4009_and_stores_nothing(
    alice: Any, alice_order: Order, settings: Any
) -> None:
    settings.WS_MAX_FRAME_BYTES = 1024
    socket = await Socket.open(chat(alice_order), alice)
    await socket.send({"type": "message", "text": "x" * 1500})
    assert await closed_with(socket) == (4009, "frame too large")
    assert await database_sync_to_async(ChatMessage.objects.count)() == 0


def submit_admin_reply(staff: Any, order: Order, reply: str) -> str:
    """Submit the order's admin change form as a browser would, with a reply typed in."""
    client = Client()
    force_login_verified(client, staff)
    path = f"/admin/orders/order/{order.pk}/change/"
    page = client.get(path)
    assert page.status_code == 200
    parser = FormParser("order_form")
    parser.feed(page.content.decode())
    fields = dict(parser.fields)
    assert "reply" in fields, "the change form offers a reply field"
    fields["reply"] = reply
    response = client.post(path, fields, follow=True)
    assert response.status_code == 200
    return response.content.decode()


async def test_staff_reply_from_the_admin_reaches_the_customers_chat(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    alice_chat = await Socket.open(chat(alice_order), alice)
    page = await sync_to_async(submit_admin_reply)(staff, alice_order, "Your parcel left the depot.")
    assert "Reply sent" in page
    frame = await alice_chat.next("chat.message")
    assert (frame["sender"], frame["text"]) == ("staff", "Your parcel left the depot.")
    # The order itself was not changed by a reply-only save: no status event beyond creation.
    assert await database_sync_to_async(lambda: alice_order.events.count())() == 1
    await alice_chat.close()


def watching_now(html: str) -> str:
    match = re.search(r"Watching now:?</label>\s*<div class=\"readonly\">(.*?)</div>", html, re.DOTALL)
    assert match, "the change form shows who is watching"
    return match.group(1).strip()


async def test_admin_change_form_shows_who_is_watching(alice: Any, staff: Any, alice_order: Order) -> None:
    alice_page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)

    def change_page() -> str:
        client = Client()
        force_login_verified(client, staff)
        return client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()

    assert watching_now(await sync_to_async(change_page)()) == "alice"
    await alice_page.close()
    assert watching_now(await sync_to_async(change_page)()) == "nobody"


def test_admin_order_list_filters_chats_awaiting_a_staff_reply(
    alice: Any, bob: Any, staff: Any, alice_order: Order, bob_order: Order
) -> None:
    ChatMessage.objects.create(order=alice_order, sender=alice, text="Hello?")
    ChatMessage.objects.create(order=bob_order, sender=bob, text="Hi")
    ChatMessage.objects.create(order=bob_order, sender=staff, text="Hi Bob, how can we help?")
    client = Client()
    force_login_verified(client, staff)
    awaiting = client.get("/admin/orders/order/?chat=awaiting").content.decode()
    assert alice_order.number in awaiting and bob_order.number not in awaiting
    answered = client.get("/admin/orders/order/?chat=answered").content.decode()
    assert bob_order.number in answered and alice_order.number not in answered
