"""POST/GET/DELETE /api/webhooks/: a webhooks:manage key or staff with the webhook permission; 422 with field
errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts import apikeys, tokens
from integrations.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def bearer(user: Any) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.issue_access_token(user)}"}


def key(*scopes: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {apikeys.issue_api_key(name='shop', scopes=list(scopes))[1]}"}


def post(client: Client, body: Any, **headers: str) -> Any:
    return client.post("/api/webhooks/", json.dumps(body), content_type="application/json", **headers)


def test_staff_register_an_endpoint_and_see_its_secret_once(staff: Any, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    client = Client()
    response = post(client, {"url": "https://hooks.example.com/in", "events": ["order.status"]}, **bearer(staff))
    assert response.status_code == 201
    body = response.json()
    assert body["url"] == "https://hooks.example.com/in" and body["events"] == ["order.status"]
    assert body["secret"].startswith("whsec_") and body["secret"] == WebhookEndpoint.objects.get().secret
    listed = client.get("/api/webhooks/", **bearer(staff)).json()["webhooks"]
    assert [(e["id"], e["url"]) for e in listed] == [(body["id"], body["url"])]
    assert "secret" not in listed[0]
    assert client.delete(f"/api/webhooks/{body['id']}/", **bearer(staff)).status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert client.delete(f"/api/webhooks/{body['id']}/", **bearer(staff)).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"url": "http://hooks.example.com/in", "events": ["order.status"]}, "url"),
    ({"url": "https://hooks.example.com/in", "events": ["order.deleted"]}, "events"),
    ({"url": "https://hooks.example.com/in", "events": []}, "events"),
    ({"url": "https://user:pw@hooks.example.com/in", "events": ["order.status"]}, "url"),
    ({"url": 5, "events": ["order.status"]}, "url"),
    ({"events": ["order.status"]}, "url"),
    ({"url": "https://hooks.example.com/in", "events": "order.status"}, "events"),
])
def test_invalid_endpoints_get_422_naming_the_field(staff: Any, body: Any, field: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = post(Client(), body, **bearer(staff))
    assert response.status_code == 422, response.content
    assert field in [error["loc"][-1] for error in response.json()["errors"]]
    assert not WebhookEndpoint.objects.exists()


def test_a_webhooks_manage_key_manages_endpoints_and_other_keys_get_403(db: None, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    client = Client()
    manager = key("webhooks:manage")
    created = post(client, {"url": "https://hooks.example.com/in", "events": ["order.created"]}, **manager)
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert WebhookEndpoint.objects.get().created_by is None
    assert client.get("/api/webhooks/", **manager).status_code == 200
    orders_only = key("orders:read", "orders:write")
    refused = client.get("/api/webhooks/", **orders_only)
    assert refused.status_code == 403 and "webhooks:manage" in refused.json()["detail"]
    assert client.delete(f"/api/webhooks/{created.json()['id']}/", **orders_only).status_code == 403
    assert client.delete(f"/api/webhooks/{created.json()['id']}/", **manager).status_code == 204


def test_customers_may_not_manage_webhooks(alice: Any) -> None:
    client = Client()
    assert post(client, {"url": "https://hooks.example.com/in", "events": ["order.status"]},
                **bearer(alice)).status_code == 403
    assert client.get("/api/webhooks/", **bearer(alice)).status_code == 403


def test_anonymous_callers_get_401() -> None:
    assert Client().get("/api/webhooks/").status_code == 401
    assert Client().get("/api/webhooks/", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401


def test_intake_and_the_order_list_return_a_working_tracking_url(db: None, settings: Any) -> None:
    from integrations import tracking
    from orders.models import Order

    settings.SITE_URL = "https://orders.example.com"
    body = {"external_ref": "SHOP-1", "customer": {"email": "dana@example.com", "name": "Dana"},
            "items": [{"name": "Beans", "quantity": 1, "unit_price": "9.50"}], "shipping_address": "1 Main St",
            "currency": "EUR"}
    client = Client()
    created = client.post("/api/orders/", json.dumps(body), content_type="application/json",
                          **key("orders:write", "orders:read"))
    assert created.status_code == 201, created.content
    url = created.json()["tracking_url"]
    assert url.startswith("https://orders.example.com/t/trk_")
    token = url.removeprefix("https://orders.example.com/t/")
    assert tracking.verify(token).pk == created.json()["id"]
    assert Client().get(f"/t/{token}").status_code == 200
    tracking.rotate(order=Order.objects.get(pk=created.json()["id"]))
    listed = client.get("/api/orders/", **key("orders:read")).json()["orders"]
    assert [o["tracking_url"] for o in listed] == [tracking.tracking_url(Order.objects.get(pk=created.json()["id"]))]
    assert listed[0]["tracking_url"] != url
