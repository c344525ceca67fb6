"""The JSON API: tokens, order list and detail by ownership, staff status changes with 409 for illegal ones."""

import json
from typing import Any

import pytest
from django.test import Client

from orders import tokens
from orders.models import Order
from tests.conftest import PASSWORD


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_access_token(user)}"}


def test_token_endpoint_issues_access_and_refresh_for_valid_credentials(alice: Any) -> None:
    response = post(Client(), "/api/auth/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "expires_in"}
    assert tokens.decode_token(body["access"], expected_type="access")["sub"] == str(alice.pk)


@pytest.mark.parametrize("body", [{"username": "alice", "password": "wrong"}, {"username": "nobody", "password": "x"}])
def test_token_endpoint_answers_401_for_bad_credentials(alice: Any, body: dict[str, str]) -> None:
    assert post(Client(), "/api/auth/token/", body).status_code == 401


@pytest.mark.parametrize("raw", ["not json", "[]", '{"username": 1, "password": 2}'])
def test_token_endpoint_answers_400_for_malformed_bodies(alice: Any, raw: str) -> None:
    response = Client().post("/api/auth/token/", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]


def test_refresh_gives_a_new_access_token_and_refuses_an_access_token(alice: Any) -> None:
    pair = post(Client(), "/api/auth/token/", {"username": "alice", "password": PASSWORD}).json()
    refreshed = post(Client(), "/api/auth/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    assert post(Client(), "/api/auth/refresh/", {"refresh": pair["access"]}).status_code == 401


def test_customer_lists_only_own_orders_and_staff_lists_all(alice: Any, staff: Any, alice_order: Order,
                                                            bob_order: Order) -> None:
    mine = Client().get("/api/orders/", headers=bearer(alice)).json()["orders"]
    assert [(o["id"], o["status"], o["seq"]) for o in mine] == [(alice_order.pk, "pending", 1)]
    everyone = Client().get("/api/orders/", headers=bearer(staff)).json()["orders"]
    assert {o["id"] for o in everyone} == {alice_order.pk, bob_order.pk}


def test_anonymous_and_bad_token_get_401(alice_order: Order) -> None:
    assert Client().get("/api/orders/").status_code == 401
    assert Client().get("/api/orders/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_order_detail_includes_events_and_hides_other_customers_orders_as_404(
    alice: Any, bob: Any, alice_order: Order
) -> None:
    detail = Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(alice))
    assert detail.status_code == 200
    assert [(e["seq"], e["status"]) for e in detail.json()["events"]] == [(1, "pending")]
    assert Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(bob)).status_code == 404
    assert Client().get("/api/orders/999999/", headers=bearer(bob)).status_code == 404


def test_staff_changes_status_and_gets_the_new_event(staff: Any, alice_order: Order) -> None:
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(staff))
    assert response.status_code == 200
    assert response.json()["event"]["seq"] == 2 and response.json()["order"]["status"] == "confirmed"


def test_illegal_change_answers_409_with_the_reason(staff: Any, alice_order: Order) -> None:
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "delivered"}, **bearer(staff))
    assert response.status_code == 409
    assert "cannot become delivered" in response.json()["detail"]
    assert Order.objects.get(pk=alice_order.pk).status == "pending"


def test_customer_cannot_change_status(alice: Any, alice_order: Order) -> None:
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "cancelled"}, **bearer(alice))
    assert response.status_code == 403
    assert Order.objects.get(pk=alice_order.pk).status == "pending"


def test_session_auth_needs_csrf_for_a_status_change(staff: Any, alice_order: Order) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.get("/api/orders/").status_code == 200
    refused = post(client, f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"})
    assert refused.status_code == 403
    client.get("/admin/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = post(client, f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **{"X-CSRFToken": token})
    assert accepted.status_code == 200
