"""The notification and order sockets: authorization, live delivery, replay with after_seq, bad frames."""

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async

from orders import services
from orders.models import Order
from tests.helpers import make_order
from tests.realtime.sockets import bearer_subprotocols, close_code, communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]




async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def joined(comm: Any) -> None:
    """Connect and wait for the pong: it comes after the consumer joined its groups (accept comes before)."""
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=3))["type"] == "pong"


async def assert_silent(comm: Any, timeout: float = 0.5) -> None:
    assert await comm.receive_nothing(timeout=timeout)


async def test_owner_receives_status_change_and_other_customer_receives_nothing(
    alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    alice_ws = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    bob_ws = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(bob))
    staff_ws = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(staff))
    for comm in (alice_ws, bob_ws, staff_ws):
        await joined(comm)
    await change(alice_order, "confirmed", staff)
    frame = await alice_ws.receive_json_from(timeout=3)
    assert frame["type"] == "order.status"
    assert (frame["order_id"], frame["seq"], frame["status"], frame["previous"]) == (
        alice_order.pk, 2, "confirmed", "pending")
    assert frame["number"] == alice_order.number and frame["event_id"] and frame["at"]
    assert (await staff_ws.receive_json_from(timeout=3))["seq"] == 2
    await assert_silent(bob_ws)
    for comm in (alice_ws, bob_ws, staff_ws):
        await comm.disconnect()


async def test_customer_cannot_open_another_customers_order_socket(alice: Any, bob_order: Order) -> None:
    comm = communicator(f"/ws/orders/{bob_order.pk}/", subprotocols=await bearer_subprotocols(alice))
    assert await close_code(comm) == 4003


async def test_missing_order_is_closed_with_4004(alice: Any) -> None:
    assert await close_code(communicator("/ws/orders/999999/", subprotocols=await bearer_subprotocols(alice))) == 4004


async def test_order_socket_replays_events_after_seq_then_goes_live(alice: Any, staff: Any,
                                                                    alice_order: Order) -> None:
    for status in ("confirmed", "preparing", "shipped"):
        await change(alice_order, status, staff)
    comm = communicator(f"/ws/orders/{alice_order.pk}/?after_seq=1", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    replayed = [await comm.receive_json_from(timeout=3) for _ in range(3)]
    assert [(f["seq"], f["status"]) for f in replayed] == [(2, "confirmed"), (3, "preparing"), (4, "shipped")]
    await change(alice_order, "out_for_delivery", staff)
    live = await comm.receive_json_from(timeout=3)
    assert (live["seq"], live["status"]) == (5, "out_for_delivery")
    await assert_silent(comm)
    await comm.disconnect()


async def test_order_socket_without_after_seq_sends_only_new_events(alice: Any, staff: Any,
                                                                    alice_order: Order) -> None:
    await change(alice_order, "confirmed", staff)
    comm = communicator(f"/ws/orders/{alice_order.pk}/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await assert_silent(comm, 0.3)
    await change(alice_order, "preparing", staff)
    assert (await comm.receive_json_from(timeout=3))["seq"] == 3
    await comm.disconnect()


async def test_duplicate_push_is_sent_once_and_a_gap_is_filled_from_the_log(alice: Any, staff: Any,
                                                                            alice_order: Order) -> None:
    from realtime import push

    comm = communicator(f"/ws/orders/{alice_order.pk}/?after_seq=1", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await change(alice_order, "confirmed", staff)
    assert (await comm.receive_json_from(timeout=3))["seq"] == 2
    # The worker re-sends seq 2 (at-least-once), and seq 4 arrives before seq 3 ever did.
    event2 = await database_sync_to_async(lambda: alice_order.events.select_related("order").get(seq=2))()
    await database_sync_to_async(push.publish_event)(event2)
    celery_off = __import__("worker.celery", fromlist=["app"]).app
    celery_off.conf.task_always_eager = False
    try:
        from unittest import mock

        with mock.patch("orders.tasks.send_order_update.delay"):
            await change(alice_order, "preparing", staff)
            await change(alice_order, "shipped", staff)
    finally:
        celery_off.conf.task_always_eager = True
    event4 = await database_sync_to_async(lambda: alice_order.events.select_related("order").get(seq=4))()
    await database_sync_to_async(push.publish_event)(event4)
    frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
    assert [f["seq"] for f in frames] == [3, 4]
    await assert_silent(comm)
    await comm.disconnect()


async def test_subscribe_frame_replays_on_the_notification_stream(alice: Any, staff: Any,
                                                                  alice_order: Order) -> None:
    await change(alice_order, "confirmed", staff)
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 0})
    frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
    assert [f["seq"] for f in frames] == [1, 2]
    await change(alice_order, "preparing", staff)
    assert (await comm.receive_json_from(timeout=3))["seq"] == 3
    await comm.disconnect()


async def test_subscribe_to_another_customers_order_gets_an_error_frame_and_no_events(
    alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(bob))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 0})
    frame = await comm.receive_json_from(timeout=3)
    assert frame["type"] == "error" and frame["code"] == "forbidden"
    await change(alice_order, "confirmed", staff)
    await assert_silent(comm)
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe", "order_id": "x"}', "bad_frame"),
        ('{"type": "subscribe", "order_id": 1, "after_seq": -5}', "bad_frame"),
        ("[" * 5000 + "]" * 5000, "bad_json"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(alice: Any, raw: str, code: str) -> None:
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await comm.send_to(text_data=raw)
    frame = await comm.receive_json_from(timeout=3)
    assert frame["type"] == "error" and frame["code"] == code and frame["detail"]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


async def test_oversized_frame_closes_with_4009(alice: Any, settings: Any) -> None:
    settings.WS_MAX_FRAME_BYTES = 1024
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await comm.send_to(text_data='{"type":"ping","pad":"' + "x" * 2000 + '"}')
    message = await comm.receive_output(timeout=3)
    assert message == {"type": "websocket.close", "code": 4009, "reason": "frame too large"}


async def test_flooding_closes_with_4008(alice: Any, settings: Any) -> None:
    settings.WS_RATE_LIMIT_BURST = 5
    settings.WS_RATE_LIMIT_PER_SECOND = 0  # no refill: however slowly the frames are handled, the sixth is over
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    for _ in range(6):
        await comm.send_json_to({"type": "ping"})
    outputs = [await comm.receive_output(timeout=3) for _ in range(6)]
    assert outputs[-1] == {"type": "websocket.close", "code": 4008, "reason": "too many frames"}
    assert all(o["type"] == "websocket.send" for o in outputs[:5])


async def test_staff_sees_every_customers_order(staff: Any, alice: Any, bob: Any) -> None:
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(staff))
    await joined(comm)
    orders = [await database_sync_to_async(make_order)(user) for user in (alice, bob)]
    frames = [await comm.receive_json_from(timeout=3) for _ in range(2)]
    assert sorted(f["order_id"] for f in frames) == sorted(o.pk for o in orders)
    await comm.disconnect()


async def test_access_token_expiring_while_open_closes_with_4001(alice: Any, settings: Any) -> None:
    from datetime import timedelta

    settings.JWT_ACCESS_LIFETIME = timedelta(seconds=1)
    settings.JWT_LEEWAY_SECONDS = 0
    comm = communicator("/ws/notifications/", subprotocols=await bearer_subprotocols(alice))
    assert (await comm.connect())[0]
    await asyncio.sleep(0.2)
    message = await comm.receive_output(timeout=4)
    assert (message["type"], message["code"]) == ("websocket.close", 4001)
