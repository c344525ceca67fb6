"""The at-risk notice live: the new ETA reaches the customer's open order page as an `order.updated` frame on
the order's seq stream, and a page that was away gets it by `after_seq` replay."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from orders import services
from orders.models import Order
from tests.helpers import with_history
from tests.realtime.sockets import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


@database_sync_to_async
def late_order(order: Order, staff: Any) -> Order:
    now = timezone.now()
    with_history(order, [("confirmed", now - timedelta(hours=2)), ("preparing", now - timedelta(hours=1))],
                 created=now - timedelta(hours=3), actor=staff)
    services.update_order(order=order, changes={"promised_at": now}, actor=staff)
    order.refresh_from_db()
    return order


@database_sync_to_async
def check() -> list[Order]:
    return services.flag_orders_at_risk(now=timezone.now())


@database_sync_to_async
def eta_of(order: Order) -> str:
    order.refresh_from_db()
    assert order.eta is not None
    return order.eta.isoformat()


async def test_the_customer_sees_the_new_eta_live_and_once(alice: Any, staff: Any, alice_order: Order) -> None:
    order = await late_order(alice_order, staff)
    page = await Socket.open(f"/ws/orders/{order.pk}/?after_seq={order.seq}", alice)
    stream = await Socket.open("/ws/notifications/", alice)
    assert await check() == [order]

    frame = await page.next("order.updated")
    assert frame["order_id"] == order.pk and frame["seq"] == order.seq + 1
    assert frame["eta"] == await eta_of(order)
    assert (await stream.next("order.updated"))["eta"] == frame["eta"]
    assert await check() == []
    assert await page.nothing_of("order.updated"), "one notice, not one per check"
    await page.close()
    await stream.close()


async def test_a_page_that_was_away_gets_the_new_eta_by_replay(alice: Any, staff: Any, alice_order: Order) -> None:
    order = await late_order(alice_order, staff)
    await check()
    page = await Socket.open(f"/ws/orders/{order.pk}/?after_seq={order.seq}", alice)
    frame = await page.next("order.updated")
    assert frame["seq"] == order.seq + 1 and frame["eta"] == await eta_of(order)
    await page.close()
