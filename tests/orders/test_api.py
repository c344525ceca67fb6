"""The JSON API for orders: order list (pages, updated_since) and detail by ownership, staff-only fields, staff
status changes with 409 for illegal ones. The token endpoints are tested in tests/accounts/."""

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts import tokens
from orders import services
from orders.models import ChatMessage, Order
from orders.states import Status
from tests.helpers import PASSWORD, make_order
from tests.twofactor import force_login_verified


def post(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def bearer(user: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue_access_token(user)}"}


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


@pytest.mark.parametrize("body", [{"status": "lost"}, {}, {"status": 3}, {"status": None}, [], "confirmed"])
def test_an_unknown_status_or_a_malformed_body_gets_422_with_the_field_errors(staff: Any, alice_order: Order,
                                                                             body: Any) -> None:
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", body, **bearer(staff))
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"][0] == "body"
    assert Order.objects.get(pk=alice_order.pk).status == "pending"


def test_customer_cannot_change_status(alice: Any, alice_order: Order) -> None:
    response = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "cancelled"}, **bearer(alice))
    assert response.status_code == 403
    assert Order.objects.get(pk=alice_order.pk).status == "pending"


def test_session_auth_needs_csrf_for_a_status_change(staff: Any, alice_order: Order) -> None:
    client = Client(enforce_csrf_checks=True)
    force_login_verified(client, staff)
    assert client.get("/api/orders/").status_code == 200
    refused = post(client, f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"})
    assert refused.status_code == 403
    client.get("/admin/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = post(client, f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **{"X-CSRFToken": token})
    assert accepted.status_code == 200


# The order list's pages: cursors, limits, updated_since (docs/protocol.md).

def list_orders(user: Any, **params: Any) -> Any:
    response = Client().get("/api/orders/", params, headers=bearer(user))
    assert response.status_code == 200, response.content
    return response.json()


def walk(user: Any, between_pages: Any = None, **params: Any) -> list[int]:
    """Follow `next` to the end; `between_pages(n)` runs after page n, as other writers would."""
    ids: list[int] = []
    body = list_orders(user, **params)
    pages = 1
    while True:
        ids += [order["id"] for order in body["orders"]]
        if body["next"] is None:
            return ids
        if between_pages:
            between_pages(pages)
        body = list_orders(user, **params, cursor=body["next"])
        pages += 1


@pytest.fixture
def many_orders(alice: Any, bob: Any) -> list[Order]:
    """205 orders, oldest first: more than the largest page, and more than the staff board shows."""
    return [make_order(alice if i % 2 else bob) for i in range(205)]


def test_walking_the_cursors_returns_every_order_exactly_once_newest_first(staff: Any,
                                                                           many_orders: list[Order]) -> None:
    first = list_orders(staff)
    assert len(first["orders"]) == 50 and first["next"]  # the default page
    ids = walk(staff, limit=60)
    assert ids == [order.pk for order in reversed(many_orders)]
    assert len(walk(staff, limit=200)) == 205


def test_walking_the_cursors_while_orders_change_returns_each_order_once(staff: Any,
                                                                         many_orders: list[Order]) -> None:
    old, newest = many_orders[0], many_orders[-1]
    added: list[Order] = []

    def meanwhile(page: int) -> None:
        # Changes to orders on pages already read and on pages still to come, and a brand-new order.
        services.change_status(order=many_orders[-1 - page], to="confirmed", actor=staff)
        services.change_status(order=many_orders[page], to="confirmed", actor=staff)
        added.append(make_order(old.customer))

    ids = walk(staff, meanwhile, limit=50)
    assert sorted(ids) == sorted(order.pk for order in many_orders)
    assert len(ids) == len(set(ids)) == 205
    assert ids[0] == newest.pk and added and not {order.pk for order in added} & set(ids)
    # The same with updated_since: an order that changes during the walk is still found once.
    since = list_orders(staff)["as_of"]
    changed = [many_orders[i] for i in (0, 3, 100, 204)]
    for order in changed:
        services.change_status(order=order, to=Status.CANCELLED, actor=staff)

    def change_more(page: int) -> None:
        if page == 1:  # an order on a page still to come
            services.change_status(order=many_orders[10], to=Status.CANCELLED, actor=staff)

    ids = walk(staff, change_more, updated_since=since, limit=2)
    assert sorted(ids) == sorted(order.pk for order in [*changed, many_orders[10]])


def test_updated_since_answers_exactly_the_orders_changed_since_including_status_changes(
    alice: Any, staff: Any, many_orders: list[Order]
) -> None:
    since = list_orders(staff, limit=1)["as_of"]
    for order in (many_orders[0], many_orders[7]):
        services.change_status(order=order, to="confirmed", actor=staff)
    note = many_orders[50]
    note.internal_note = "called the customer"
    note.save()  # any change that moves updated_at counts, not only status changes

    changed = list_orders(staff, updated_since=since)
    assert [order["id"] for order in changed["orders"]] == [note.pk, many_orders[7].pk, many_orders[0].pk]
    assert changed["next"] is None
    assert [order["status"] for order in changed["orders"]] == ["pending", "confirmed", "confirmed"]
    # A customer gets only their own changes; `as_of` is where the next catch-up starts.
    mine = list_orders(alice, updated_since=since)["orders"]
    assert [order["id"] for order in mine] == [many_orders[7].pk]
    assert list_orders(staff, updated_since=changed["as_of"])["orders"] == []
    # Any offset works; a `Z` too.
    later = (timezone.now() + timedelta(hours=1)).astimezone(timezone.get_fixed_timezone(120))
    assert list_orders(staff, updated_since=later.isoformat())["orders"] == []
    assert len(list_orders(staff, updated_since="2000-01-01T00:00:00Z", limit=200)["orders"]) == 200


def test_status_filter_and_limit_bound_the_page(staff: Any, many_orders: list[Order]) -> None:
    for order in many_orders[:3]:
        services.change_status(order=order, to="confirmed", actor=staff)
    confirmed = list_orders(staff, status="confirmed", limit=2)
    assert [order["id"] for order in confirmed["orders"]] == [many_orders[2].pk, many_orders[1].pk]
    rest = list_orders(staff, status="confirmed", limit=2, cursor=confirmed["next"])
    assert [order["id"] for order in rest["orders"]] == [many_orders[0].pk] and rest["next"] is None
    assert len(list_orders(staff, limit=200)["orders"]) == 200


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"limit": "-5"}, {"limit": "٣"},
    {"cursor": "nonsense"}, {"cursor": ""}, {"cursor": "djE6LTE"}, {"cursor": "djI6MTA"},
    {"cursor": base64.urlsafe_b64encode(b"v1:" + b"9" * 5000).decode()},  # past int()'s digit limit
    {"updated_since": "yesterday"}, {"updated_since": "2026-11-25T10:00:00"},
    {"updated_since": "2026-11-25T10:00:00 00:00"}, {"updated_since": "2026-13-45T10:00:00Z"},
    {"status": "lost"},
])
def test_bad_list_parameters_get_422_with_a_reason(staff: Any, alice_order: Order, params: dict[str, str]) -> None:
    response = Client().get("/api/orders/", params, headers=bearer(staff))
    assert response.status_code == 422
    assert response.json()["detail"] and response.json()["errors"][0]["loc"] == ["query", *params]


def test_customer_and_unanswered_chats_are_staff_only_fields(alice: Any, staff: Any, alice_order: Order) -> None:
    ChatMessage.objects.create(order=alice_order, sender=alice, text="where is it?")
    staff_view = list_orders(staff)["orders"][0]
    assert (staff_view["customer"], staff_view["awaiting_reply"]) == ("alice", 1)
    detail = Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(staff)).json()
    assert (detail["customer"], detail["awaiting_reply"]) == ("alice", 1)
    changed = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(staff))
    assert changed.json()["order"]["customer"] == "alice"
    assert changed.json()["order"]["updated_at"] == Order.objects.get(pk=alice_order.pk).updated_at.isoformat()
    staff_only = {"customer", "awaiting_reply", "internal_note"}
    for answer in (list_orders(alice)["orders"][0],
                   Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(alice)).json()):
        assert answer["id"] == alice_order.pk and not staff_only & set(answer)


def staff_member(username: str, *permissions: str) -> Any:
    """Staff (admin access) that is not a superuser, with these `orders` model permissions only."""
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders", codename__in=permissions))
    return user


def test_staff_without_order_permissions_are_customers_outside_the_admin(alice_order: Order) -> None:
    support = staff_member("support")
    own = make_order(support)
    listed = Client().get("/api/orders/", headers=bearer(support)).json()["orders"]
    assert [order["id"] for order in listed] == [own.pk]
    detail = Client().get(f"/api/orders/{own.pk}/", headers=bearer(support)).json()
    assert not {"customer", "awaiting_reply", "internal_note"} & set(detail), "no staff-only fields"
    assert Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(support)).status_code == 404
    assert post(Client(), f"/api/orders/{own.pk}/status/", {"status": "confirmed"},
                **bearer(support)).status_code == 403


def test_status_changes_need_the_change_order_permission_as_in_the_admin(alice_order: Order) -> None:
    viewer, clerk = staff_member("viewer", "view_order"), staff_member("clerk", "change_order")
    refused = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(viewer))
    assert refused.status_code == 403 and "orders.change_order" in refused.json()["detail"]
    assert "internal_note" in Client().get(f"/api/orders/{alice_order.pk}/", headers=bearer(viewer)).json()
    changed = post(Client(), f"/api/orders/{alice_order.pk}/status/", {"status": "confirmed"}, **bearer(clerk))
    assert changed.status_code == 200 and changed.json()["event"]["status"] == "confirmed"


def test_updated_since_takes_any_iso_offset_and_the_edges_of_time(staff: Any, alice_order: Order) -> None:
    # ISO 8601 allows offsets PostgreSQL does not (it stops at ±15:59): compared in UTC, never a 500.
    assert list_orders(staff, updated_since="2000-01-01T00:00:00+21:48")["orders"]
    assert not list_orders(staff, updated_since="9999-12-31T23:59:59+00:01")["orders"]
    response = Client().get("/api/orders/", {"updated_since": "0001-01-01T00:00:00+23:00"}, headers=bearer(staff))
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["query", "updated_since"]
