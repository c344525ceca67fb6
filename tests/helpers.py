"""Plain helpers shared by the suites: users, orders, JSON over Django's test client. Fixtures live in
tests/conftest.py and the plugins under tests/fixtures/; helpers of one kind live in one module (sockets:
tests/realtime/sockets.py, browser pages: tests/browser/pages.py, processes: tests/e2e/processes.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import Order, OrderItem

PASSWORD = "correct-horse-battery"


def make_user(username: str, *, is_staff: bool = False, is_active: bool = True) -> Any:
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=is_staff, is_superuser=is_staff, is_active=is_active,
        email=f"{username}@example.com",
    )


def make_order(customer: Any) -> Order:
    order = Order.objects.create(customer=customer, shipping_address="1 Test Street")
    OrderItem.objects.create(order=order, name="Beans", quantity=2, unit_price="9.50")
    return order


def with_history(order: Order, steps: list[tuple[str, datetime]], *, created: datetime, actor: Any = None) -> Order:
    """Give `order` a history at chosen times: created at `created`, then each (status, at) in turn (the clock of
    the estimator's tests, orders/promises.py)."""
    from orders import services
    from orders.models import OrderEvent

    OrderEvent.objects.filter(order=order, seq=1).update(created_at=created)
    for status, at in steps:
        event = services.change_status(order=order, to=status, actor=actor)
        OrderEvent.objects.filter(pk=event.pk).update(created_at=at)
    Order.objects.filter(pk=order.pk).update(status_changed_at=steps[-1][1] if steps else created)
    order.refresh_from_db()
    return order


def restore_order_at_seq_1(order: Order) -> None:
    """What restoring a backup taken when the order was new does to it: raw rows, no model code, no push."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderevent WHERE order_id = %s AND seq > 1", [order.pk])
        cursor.execute("UPDATE orders_order SET seq = 1, status = 'pending' WHERE id = %s", [order.pk])


def post_json(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def login(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = post_json(client, "/api/auth/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def auth_header(access: str) -> dict[str, str]:
    """The Authorization header for an access token (or an API key)."""
    return {"Authorization": f"Bearer {access}"}
