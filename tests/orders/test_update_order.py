"""orders.services.update_order: shipment and promise changes as `updated` events on the order's seq stream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from accounts import apikeys
from integrations import webhooks
from integrations.models import WebhookDelivery, WebhookEndpoint
from orders import carriers, services
from orders.delivery import offer_email_fallback
from orders.models import Order, OrderEvent, StatusWriteRefused

ETA = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
PROMISED = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_update_order_writes_the_fields_and_an_updated_event_with_the_next_seq(
    alice_order: Order, staff: Any
) -> None:
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    event = services.update_order(order=alice_order, changes={"carrier": " DHL ", "tracking_number": "JJD01",
                                                                "eta": ETA}, actor=staff)
    assert event is not None
    assert (event.seq, event.kind, event.actor, event.from_status, event.to_status) == (
        3, OrderEvent.Kind.UPDATED, staff, "confirmed", "confirmed")
    assert event.changes == {
        "carrier": "DHL", "tracking_number": "JJD01", "eta": ETA.isoformat(),
        "carrier_tracking_url": carriers.carrier_tracking_url("DHL", "JJD01"),
    }
    stored = Order.objects.get(pk=alice_order.pk)
    assert (stored.seq, stored.status, stored.carrier, stored.tracking_number, stored.eta) == (
        3, "confirmed", "DHL", "JJD01", ETA)
    assert (alice_order.seq, alice_order.eta) == (3, ETA)  # the caller's copy follows
    # The status stream goes on after it without a gap.
    assert services.change_status(order=alice_order, to="preparing", actor=staff).seq == 4


def test_only_what_changed_is_recorded_and_a_no_op_writes_no_event(alice_order: Order, staff: Any) -> None:
    services.update_order(order=alice_order, changes={"carrier": "UPS", "promised_at": PROMISED}, actor=staff)
    assert services.update_order(order=alice_order, changes={"carrier": "UPS", "promised_at": PROMISED},
                                 actor=staff) is None
    assert services.update_order(order=alice_order, changes={}, actor=staff) is None
    event = services.update_order(order=alice_order, changes={"carrier": "UPS", "eta": ETA}, actor=staff)
    assert event is not None and event.changes == {"eta": ETA.isoformat()}
    assert list(OrderEvent.objects.filter(order=alice_order).values_list("seq", flat=True)) == [1, 2, 3]


def test_clearing_a_field_is_a_change_and_the_link_follows_the_carrier(alice_order: Order, staff: Any) -> None:
    services.update_order(order=alice_order, changes={"carrier": "DPD", "tracking_number": "0123",
                                                      "eta": ETA}, actor=staff)
    event = services.update_order(order=alice_order, changes={"carrier": "Acme Freight", "eta": None}, actor=staff)
    assert event is not None
    assert event.changes == {"carrier": "Acme Freight", "eta": None, "carrier_tracking_url": None}
    assert Order.objects.get(pk=alice_order.pk).eta is None


def test_an_api_key_is_recorded_as_the_events_actor(alice_order: Order) -> None:
    key, _ = apikeys.issue_api_key(name="shop", scopes=["orders:write"])
    event = services.update_order(order=alice_order, changes={"tracking_number": "T1"}, actor=key)
    assert event is not None and (event.api_key, event.actor) == (key, None)


def test_unknown_fields_and_naive_times_are_refused_and_write_nothing(alice_order: Order, staff: Any) -> None:
    with pytest.raises(ValueError, match="status"):
        services.update_order(order=alice_order, changes={"status": "shipped"}, actor=staff)
    with pytest.raises(ValueError, match="timezone-aware"):
        services.update_order(order=alice_order, changes={"eta": datetime(2026, 12, 3)}, actor=staff)  # noqa: DTZ001
    with pytest.raises(ValueError, match="too long"):
        services.update_order(order=alice_order, changes={"carrier": "x" * 51}, actor=staff)
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_plain_save_and_queryset_update_of_shipment_fields_are_refused(alice_order: Order) -> None:
    order = Order.objects.get(pk=alice_order.pk)
    order.eta = ETA
    with pytest.raises(StatusWriteRefused, match=r"orders\.services\.update_order"):
        order.save()
    with pytest.raises(StatusWriteRefused, match="update_order"):
        Order.objects.filter(pk=alice_order.pk).update(carrier="DHL")
    assert Order.objects.get(pk=alice_order.pk).eta is None


def test_stale_copy_saving_other_fields_cannot_rewind_shipment_fields(alice_order: Order, staff: Any) -> None:
    stale = Order.objects.get(pk=alice_order.pk)
    services.update_order(order=alice_order, changes={"tracking_number": "T1"}, actor=staff)
    stale.internal_note = "fragile"
    stale.save()
    stored = Order.objects.get(pk=alice_order.pk)
    assert (stored.tracking_number, stored.internal_note, stored.seq) == ("T1", "fragile", 2)


def test_intake_sets_the_shipment_fields_in_the_first_event(alice: Any) -> None:
    order = services.take_order(
        email="carol@example.com", name="Carol", actor=None,
        items=[services.NewItem(name="Tea", quantity=3, unit_price=Decimal("2.50"))],
        shipment=services.Shipment(carrier="GLS", tracking_number="ZX9", promised_at=PROMISED, eta=ETA),
    )
    assert (order.carrier, order.tracking_number, order.promised_at, order.eta, order.seq) == (
        "GLS", "ZX9", PROMISED, ETA, 1)
    assert order.carrier_tracking_url == "https://gls-group.com/track/ZX9"


def test_updated_event_gets_an_order_updated_webhook_and_no_status_email(
    alice_order: Order, staff: Any, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    statuses = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/status", events=["order.status"])
    updates = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/updated", events=["order.updated"])
    event = services.update_order(order=alice_order, changes={"eta": ETA}, actor=staff)
    assert event is not None
    delivery = WebhookDelivery.objects.get(event=event)
    assert delivery.endpoint == updates and delivery.endpoint != statuses
    assert delivery.event_type == "order.updated"
    assert delivery.payload["data"] == {"order_id": alice_order.pk, "number": alice_order.number,
                                        "external_ref": None, "seq": 2, "at": event.created_at.isoformat(),
                                        "eta": ETA.isoformat()}
    assert webhooks.event_type(event) == "order.updated"
    assert not event.is_status_change
    assert offer_email_fallback(event) is False  # nobody is connected, yet no status e-mail for a new ETA


@pytest.mark.parametrize(("carrier", "number", "url"), [
    ("DHL", "JJD 01", "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?submit=1&tracking-id=JJD%2001"),
    ("Royal Mail", "AB1/2", "https://www.royalmail.com/track-your-item#/tracking-results/AB1%2F2"),
    ("fed-ex", "7", "https://www.fedex.com/fedextrack/?trknbr=7"),
    ("Acme", "7", None),
    ("UPS", "  ", None),
])
def test_known_carriers_link_their_tracking_page(carrier: str, number: str, url: str | None) -> None:
    assert carriers.carrier_tracking_url(carrier, number) == url


def test_the_previous_releases_inserts_without_the_new_columns_still_work(alice: Any, alice_order: Order) -> None:
    """During an upgrade the old processes write rows without carrier, tracking_number, kind or changes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO orders_orderevent (order_id, seq, from_status, to_status, created_at) "
                       "VALUES (%s, 2, 'pending', 'confirmed', now()) RETURNING id", [alice_order.pk])
        event_id = cursor.fetchone()[0]
        cursor.execute("INSERT INTO orders_order (number, customer_id, status, seq, shipping_address, external_ref, "
                       "currency, internal_note, created_at, updated_at) VALUES ('ORD-OLD00001', %s, 'pending', 1, "
                       "'', '', 'EUR', '', now(), now()) RETURNING id", [alice.pk])
        order_id = cursor.fetchone()[0]
    event = OrderEvent.objects.get(pk=event_id)
    assert (event.kind, event.changes, event.is_status_change) == (OrderEvent.Kind.STATUS, {}, True)
    old = Order.objects.get(pk=order_id)
    assert (old.carrier, old.tracking_number, old.promised_at, old.eta) == ("", "", None, None)
