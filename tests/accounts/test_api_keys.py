"""Service API keys: created by command or admin (the secret shown once, only its hash kept), scoped, revoked;
`Authorization: Bearer <key>` on the API: 401 for a wrong or revoked key, 403 for a missing scope."""

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import apikeys
from accounts.models import ApiKey
from orders.models import Order, OrderEvent
from tests.twofactor import force_login_verified


def create_key(name: str, scopes: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", name, "--scopes", scopes, stdout=out, stderr=err)
    return out.getvalue().splitlines()[-1]


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def test_create_api_key_prints_the_key_alone_on_its_last_line_and_stores_only_its_hash(db: None) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "Shop ERP", "--scopes", "orders:read,orders:write", stdout=out, stderr=err)
    secret = out.getvalue().splitlines()[-1]
    assert secret.startswith("otk_") and len(secret) > 40 and secret.strip() == secret
    key = ApiKey.objects.get()
    assert (key.name, key.scopes) == ("Shop ERP", ["orders:read", "orders:write"])
    assert key.hashed_key == apikeys.hash_secret(secret)
    stored = json.dumps(list(ApiKey.objects.values().get().values()), default=str)
    assert secret not in stored and secret[12:] not in stored


def test_create_api_key_refuses_unknown_or_missing_scopes(db: None) -> None:
    for scopes in ("orders:everything", "", " , "):
        with pytest.raises(CommandError, match="scope"):
            call_command("create_api_key", "x", "--scopes", scopes, stdout=io.StringIO(), stderr=io.StringIO())
    assert not ApiKey.objects.exists()


def test_a_read_key_sees_every_order_like_staff_and_its_use_is_recorded(alice_order: Order, bob_order: Order) -> None:
    secret = create_key("reporting", "orders:read")
    listed = Client().get("/api/orders/", headers=bearer(secret))
    assert listed.status_code == 200
    assert {order["id"] for order in listed.json()["orders"]} == {alice_order.pk, bob_order.pk}
    detail = Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(secret))
    assert detail.status_code == 200 and detail.json()["customer"] == "alice"
    assert ApiKey.objects.get().last_used_at is not None


def test_a_wrong_or_revoked_key_gets_401(alice_order: Order) -> None:
    secret = create_key("erp", "orders:read")
    assert Client().get("/api/orders/", headers=bearer(secret + "x")).status_code == 401
    assert Client().get("/api/orders/", headers=bearer("otk_" + "A" * 43)).status_code == 401
    assert apikeys.revoke_api_key(ApiKey.objects.get())
    refused = Client().get("/api/orders/", headers=bearer(secret))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_missing_scope_gets_403_and_changes_nothing(alice_order: Order) -> None:
    reader, hooks_only = create_key("reader", "orders:read"), create_key("hooks", "webhooks:manage")
    for secret in (hooks_only,):
        assert Client().get("/api/orders/", headers=bearer(secret)).status_code == 403
        assert Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(secret)).status_code == 403
    refused = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(reader))
    assert refused.status_code == 403 and "orders:write" in refused.json()["detail"]
    intake = post(Client(), "/api/orders/", {"customer": {"email": "c@example.com"},
                                            "items": [{"name": "Tea", "quantity": 1, "unit_price": "3.00"}]},
                  **bearer(reader))
    assert intake.status_code == 403
    assert Order.objects.get(pk=alice_order.pk).status == "pending" and Order.objects.count() == 1


def test_a_write_key_changes_status_and_the_event_names_the_key(alice_order: Order) -> None:
    secret = create_key("warehouse", "orders:write")
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(secret))
    assert response.status_code == 200 and response.json()["event"]["seq"] == 2
    event = OrderEvent.objects.get(order=alice_order, seq=2)
    assert (event.api_key, event.actor) == (ApiKey.objects.get(), None)
    illegal = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "delivered"}, **bearer(secret))
    assert illegal.status_code == 409 and "cannot become delivered" in illegal.json()["detail"]


def test_admin_creates_a_key_showing_it_once_lists_and_revokes_it(staff: Any) -> None:
    client = Client()
    force_login_verified(client, staff)
    created = client.post("/admin/accounts/apikey/add/", {"name": "Shopify bridge", "scopes": ["orders:write"]})
    assert created.status_code == 200, created.content[:500]
    secret = created.context["secret"]
    assert secret.startswith("otk_") and secret in created.content.decode()
    assert "no-store" in created["Cache-Control"]
    key = ApiKey.objects.get()
    assert key.hashed_key == apikeys.hash_secret(secret) and key.scopes == ["orders:write"]
    listing = client.get("/admin/accounts/apikey/").content.decode()
    assert "Shopify bridge" in listing and key.prefix in listing and secret not in listing
    assert secret not in client.get(f"/admin/accounts/apikey/{key.pk}/change/").content.decode()
    client.post("/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert ApiKey.objects.get().revoked_at is not None
    assert Client().get("/api/orders/", headers=bearer(secret)).status_code == 401
