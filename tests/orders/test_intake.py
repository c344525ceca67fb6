"""Order intake, POST /api/orders/: the order with its items and first event, the customer found or created by
e-mail, 409 for a taken external_ref, 422 for a bad body, and Idempotency-Key (replay, misuse, concurrent
retries on real PostgreSQL, pruning); the new order is pushed to staff like a status change."""

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts import apikeys, tokens
from accounts.models import ApiKey
from orders.models import IdempotencyKey, Order, OrderEvent
from tests.helpers import make_user
from tests.realtime.sockets import communicator


@pytest.fixture
def writer(db: None) -> str:
    return apikeys.issue_api_key(name="shop", scopes=["orders:write"])[1]


def intake(secret: str, body: Any, **headers: str) -> Any:
    return Client().post("/api/orders/", data=json.dumps(body), content_type="application/json",
                         headers={"Authorization": f"Bearer {secret}", **headers})


def order_body(ref: str = "SHOP-1001", email: str = "dana@example.com") -> dict[str, Any]:
    return {"external_ref": ref, "customer": {"email": email, "name": "Dana Scully"},
            "items": [{"name": "Coffee beans", "quantity": 2, "unit_price": "9.50"},
                      {"name": "Filter", "quantity": 1, "unit_price": 3}],
            "shipping_address": "1 Main Street, Springfield", "currency": "USD"}


def test_intake_creates_the_order_its_items_a_passwordless_customer_and_the_first_event(writer: str) -> None:
    response = intake(writer, order_body())
    assert response.status_code == 201, response.content
    body = response.json()
    order = Order.objects.get(pk=body["id"])
    assert (body["number"], body["status"], body["seq"], body["external_ref"]) == (order.number, "pending", 1,
                                                                                   "SHOP-1001")
    assert body["currency"] == "USD" and "tracking_url" in body
    assert [(i["name"], i["quantity"], i["unit_price"], i["line_total"]) for i in body["items"]] == [
        ("Coffee beans", 2, "9.50", "19.00"), ("Filter", 1, "3.00", "3.00")]
    assert [(e["seq"], e["status"], e["previous"]) for e in body["events"]] == [(1, "pending", None)]
    customer = order.customer
    assert (customer.email, customer.first_name, customer.last_name) == ("dana@example.com", "Dana", "Scully")
    assert not customer.has_usable_password()
    event = OrderEvent.objects.get(order=order)
    assert (event.seq, event.api_key, event.actor) == (1, ApiKey.objects.get(), None)
    assert order.shipping_address == "1 Main Street, Springfield"


def test_intake_finds_an_existing_customer_by_email_whatever_its_case(writer: str) -> None:
    alice = make_user("alice")  # alice@example.com
    response = intake(writer, order_body(email="Alice@Example.com"))
    assert response.status_code == 201
    assert Order.objects.get(pk=response.json()["id"]).customer == alice
    assert get_user_model().objects.count() == 1
    # The customer sees it among their own orders.
    alice_client = Client()
    alice_client.force_login(alice)
    assert [o["id"] for o in alice_client.get("/api/orders/").json()["orders"]] == [response.json()["id"]]


def test_a_second_order_with_a_taken_external_ref_gets_409_naming_the_existing_order(writer: str) -> None:
    first = intake(writer, order_body()).json()
    again = intake(writer, order_body(email="someone.else@example.com"))
    assert again.status_code == 409
    assert again.json()["order_id"] == first["id"] and str(first["id"]) in again.json()["detail"]
    assert Order.objects.count() == 1 and get_user_model().objects.count() == 1
    assert intake(writer, order_body(ref="SHOP-1002")).status_code == 201
    # Orders without a reference never collide.
    assert intake(writer, order_body(ref="")).status_code == 201
    assert intake(writer, order_body(ref="")).status_code == 201


def test_list_filters_by_external_ref(writer: str) -> None:
    reader = apikeys.issue_api_key(name="reader", scopes=["orders:read"])[1]
    wanted = intake(writer, order_body(ref="A-1")).json()
    intake(writer, order_body(ref="A-2"))
    listed = Client().get("/api/orders/", {"external_ref": "A-1"}, headers={"Authorization": f"Bearer {reader}"})
    assert [order["id"] for order in listed.json()["orders"]] == [wanted["id"]]


@pytest.mark.parametrize("change", [
    lambda b: b.pop("items"),
    lambda b: b.update(items=[]),
    lambda b: b["items"][0].update(quantity=0),
    lambda b: b["items"][0].update(unit_price="-1"),
    lambda b: b["items"][0].update(unit_price="1.999"),
    lambda b: b["items"][0].update(unit_price="NaN"),
    lambda b: b["customer"].update(email="not-an-email"),
    lambda b: b.pop("customer"),
    lambda b: b.update(currency="euro"),
    lambda b: b.update(external_ref="x" * 101),
    lambda b: b.update(items="three"),
    lambda b: b["items"][0].update(name="nul\x00byte"),
    lambda b: b.update(shipping_address="\ud800"),
])
def test_an_invalid_order_gets_422_with_the_field_errors_and_creates_nothing(writer: str, change: Any) -> None:
    body = order_body()
    change(body)
    response = intake(writer, body)
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    assert errors and all(error["loc"][0] == "body" and error["msg"] for error in errors)
    assert response.json()["detail"].startswith("Invalid request")
    assert not Order.objects.exists() and get_user_model().objects.count() == 0


def test_customers_cannot_create_orders_and_anonymous_callers_get_401(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post("/api/orders/", data=json.dumps(order_body()), content_type="application/json")
    assert response.status_code == 403
    anonymous = Client().post("/api/orders/", data=json.dumps(order_body()), content_type="application/json")
    assert anonymous.status_code == 401
    assert not Order.objects.exists()


def test_a_retry_with_the_same_idempotency_key_gets_the_same_answer_and_creates_nothing(writer: str) -> None:
    first = intake(writer, order_body(), **{"Idempotency-Key": "k-1"})
    # The same JSON with other spacing and key order is the same request.
    body = dict(reversed(list(order_body().items())))
    retry = Client().post("/api/orders/", data=json.dumps(body, indent=2), content_type="application/json",
                          headers={"Authorization": f"Bearer {writer}", "Idempotency-Key": "k-1"})
    assert (retry.status_code, retry.content) == (first.status_code, first.content) == (201, first.content)
    assert Order.objects.count() == 1 and OrderEvent.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_gets_422(writer: str) -> None:
    assert intake(writer, order_body(), **{"Idempotency-Key": "k-2"}).status_code == 201
    other = intake(writer, order_body(ref="SHOP-OTHER"), **{"Idempotency-Key": "k-2"})
    assert other.status_code == 422
    assert other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert Order.objects.count() == 1


def test_idempotency_keys_belong_to_their_caller(writer: str) -> None:
    other_shop = apikeys.issue_api_key(name="other", scopes=["orders:write"])[1]
    assert intake(writer, order_body(ref="R-1"), **{"Idempotency-Key": "same"}).status_code == 201
    assert intake(other_shop, order_body(ref="R-2"), **{"Idempotency-Key": "same"}).status_code == 201
    assert Order.objects.count() == 2


def test_a_refusal_is_replayed_too(writer: str) -> None:
    intake(writer, order_body())
    first = intake(writer, order_body(), **{"Idempotency-Key": "dup"})
    Order.objects.all().delete()  # even once the conflict is gone, the key's answer stands
    retry = intake(writer, order_body(), **{"Idempotency-Key": "dup"})
    assert (first.status_code, retry.status_code, retry.content) == (409, 409, first.content)


def test_keys_are_kept_a_day_and_pruned_after(writer: str) -> None:
    intake(writer, order_body(ref="OLD"), **{"Idempotency-Key": "old"})
    intake(writer, order_body(ref="RECENT"), **{"Idempotency-Key": "recent"})
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=24, minutes=1))
    IdempotencyKey.objects.filter(key="recent").update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
    intake(writer, order_body(ref="NEW"), **{"Idempotency-Key": "new"})
    assert set(IdempotencyKey.objects.values_list("key", flat=True)) == {"recent", "new"}
    replay = intake(writer, order_body(ref="RECENT"), **{"Idempotency-Key": "recent"})
    assert replay.status_code == 201 and Order.objects.filter(external_ref="RECENT").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_one_order() -> None:
    secret = apikeys.issue_api_key(name="shop", scopes=["orders:write"])[1]
    barrier = threading.Barrier(6)
    answers: list[tuple[int, bytes]] = []

    def retry() -> None:
        try:
            barrier.wait(timeout=10)
            response = intake(secret, order_body(), **{"Idempotency-Key": "storm"})
            answers.append((response.status_code, response.content))
        finally:
            connection.close()  # each thread's own PostgreSQL connection

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 6
    assert {answer for answer in answers} == {answers[0]} and answers[0][0] == 201
    assert Order.objects.count() == 1 and get_user_model().objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
async def test_a_new_order_is_pushed_to_the_staff_stream_once_its_transaction_commits() -> None:
    staff = await database_sync_to_async(make_user)("staff", is_staff=True)
    secret = (await database_sync_to_async(apikeys.issue_api_key)(name="shop", scopes=["orders:write"]))[1]
    stream = communicator("/ws/notifications/",
                          subprotocols=["bearer", await database_sync_to_async(tokens.issue_access_token)(staff)])
    assert (await stream.connect())[0]
    await stream.send_json_to({"type": "ping"})
    assert (await stream.receive_json_from(timeout=3))["type"] == "pong"
    response = await database_sync_to_async(intake)(secret, order_body())
    assert response.status_code == 201
    frame = await stream.receive_json_from(timeout=5)
    assert (frame["type"], frame["order_id"], frame["seq"], frame["status"], frame["previous"]) == (
        "order.status", response.json()["id"], 1, "pending", None)
    await stream.disconnect()


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_with_one_external_ref_make_one_order_and_409s_naming_it() -> None:
    secret = apikeys.issue_api_key(name="shop", scopes=["orders:write"])[1]
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def send(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            # Other keys (or none) and other customers: only the shop's reference is the same.
            headers = {"Idempotency-Key": f"key-{n}"} if n % 2 else {}
            answers.append(intake(secret, order_body(ref="RACE-1", email=f"c{n}@example.com"), **headers))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409]
    order = Order.objects.get()
    assert all(answer.json()["order_id"] == order.pk for answer in answers if answer.status_code == 409)
    assert get_user_model().objects.count() == 1  # the refused orders' new customers were rolled back
