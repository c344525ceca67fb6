"""The guest tracking socket: /ws/orders/<id>/ with `Sec-WebSocket-Protocol: tracking, <token>`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from integrations import tracking
from orders import services
from orders.models import Order
from tests.realtime.sockets import close_code, communicator

pytestmark = pytest.mark.django_db(transaction=True)


def guest(path: str, token: str) -> Any:
    return communicator(path, subprotocols=["tracking", token])


async def token_of(order: Order) -> str:
    return await database_sync_to_async(tracking.tracking_token)(order)


async def test_a_guest_sees_its_orders_status_changes_live(alice_order: Order, eager_celery: None) -> None:
    comm = guest(f"/ws/orders/{alice_order.pk}/", await token_of(alice_order))
    connected, subprotocol = await comm.connect()
    assert connected and subprotocol == "tracking"
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=None)
    frame = await comm.receive_json_from(timeout=5)
    assert (frame["type"], frame["order_id"], frame["seq"], frame["status"]) == (
        "order.status", alice_order.pk, 2, "confirmed")
    await comm.disconnect()


async def test_a_guest_resumes_with_after_seq(alice_order: Order) -> None:
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=None)
    comm = guest(f"/ws/orders/{alice_order.pk}/?after_seq=0", await token_of(alice_order))
    assert (await comm.connect())[0]
    assert [(await comm.receive_json_from(timeout=3))["seq"] for _ in range(2)] == [1, 2]
    await comm.disconnect()


async def test_a_token_for_another_order_is_closed_with_4003(alice_order: Order, bob_order: Order) -> None:
    assert await close_code(guest(f"/ws/orders/{bob_order.pk}/", await token_of(alice_order))) == 4003


async def test_tampered_tokens_are_closed_with_4001(alice_order: Order) -> None:
    token = await token_of(alice_order)
    for bad in (token[:-2] + "zz", f"trk_{alice_order.pk}.7.{token.rsplit('.', 1)[1]}", "trk_1.0.x", "garbage"):
        assert await close_code(guest(f"/ws/orders/{alice_order.pk}/", bad)) == 4001, bad


async def test_an_expired_token_is_closed_with_4001(alice_order: Order, settings: Any) -> None:
    token = await token_of(alice_order)
    await database_sync_to_async(services.change_status)(order=alice_order, to="cancelled", actor=None)
    ended = timezone.now() - timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_CLOSED + 1)
    await database_sync_to_async(Order.objects.filter(pk=alice_order.pk).update)(status_changed_at=ended)
    assert await close_code(guest(f"/ws/orders/{alice_order.pk}/", token)) == 4001


async def test_the_chat_and_notification_sockets_refuse_tracking_tokens(alice_order: Order) -> None:
    token = await token_of(alice_order)
    assert await close_code(guest(f"/ws/orders/{alice_order.pk}/chat/", token)) == 4001
    assert await close_code(guest("/ws/notifications/", token)) == 4001


async def test_a_rotated_link_closes_its_open_socket_at_once(alice_order: Order, settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 3600  # not the periodic re-check: the rotation's own
    comm = guest(f"/ws/orders/{alice_order.pk}/", await token_of(alice_order))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}  # joined its groups
    await database_sync_to_async(tracking.rotate)(order=alice_order)
    message = await comm.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": 4003, "reason": "access changed"}
    await comm.disconnect(code=4003)


async def test_a_guest_gets_no_presence_and_sends_nothing_but_pings_and_receipts(alice_order: Order) -> None:
    comm = guest(f"/ws/orders/{alice_order.pk}/", await token_of(alice_order))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "message", "text": "hello"})
    assert (await comm.receive_json_from(timeout=3))["code"] == "unknown_type"
    await comm.send_json_to({"type": "subscribe", "order_id": 1})
    assert (await comm.receive_json_from(timeout=3))["code"] == "unknown_type"
    await asyncio.sleep(0)
    assert await comm.receive_nothing(timeout=0.3)
    await comm.disconnect()
