"""Shipment and promise over the API: intake sets them, `PATCH /api/orders/<id>/` changes them (staff or an
`orders:write` key; 422 with field errors for a bad body; no event for a no-op), `GET` returns them with the items'
unit price and line total."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts import apikeys, tokens
from orders import idempotency
from orders.models import IdempotencyKey, Order, OrderEvent
from orders.schemas import OrderIn
from tests.helpers import make_user

ETA = "2026-12-03T16:00:00+00:00"
PROMISED = "2026-12-04T12:00:00+00:00"


def bearer(user_or_secret: Any) -> dict[str, str]:
    secret = user_or_secret if isinstance(user_or_secret, str) else tokens.issue_access_token(user_or_secret)
    return {"Authorization": f"Bearer {secret}"}


def patch(order: Order, body: Any, credential: Any) -> Any:
    return Client().patch(f"/api/orders/{order.pk}/", data=json.dumps(body), content_type="application/json",
                          headers=bearer(credential))


def events_of(order: Order) -> list[tuple[int, str]]:
    return list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("seq", "kind"))


@pytest.fixture
def writer(db: None) -> str:
    return apikeys.issue_api_key(name="shop", scopes=["orders:write"])[1]


def test_staff_patch_sets_the_fields_records_one_event_and_answers_the_order(staff: Any, alice_order: Order) -> None:
    response = patch(alice_order, {"carrier": "DHL", "tracking_number": "JJD01", "eta": "2026-12-03T17:00:00+01:00"},
                     staff)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["carrier"], body["tracking_number"], body["eta"], body["promised_at"], body["seq"]) == (
        "DHL", "JJD01", ETA, None, 2)
    assert body["carrier_tracking_url"].endswith("tracking-id=JJD01")
    assert body["events"][-1] == {"id": body["events"][-1]["id"], "seq": 2, "kind": "updated", "status": "pending",
                                  "previous": "pending", "at": body["events"][-1]["at"],
                                  "changes": {"carrier": "DHL", "tracking_number": "JJD01", "eta": ETA,
                                              "carrier_tracking_url": body["carrier_tracking_url"]}}
    assert body["events"][0]["kind"] == "status"
    assert events_of(alice_order) == [(1, "status"), (2, "updated")]


def test_patch_sets_only_the_fields_sent_and_null_clears_one(staff: Any, alice_order: Order) -> None:
    patch(alice_order, {"carrier": "UPS", "eta": ETA, "promised_at": PROMISED}, staff)
    body = patch(alice_order, {"eta": None}, staff).json()
    assert (body["carrier"], body["eta"], body["promised_at"]) == ("UPS", None, PROMISED)
    assert body["events"][-1]["changes"] == {"eta": None}


def test_a_no_op_patch_answers_the_order_and_records_no_event(staff: Any, alice_order: Order) -> None:
    patch(alice_order, {"carrier": "GLS"}, staff)
    for body in ({"carrier": "GLS"}, {"carrier": " GLS "}, {}):
        response = patch(alice_order, body, staff)
        assert response.status_code == 200 and response.json()["seq"] == 2
    assert events_of(alice_order) == [(1, "status"), (2, "updated")]


@pytest.mark.parametrize(("body", "field"), [
    ({"eta": "tomorrow"}, "eta"),
    ({"eta": "2026-12-03T16:00:00"}, "eta"),  # no offset
    ({"promised_at": 5}, "promised_at"),
    ({"carrier": "x" * 51}, "carrier"),
    ({"tracking_number": "x" * 101}, "tracking_number"),
    ({"tracking_number": "a\x00b"}, "tracking_number"),
    ({"status": "shipped"}, "status"),  # status changes through POST .../status/
])
def test_an_invalid_patch_is_422_naming_the_field_and_writes_nothing(
    staff: Any, alice_order: Order, body: dict[str, Any], field: str
) -> None:
    response = patch(alice_order, body, staff)
    assert response.status_code == 422, response.content
    assert field in [error["loc"][-1] for error in response.json()["errors"]]
    assert events_of(alice_order) == [(1, "status")]


def test_a_patch_that_is_not_an_object_is_refused(staff: Any, alice_order: Order) -> None:
    assert patch(alice_order, ["carrier"], staff).status_code == 422
    response = Client().patch(f"/api/orders/{alice_order.pk}/", data="{", content_type="application/json",
                              headers=bearer(staff))
    assert response.status_code == 400


def test_an_orders_write_key_may_patch_and_a_read_key_may_not(writer: str, alice_order: Order) -> None:
    assert patch(alice_order, {"tracking_number": "T1"}, writer).status_code == 200
    event = OrderEvent.objects.get(order=alice_order, seq=2)
    assert event.api_key is not None and event.actor is None
    reader = apikeys.issue_api_key(name="reader", scopes=["orders:read"])[1]
    response = patch(alice_order, {"tracking_number": "T2"}, reader)
    assert response.status_code == 403 and "orders:write" in response.json()["detail"]


def test_customers_and_staff_without_change_permission_may_not_patch(
    alice: Any, bob: Any, alice_order: Order
) -> None:
    assert patch(alice_order, {"carrier": "DHL"}, alice).status_code == 403  # their own order: read-only
    assert patch(alice_order, {"carrier": "DHL"}, bob).status_code == 404  # someone else's: not there at all
    viewer = make_user("viewer", is_staff=True)
    viewer.is_superuser = False
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    assert patch(alice_order, {"carrier": "DHL"}, viewer).status_code == 403
    assert Client().patch(f"/api/orders/{alice_order.pk}/", data="{}", content_type="application/json").status_code \
        == 401
    assert events_of(alice_order) == [(1, "status")]


def test_intake_sets_shipment_and_promise_and_get_returns_them_with_line_totals(
    writer: str, alice: Any
) -> None:
    body = {"customer": {"email": "alice@example.com"}, "currency": "GBP",
            "items": [{"name": "Tea", "quantity": 3, "unit_price": "2.50"}],
            "carrier": "Royal Mail", "tracking_number": "AB123456789GB", "promised_at": PROMISED, "eta": ETA}
    created = Client().post("/api/orders/", data=json.dumps(body), content_type="application/json",
                            headers=bearer(writer))
    assert created.status_code == 201, created.content
    order_id = created.json()["id"]
    detail = Client().get(f"/api/orders/{order_id}/", headers=bearer(alice)).json()
    assert (detail["currency"], detail["carrier"], detail["tracking_number"], detail["promised_at"], detail["eta"]) \
        == ("GBP", "Royal Mail", "AB123456789GB", PROMISED, ETA)
    assert detail["carrier_tracking_url"] == "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB"
    assert detail["items"] == [{"name": "Tea", "quantity": 3, "unit_price": "2.50", "line_total": "7.50"}]
    assert [event["kind"] for event in detail["events"]] == ["status"]


def test_intake_refuses_a_time_without_offset(writer: str) -> None:
    body = {"customer": {"email": "dana@example.com"}, "items": [{"name": "Tea", "quantity": 1, "unit_price": 1}],
            "eta": "2026-12-03 16:00"}
    response = Client().post("/api/orders/", data=json.dumps(body), content_type="application/json",
                             headers=bearer(writer))
    assert response.status_code == 422
    assert "eta" in [error["loc"][-1] for error in response.json()["errors"]]


def test_an_intake_without_shipment_fields_keeps_the_fingerprint_it_had_before_they_existed(writer: str) -> None:
    body = {"customer": {"email": "dana@example.com", "name": ""}, "items": [{"name": "Tea", "quantity": 1,
            "unit_price": "1.00"}], "external_ref": "", "shipping_address": "", "currency": "EUR"}
    before = idempotency.fingerprint(method="POST", path="/api/orders/",
                                     body=OrderIn.model_validate(body).model_dump(mode="json", exclude={
                                         "carrier", "tracking_number", "promised_at", "eta"}))
    created = Client().post("/api/orders/", data=json.dumps(body), content_type="application/json",
                            headers={**bearer(writer), "Idempotency-Key": "k-1"})
    assert created.status_code == 201
    assert IdempotencyKey.objects.get(key="k-1").fingerprint == before
