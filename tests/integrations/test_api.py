"""POST/GET/DELETE /api/webhooks/: staff with the webhook permissions, by bearer token; 422 with field errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts import tokens
from integrations.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def bearer(user: Any) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.issue_access_token(user)}"}


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
    ({"url": 5, "events": ["order.status"]}, "url"),
    ({"events": "order.status"}, "url"),
    (["not", "an", "object"], "body"),
])
def test_invalid_endpoints_get_422_with_the_field(staff: Any, body: Any, field: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    response = post(Client(), body, **bearer(staff))
    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert not WebhookEndpoint.objects.exists()


def test_customers_may_not_manage_webhooks(alice: Any) -> None:
    client = Client()
    assert post(client, {"url": "https://hooks.example.com/in", "events": ["order.status"]},
                **bearer(alice)).status_code == 403
    assert client.get("/api/webhooks/", **bearer(alice)).status_code == 403


def test_anonymous_callers_get_401() -> None:
    assert Client().get("/api/webhooks/").status_code == 401
    assert Client().get("/api/webhooks/", HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401
