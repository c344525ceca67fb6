"""The staff chat feed: every order's chat frames also reach staff's notification stream, never a customer's."""

from typing import Any

import pytest

from orders.models import Order
from tests.realtime.sockets import bearer_subprotocols, communicator

pytestmark = pytest.mark.django_db(transaction=True)




async def test_customer_chat_message_reaches_staff_notification_stream_but_not_customers_stream(
    alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    staff_ws = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(staff))
    alice_stream = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    bob_stream = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(bob))
    alice_chat = communicator(f"/ws/orders/{alice_order.pk}/chat/", subprotocols=await bearer_subprotocols(alice))
    for comm in (staff_ws, alice_stream, bob_stream, alice_chat):
        assert (await comm.connect())[0]

    await alice_chat.send_json_to({"type": "message", "text": "Where is my parcel?"})

    frame = await staff_ws.receive_json_from(timeout=3)
    while frame["type"] == "presence":  # alice's sockets joining are news for staff too
        frame = await staff_ws.receive_json_from(timeout=3)
    assert (frame["type"], frame["order_id"], frame["sender"], frame["text"]) == (
        "chat.message", alice_order.pk, "alice", "Where is my parcel?")
    assert (await alice_chat.receive_json_from(timeout=3))["id"] == frame["id"]
    assert await alice_stream.receive_nothing(timeout=0.5)
    assert await bob_stream.receive_nothing(timeout=0.5)
    for comm in (staff_ws, alice_stream, bob_stream, alice_chat):
        await comm.disconnect()
