"""The delivery receipt as stored and shown: services.mark_seen moves it forward only, for the customer only, without
touching `updated_at`; a stale copy's save cannot move it back; the API and the admin show it."""

from __future__ import annotations

from typing import Any

from django.test import Client

from orders import services
from orders.models import Order
from tests.orders.test_admin import change_form_data
from tests.orders.test_api import bearer
from tests.twofactor import force_login_verified


def stored(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def test_mark_seen_moves_forward_only_up_to_the_orders_seq_and_only_for_its_customer(
    alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    assert services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=bob.pk) is None
    assert services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=staff.pk) is None
    assert services.mark_seen(order_id=alice_order.pk, seq=3, customer_id=alice.pk) is None  # past the order's seq
    assert stored(alice_order).seen_seq == 0

    receipt = services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=alice.pk)
    assert receipt is not None and receipt.seq == 2
    assert receipt.committed_at == alice_order.events.get(seq=2).created_at
    assert (stored(alice_order).seen_seq, stored(alice_order).seen_at) == (2, receipt.at)
    assert services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=alice.pk) is None
    assert services.mark_seen(order_id=alice_order.pk, seq=1, customer_id=alice.pk) is None
    assert services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=None) is None  # a guest, repeating
    assert stored(alice_order).seen_seq == 2


def test_a_receipt_is_not_a_change_of_the_order_and_a_stale_copy_cannot_undo_it(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    stale = stored(alice_order)  # e.g. an admin form opened before the customer looked
    updated_at = stale.updated_at
    assert services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=alice.pk) is not None
    assert stored(alice_order).updated_at == updated_at  # updated_since readers are not sent it again
    stale.internal_note = "Called the carrier"
    stale.save()
    assert (stored(alice_order).seen_seq, stored(alice_order).internal_note) == (2, "Called the carrier")


def test_the_order_detail_shows_the_receipt_to_the_customer_and_staff(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    detail = Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(staff)).json()
    assert detail["seen"] is None
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    receipt = services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=alice.pk)
    assert receipt is not None
    for viewer in (staff, alice):
        detail = Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(viewer)).json()
        assert detail["seen"] == {"seq": 2, "at": receipt.at.isoformat()}
    assert "seen" in Client().get("/api/openapi.json").json()["components"]["schemas"]["OrderDetailOut"]["required"]


def test_the_admin_shows_what_the_customer_has_seen_and_its_form_does_not_write_it(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    client = Client()
    force_login_verified(client, staff)
    assert "not yet" in client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    services.change_status(order=alice_order, to="preparing", actor=staff)
    services.mark_seen(order_id=alice_order.pk, seq=2, customer_id=alice.pk)
    assert "up to seq 2 of 3" in client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    assert "up to seq 2 of 3" in client.get("/admin/orders/order/").content.decode()
    response = client.post(f"/admin/orders/order/{alice_order.pk}/change/",
                           change_form_data(stored(alice_order), internal_note="checked", seen_seq="0"))
    assert response.status_code == 302
    assert stored(alice_order).seen_seq == 2
