"""The admin: the change form refuses an illegal transition; bulk actions use the service and report skips."""

from typing import Any

from django.test import Client

from orders import services
from orders.models import Order
from tests.helpers import make_order
from tests.twofactor import force_login_verified


def change_form_data(order: Order, **changes: str) -> dict[str, str]:
    data = {
        "customer": str(order.customer_id), "status": order.status, "shipping_address": order.shipping_address,
        "internal_note": "",
    }
    # Inline formsets submitted empty: the test changes only the order's own fields.
    for prefix in ("items", "events", "chat_messages"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(changes)
    return data


def test_admin_list_filters_and_searches(staff: Any, alice_order: Order, bob_order: Order) -> None:
    client = Client()
    force_login_verified(client, staff)
    assert alice_order.number in client.get("/admin/orders/order/?status__exact=pending").content.decode()
    found = client.get(f"/admin/orders/order/?q={bob_order.number}").content.decode()
    assert bob_order.number in found and alice_order.number not in found
    bob_order.external_ref = "SHOP-77"
    bob_order.save(update_fields=["external_ref"])
    by_shop_ref = client.get("/admin/orders/order/?q=SHOP-77").content.decode()
    assert bob_order.number in by_shop_ref and alice_order.number not in by_shop_ref


def test_change_form_refuses_an_external_ref_another_order_has(staff: Any, alice_order: Order,
                                                               bob_order: Order) -> None:
    client = Client()
    force_login_verified(client, staff)
    bob_order.external_ref = "SHOP-77"
    bob_order.save(update_fields=["external_ref"])
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/",
                           change_form_data(alice_order, external_ref="SHOP-77"))
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert Order.objects.get(pk=alice_order.pk).external_ref == ""


def test_change_form_shows_timeline_and_refuses_illegal_transition(staff: Any, alice_order: Order) -> None:
    client = Client()
    force_login_verified(client, staff)
    page = client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    assert "Status timeline" in page
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/",
                           change_form_data(alice_order, status="shipped"))
    assert response.status_code == 200
    assert "cannot become shipped" in response.content.decode()
    assert Order.objects.get(pk=alice_order.pk).status == "pending"


def test_bulk_confirm_changes_pending_orders_and_reports_skipped_with_reason(staff: Any, alice: Any,
                                                                             bob: Any) -> None:
    pending, cancelled = make_order(alice), make_order(bob)
    services.change_status(order=cancelled, to="cancelled", actor=staff)
    client = Client()
    force_login_verified(client, staff)
    response = client.post("/admin/orders/order/", {"action": "confirm_orders",
                                                    "_selected_action": [pending.pk, cancelled.pk]}, follow=True)
    page = response.content.decode()
    assert "1 order is now Confirmed." in page
    assert f"Skipped 1 order: {cancelled.number}" in page and "cannot change status any more" in page
    assert Order.objects.get(pk=pending.pk).status == "confirmed"
    assert list(Order.objects.get(pk=pending.pk).events.values_list("actor", flat=True)) == [None, staff.pk]


def test_change_form_changes_status_through_the_service_with_staff_as_actor(staff: Any, alice_order: Order) -> None:
    client = Client()
    force_login_verified(client, staff)
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/",
                           change_form_data(alice_order, status="confirmed", internal_note="rang the customer"))
    assert response.status_code == 302
    stored = Order.objects.get(pk=alice_order.pk)
    assert (stored.status, stored.seq, stored.internal_note) == ("confirmed", 2, "rang the customer")
    assert list(stored.events.values_list("seq", "to_status", "actor")) == [(1, "pending", None),
                                                                           (2, "confirmed", staff.pk)]


def test_change_form_saving_other_fields_records_no_event(staff: Any, alice_order: Order) -> None:
    client = Client()
    force_login_verified(client, staff)
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/",
                           change_form_data(alice_order, internal_note="leave at the door"))
    assert response.status_code == 302
    assert Order.objects.get(pk=alice_order.pk).internal_note == "leave at the door"
    assert alice_order.events.count() == 1


def test_add_form_creates_the_order_with_its_first_event(staff: Any, alice: Any) -> None:
    client = Client()
    force_login_verified(client, staff)
    data = {"customer": str(alice.pk), "status": "pending", "shipping_address": "3 New Road", "internal_note": ""}
    for prefix in ("items", "events", "chat_messages"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    assert client.post("/admin/orders/order/add/", data).status_code == 302
    order = Order.objects.get(shipping_address="3 New Road")
    assert list(order.events.values_list("seq", "to_status")) == [(1, "pending")]


def test_change_form_shows_only_the_latest_chat_messages_and_links_to_all_of_them(staff: Any,
                                                                                  alice_order: Order) -> None:
    from orders.admin import CHAT_INLINE_LIMIT
    from orders.models import ChatMessage

    ChatMessage.objects.bulk_create([ChatMessage(order=alice_order, sender=alice_order.customer, text=f"msg-{n:03}")
                                     for n in range(CHAT_INLINE_LIMIT + 30)])
    client = Client()
    force_login_verified(client, staff)
    page = client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    assert "msg-000" not in page and "msg-029" not in page, "the oldest messages are not rendered"
    assert "msg-030" in page and f"msg-{CHAT_INLINE_LIMIT + 29:03}" in page
    assert f"the latest {CHAT_INLINE_LIMIT} of {CHAT_INLINE_LIMIT + 30} shown below" in page
    listing = client.get(f"/admin/orders/chatmessage/?order__id__exact={alice_order.pk}").content.decode()
    assert "msg-000" in listing and f"{CHAT_INLINE_LIMIT + 30} chat messages" in listing
