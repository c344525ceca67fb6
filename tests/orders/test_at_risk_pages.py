"""Where staff see at-risk orders: the admin's list (a column and a filter) and the staff board (a badge, a filter)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from orders import services
from orders.models import Order
from tests.helpers import make_order
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db


@pytest.fixture
def late_and_fine(alice: Any, bob: Any, staff: Any) -> tuple[Order, Order]:
    """Two open orders: one flagged at risk (by the check, on the test's clock), one not."""
    now = timezone.now()
    late, fine = make_order(alice), make_order(bob)
    services.update_order(order=late, changes={"promised_at": now - timedelta(hours=1)}, actor=staff)
    services.update_order(order=fine, changes={"promised_at": now + timedelta(days=30)}, actor=staff)
    assert services.flag_orders_at_risk(now=now) == [late]
    return late, fine


def staff_client(staff: Any) -> Client:
    client = Client()
    force_login_verified(client, staff)
    return client


def changelist_numbers(client: Client, query: str = "") -> set[str]:
    page = client.get(f"/admin/orders/order/{query}").content.decode()
    return set(re.findall(r"ORD-[0-9A-Z]{8}", page))


def test_the_admin_list_shows_an_at_risk_column_and_filters_by_it(
    staff: Any, late_and_fine: tuple[Order, Order]
) -> None:
    late, fine = late_and_fine
    client = staff_client(staff)
    page = client.get("/admin/orders/order/").content.decode()
    assert 'column-at_risk' in page and "By promise" in page
    row = page.split(late.number, 1)[1].split("</tr>", 1)[0]
    assert 'class="field-at_risk"><img src="/static/admin/img/icon-yes.svg" alt="True">' in row
    assert changelist_numbers(client, "?at_risk=yes") == {late.number}
    assert changelist_numbers(client, "?at_risk=no") == {fine.number}


def test_the_admin_change_form_says_when_the_order_was_flagged_and_its_customer_told(
    staff: Any, late_and_fine: tuple[Order, Order]
) -> None:
    late, _ = late_and_fine
    page = staff_client(staff).get(f"/admin/orders/order/{late.pk}/change/").content.decode()
    assert "At risk since" in page and "At risk notified at" in page


def test_a_delivered_order_leaves_the_at_risk_filter(staff: Any, late_and_fine: tuple[Order, Order]) -> None:
    late, _ = late_and_fine
    for status in ("confirmed", "preparing", "shipped", "out_for_delivery", "delivered"):
        services.change_status(order=late, to=status, actor=staff)
    assert changelist_numbers(staff_client(staff), "?at_risk=yes") == set()


def test_the_board_badges_at_risk_rows_and_filters_them(staff: Any, late_and_fine: tuple[Order, Order]) -> None:
    late, fine = late_and_fine
    client = staff_client(staff)
    page = client.get("/staff/").content.decode()

    def row(order: Order) -> str:
        return page.split(f'<tr data-order-id="{order.pk}"', 1)[1].split("</tr>", 1)[0]

    assert 'data-at-risk="true"' in row(late) and re.search(r'class="at-risk-badge"[^>]*>At risk<', row(late))
    assert 'data-at-risk="false"' in row(fine) and re.search(r'class="at-risk-badge"[^>]*hidden>', row(fine))
    assert re.search(r'<input type="checkbox" name="at_risk" value="1" id="at-risk-filter">', page)
    only = client.get("/staff/?at_risk=1").content.decode()
    assert late.number in only and fine.number not in only


def test_the_api_tells_staff_and_only_staff_which_orders_are_at_risk(
    alice: Any, staff: Any, late_and_fine: tuple[Order, Order]
) -> None:
    late, fine = late_and_fine
    client = staff_client(staff)
    listed = {order["id"]: order["at_risk"] for order in client.get("/api/orders/").json()["orders"]}
    assert listed == {late.pk: True, fine.pk: False}
    assert client.get(f"/api/orders/{late.pk}/").json()["at_risk"] is True
    customer = Client()
    force_login_verified(customer, alice)
    assert "at_risk" not in customer.get(f"/api/orders/{late.pk}/").json()


def test_the_customers_order_page_says_it_is_running_late_once_the_eta_passes_the_promise(
    alice: Any, staff: Any, late_and_fine: tuple[Order, Order]
) -> None:
    late, _ = late_and_fine
    on_time = make_order(alice)
    services.update_order(order=on_time, changes={"promised_at": timezone.now() + timedelta(days=9),
                                                  "eta": timezone.now() + timedelta(days=8)}, actor=staff)
    customer = Client()
    force_login_verified(customer, alice)
    notice = re.compile(r'<p class="notice" id="late-notice" role="status"( hidden)?>Running late: we now expect it')
    shown = notice.search(customer.get(f"/orders/{late.pk}/").content.decode())
    assert shown and shown.group(1) is None
    hidden = notice.search(customer.get(f"/orders/{on_time.pk}/").content.decode())
    assert hidden and hidden.group(1) == " hidden"
    german = customer.get(f"/orders/{late.pk}/", headers={"Accept-Language": "de"}).content.decode()
    assert "Verspätet: Wir erwarten die Lieferung jetzt später als zugesagt" in german
