"""The admin's change form sets the shipment and promise through orders.services.update_order: one order.updated
event for what changed, none for an unchanged form."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.test import Client

from orders import services
from orders.models import Order, OrderEvent
from tests.orders.test_admin import change_form_data
from tests.twofactor import force_login_verified


def staff_client(staff: Any) -> Client:
    client = Client()
    force_login_verified(client, staff)
    return client


def test_change_form_sets_shipment_fields_through_the_service(staff: Any, alice_order: Order) -> None:
    client = staff_client(staff)
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/", change_form_data(
        alice_order, status="confirmed", carrier="DPD", tracking_number="01234567", eta_0="2026-12-03",
        eta_1="16:00:00"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    order = Order.objects.get(pk=alice_order.pk)
    assert (order.status, order.carrier, order.tracking_number, order.eta, order.seq) == (
        "confirmed", "DPD", "01234567", datetime(2026, 12, 3, 16, tzinfo=UTC), 3)
    event = OrderEvent.objects.get(order=order, seq=3)
    assert (event.kind, event.actor, sorted(event.changes)) == (
        "updated", staff, ["carrier", "carrier_tracking_url", "eta", "tracking_number"])
    page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert 'value="DPD"' in page and "https://tracking.dpd.de/status/en_US/parcel/01234567" in page


def test_an_unchanged_change_form_records_no_update(staff: Any, alice_order: Order) -> None:
    services.update_order(order=alice_order, changes={"carrier": "UPS", "tracking_number": "1Z"}, actor=staff)
    response = staff_client(staff).post(f"/admin/orders/order/{alice_order.pk}/change/", change_form_data(
        alice_order, carrier="UPS", tracking_number="1Z", internal_note="fragile"))
    assert response.status_code == 302
    assert list(OrderEvent.objects.filter(order=alice_order).values_list("seq", flat=True)) == [1, 2]
    assert Order.objects.get(pk=alice_order.pk).internal_note == "fragile"


def test_a_bad_eta_in_the_change_form_is_a_form_error(staff: Any, alice_order: Order) -> None:
    response = staff_client(staff).post(f"/admin/orders/order/{alice_order.pk}/change/", change_form_data(
        alice_order, eta_0="not a date", eta_1="16:00"))
    assert response.status_code == 200 and "eta" in response.context["adminform"].form.errors
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_an_order_added_in_the_admin_starts_with_its_shipment_in_event_1(staff: Any, alice: Any) -> None:
    data = {"customer": str(alice.pk), "status": "pending", "shipping_address": "", "internal_note": "",
            "carrier": "GLS", "tracking_number": "ZX1", "promised_at_0": "2026-12-04", "promised_at_1": "12:00"}
    for prefix in ("items", "events", "chat_messages"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = staff_client(staff).post("/admin/orders/order/add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    order = Order.objects.get(customer=alice)
    assert (order.carrier, order.tracking_number, order.promised_at, order.seq) == (
        "GLS", "ZX1", datetime(2026, 12, 4, 12, tzinfo=UTC), 1)
