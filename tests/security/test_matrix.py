"""The authorization matrix: every endpoint and socket × customer A (owner), customer B, staff (a superuser),
staff with only the admin's view permission on orders, staff without permissions on orders (a customer
outside the admin, as the admin shows them no orders either), an inactive user (credentials issued while
active), anonymous, and service API keys (orders:read, orders:write, revoked). One cell, one test; the table is
the policy.

HTTP answers 404 for someone else's order exactly as for a missing one; sockets keep DESIGN.md's fixed
4003/4004 contract (docs/security.md says what that reveals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from accounts import apikeys, tokens
from orders import services
from orders.models import Order
from tests.helpers import PASSWORD, make_order, make_user
from tests.realtime.sockets import communicator, refused_with
from tests.twofactor import force_login_verified

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

PERSONAS = ("customer_a", "customer_b", "staff", "staff_view_only", "staff_without_perms", "inactive", "anonymous",
            "key_read", "key_write", "key_revoked")
# Who sees every order and its staff-only fields (orders.view_order or orders.change_order, as in the admin; for
# service API keys, orders:read or orders:write).
SEES_ALL = ("staff", "staff_view_only", "key_read", "key_write")
# Service API keys call the HTTP API only: on sockets they are no token (4001), in the admin no session (302).
MISSING_ORDER_ID = 987654321
OPEN = "open"
CHAT_TEXT = "Is my order on its way?"

# endpoint -> persona -> expected answer (HTTP status, or "open" / a close code / a frame code for sockets)
MATRIX: dict[str, dict[str, Any]] = {
    "GET /api/orders/": {"customer_a": 200, "customer_b": 200, "staff": 200, "staff_view_only": 200,
                         "staff_without_perms": 200, "inactive": 401, "anonymous": 401,
                         "key_read": 200, "key_write": 403, "key_revoked": 401},
    "GET /api/orders/<a>/": {"customer_a": 200, "customer_b": 404, "staff": 200, "staff_view_only": 200,
                             "staff_without_perms": 404, "inactive": 401, "anonymous": 401,
                             "key_read": 200, "key_write": 403, "key_revoked": 401},
    "GET /api/orders/<missing>/": {"customer_a": 404, "customer_b": 404, "staff": 404, "staff_view_only": 404,
                                   "staff_without_perms": 404, "inactive": 401, "anonymous": 401,
                                   "key_read": 404, "key_write": 403, "key_revoked": 401},
    "POST /api/orders/<a>/status/": {"customer_a": 403, "customer_b": 404, "staff": 200, "staff_view_only": 403,
                                     "staff_without_perms": 404, "inactive": 401, "anonymous": 401,
                                     # 409: allowed, and refused by the state machine (staff moved it first)
                                     "key_read": 403, "key_write": 409, "key_revoked": 401},
    "WS /ws/orders/<a>/": {"customer_a": OPEN, "customer_b": 4003, "staff": OPEN, "staff_view_only": OPEN,
                           "staff_without_perms": 4003, "inactive": 4001, "anonymous": 4001,
                           "key_read": 4001, "key_write": 4001, "key_revoked": 4001},
    "WS /ws/orders/<missing>/": {"customer_a": 4004, "customer_b": 4004, "staff": 4004, "staff_view_only": 4004,
                                 "staff_without_perms": 4004, "inactive": 4001, "anonymous": 4001,
                                 "key_read": 4001, "key_write": 4001, "key_revoked": 4001},
    "WS /ws/orders/<a>/chat/": {"customer_a": OPEN, "customer_b": 4003, "staff": OPEN, "staff_view_only": OPEN,
                                "staff_without_perms": 4003, "inactive": 4001, "anonymous": 4001,
                                "key_read": 4001, "key_write": 4001, "key_revoked": 4001},
    "WS subscribe <a> on /ws/notifications/": {"customer_a": "replay", "customer_b": "forbidden", "staff": "replay",
                                               "staff_view_only": "replay", "staff_without_perms": "forbidden",
                                               "inactive": 4001, "anonymous": 4001,
                                               "key_read": 4001, "key_write": 4001, "key_revoked": 4001},
    "GET /admin/": {"customer_a": 302, "customer_b": 302, "staff": 200, "staff_view_only": 200,
                    "staff_without_perms": 200, "inactive": 302, "anonymous": 302,
                    "key_read": 302, "key_write": 302, "key_revoked": 302},
    "GET /admin/orders/order/<a>/change/": {"customer_a": 302, "customer_b": 302, "staff": 200,
                                            "staff_view_only": 200, "staff_without_perms": 403,
                                            "inactive": 302, "anonymous": 302,
                                            "key_read": 302, "key_write": 302, "key_revoked": 302},
}

@dataclass
class Caller:
    user: Any | None
    access: str | None  # a bearer token issued while the user was active
    client: Client  # an HTTP client with the user's session (issued while active)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"} if self.access else {}

    @property
    def subprotocols(self) -> list[str] | None:
        return ["bearer", self.access] if self.access else None


@dataclass
class World:
    order: Order
    callers: dict[str, Caller]


def build_world() -> World:
    alice, bob = make_user("alice"), make_user("bob")
    staff, inactive = make_user("staff", is_staff=True), make_user("inactive")
    users = get_user_model().objects
    viewer = users.create_user("viewer", password=PASSWORD, is_staff=True, email="viewer@example.com")
    viewer.user_permissions.add(Permission.objects.get(codename="view_order", content_type__app_label="orders"))
    no_perms = users.create_user("support", password=PASSWORD, is_staff=True, email="support@example.com")
    order = make_order(alice)
    order.internal_note = "STAFF-ONLY-NOTE: customer was rude on the phone"
    order.save(update_fields=["internal_note"])
    services.change_status(order=order, to="confirmed", actor=staff)
    # So the chat cells carry data the leak check can look at.
    services.post_chat_message(order_id=order.pk, sender=alice, text=CHAT_TEXT)
    callers = {}
    for persona, user in (("customer_a", alice), ("customer_b", bob), ("staff", staff), ("staff_view_only", viewer),
                          ("staff_without_perms", no_perms), ("inactive", inactive)):
        client = Client()
        force_login_verified(client, user)
        callers[persona] = Caller(user, tokens.issue_access_token(user), client)
    callers["anonymous"] = Caller(None, None, Client())
    for persona, scopes in (("key_read", ["orders:read"]), ("key_write", ["orders:write"]),
                            ("key_revoked", ["orders:read", "orders:write"])):
        key, secret = apikeys.issue_api_key(name=persona, scopes=scopes)
        callers[persona] = Caller(None, secret, Client())
        if persona == "key_revoked":
            apikeys.revoke_api_key(key)
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    return World(order, callers)


def http_answer(world: World, endpoint: str, caller: Caller) -> tuple[int, Any]:
    order_id = world.order.pk
    path = endpoint.split(" ", 1)[1].replace("<a>", str(order_id)).replace("<missing>", str(MISSING_ORDER_ID))
    if endpoint.startswith("GET /admin"):
        response = caller.client.get(path)  # the admin is session-only
    elif endpoint.startswith("GET"):
        response = Client().get(path, headers=caller.headers) if caller.access else caller.client.get(path)
    else:
        response = Client().post(path, data=json.dumps({"status": "preparing"}), content_type="application/json",
                                 headers=caller.headers)
    body = response.json() if response["Content-Type"] == "application/json" else None
    return response.status_code, body


async def socket_answer(world: World, endpoint: str, caller: Caller) -> tuple[Any, list[dict[str, Any]]]:
    order_id = world.order.pk
    if endpoint.startswith("WS subscribe"):
        comm = communicator("/ws/notifications/", subprotocols=caller.subprotocols)
    else:
        path = endpoint.split(" ", 1)[1].replace("<a>", str(order_id)).replace("<missing>", str(MISSING_ORDER_ID))
        if not path.endswith("/chat/"):
            path += "?after_seq=0"  # the order socket replays its whole log, so an open cell carries data
        comm = communicator(path, subprotocols=caller.subprotocols)
    connected, _ = await comm.connect()
    assert connected
    if endpoint.startswith("WS subscribe"):
        if not await comm.receive_nothing(timeout=0.2):
            code = (await comm.receive_output(timeout=1))["code"]
            await comm.disconnect()
            return code, []
        await comm.send_json_to({"type": "subscribe", "order_id": order_id, "after_seq": 0})
    await comm.send_json_to({"type": "ping"})
    frames: list[dict[str, Any]] = []
    while True:
        message = await comm.receive_output(timeout=3)
        if message["type"] == "websocket.close":
            await comm.disconnect()
            return message["code"], frames
        frame = json.loads(message["text"])
        if frame["type"] == "pong":
            break
        frames.append(frame)
    await comm.disconnect()
    if endpoint.startswith("WS subscribe"):
        errors = [frame["code"] for frame in frames if frame["type"] == "error"]
        return (errors[0] if errors else "replay"), frames
    return OPEN, frames


async def answer_of(world: World, endpoint: str, persona: str) -> Any:
    """What `persona` gets from `endpoint`, after checking that no refused or customer answer leaks data."""
    caller = world.callers[persona]
    if endpoint.startswith("WS"):
        answer, frames = await socket_answer(world, endpoint, caller)
        assert "STAFF-ONLY-NOTE" not in json.dumps(frames), "frames never carry staff-only fields"
        if answer == "replay" or (answer == OPEN and not endpoint.endswith("/chat/")):
            assert [(f["type"], f["order_id"], f["seq"]) for f in frames if f["type"] != "presence"] == [
                ("order.status", world.order.pk, 1), ("order.status", world.order.pk, 2)]
        elif answer == OPEN:
            assert [f["text"] for f in frames if f["type"] == "chat.message"] == [CHAT_TEXT]
        else:
            assert not [f for f in frames if f["type"] != "error"], f"{persona} was refused but got data frames"
        return answer
    before = await database_sync_to_async(stored_position)(world.order)
    status, body = await database_sync_to_async(http_answer)(world, endpoint, caller)
    text = json.dumps(body)
    after = await database_sync_to_async(stored_position)(world.order)
    if endpoint.startswith("POST") and status == 200:
        assert after == ("preparing", before[1] + 1), (persona, after)
    else:
        assert after == before, f"{persona}'s {endpoint} answered {status} but changed the order"
    if endpoint.startswith(("GET /api/", "POST /api/")):
        assert ("STAFF-ONLY-NOTE" in text) == (persona in SEES_ALL and status == 200), (persona, text)
    if endpoint == "GET /api/orders/" and status == 200:
        ids = [order["id"] for order in body["orders"]]
        assert (world.order.pk in ids) == (persona in ("customer_a", *SEES_ALL))
        assert (world.order.number in text) == (persona in ("customer_a", *SEES_ALL))
    return status


def stored_position(order: Order) -> tuple[str, int]:
    return Order.objects.values_list("status", "seq").get(pk=order.pk)


@pytest.mark.parametrize("endpoint", list(MATRIX))
async def test_each_persona_gets_exactly_the_answer_in_the_matrix(endpoint: str) -> None:
    world = await database_sync_to_async(build_world)()
    answers = {persona: await answer_of(world, endpoint, persona) for persona in PERSONAS}
    assert answers == MATRIX[endpoint]


async def test_someone_elses_order_and_a_missing_order_get_the_same_http_answer() -> None:
    world = await database_sync_to_async(build_world)()
    bob = world.callers["customer_b"]
    others = await database_sync_to_async(http_answer)(world, "GET /api/orders/<a>/", bob)
    missing = await database_sync_to_async(http_answer)(world, "GET /api/orders/<missing>/", bob)
    assert others == missing == (404, {"detail": "No such order."})
    others = await database_sync_to_async(http_answer)(world, "POST /api/orders/<a>/status/", bob)
    missing_path = "POST /api/orders/<missing>/status/"
    missing = await database_sync_to_async(http_answer)(world, missing_path, bob)
    assert others == missing


async def test_the_inactive_users_old_session_is_anonymous_everywhere() -> None:
    world = await database_sync_to_async(build_world)()
    client = world.callers["inactive"].client
    response = await database_sync_to_async(client.get)(f"/api/orders/{world.order.pk}/")
    assert response.status_code == 401
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    assert (await refused_with(communicator("/ws/notifications/", headers=[cookie])))["code"] == 4001
