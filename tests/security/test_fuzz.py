"""Fuzzing: arbitrary bytes, non-JSON, deep nesting, wrong types and huge numbers at every consumer and JSON
endpoint. Every frame gets an error frame, a protocol frame or a limit close (4008/4009), never a crash;
every request gets a 4xx/2xx JSON answer, never a 500; nothing is logged at ERROR; the next client is served.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts import tokens
from orders.models import Order
from tests.helpers import make_order, make_user
from tests.realtime.sockets import communicator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

BOUNDED = hypothesis_settings(
    max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

huge_numbers = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([2**31, 2**63, -1, 10**4000, 1e308]),
)
json_values = st.recursive(
    st.none() | st.booleans() | huge_numbers | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
typed_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "subscribe", "message", "order.status", "chat.message", "", "x" * 300])},
    optional={"order_id": json_values, "after_seq": json_values, "text": json_values, "sender": json_values},
)


def dumps(value: Any) -> str:
    # Python's json writes huge ints digit by digit and NaN/Infinity literals, both of which a client can send.
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


frames = st.one_of(
    st.binary(max_size=512).map(lambda data: ("bytes", data)),
    st.text(max_size=512).map(lambda text: ("text", text)),
    json_values.map(lambda value: ("text", dumps(value))),
    typed_frames.map(lambda value: ("text", dumps(value))),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: ("text", "[" * depth + "]" * depth)),
    st.integers(min_value=1, max_value=20_000).map(lambda depth: ("text", '{"a":' * depth + "1" + "}" * depth)),
    st.sampled_from(["9" * 5000, '{"type": "subscribe", "order_id": ' + "9" * 5000 + "}", "\x00", "\ud800"])
    .map(lambda text: ("text", text)),
)

PROTOCOL_TYPES = {"error", "pong", "order.status", "chat.message", "presence"}


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    assert not handler.records, [handler.format(record) for record in handler.records]


@pytest.fixture
def world(transactional_db: None, settings: Any) -> dict[str, Any]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The fuzzer sends faster than people; the limits themselves are tested elsewhere.
    settings.WS_RATE_LIMIT_BURST = 1000
    settings.WS_RATE_LIMIT_PER_SECOND = 1000
    settings.LOGIN_FAILURES_PER_USERNAME = settings.LOGIN_FAILURES_PER_IP = 10**6
    alice, staff = make_user("alice"), make_user("staff", is_staff=True)
    return {"alice": alice, "staff": staff, "order": make_order(alice)}


def frame_type(kind: str, data: Any) -> str | None:
    """The frame's "type" when it is a JSON object with a string type (what the server parses), else None."""
    if kind == "bytes":
        return None
    try:
        content = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return content["type"] if isinstance(content, dict) and isinstance(content.get("type"), str) else None


async def exchange(comm: Any, kind: str, data: Any) -> int | None:
    """Send one fuzz frame then a ping; the server's answers until the pong, or its close code."""
    # send_input, not send_to: an empty frame is a frame too.
    await comm.send_input({"type": "websocket.receive", kind: data})
    await comm.send_json_to({"type": "ping"})
    parsed_type = frame_type(kind, data)
    pongs_due = 2 if parsed_type == "ping" else 1
    answers: list[dict[str, Any]] = []
    while True:
        message = await comm.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            assert message["code"] in (4008, 4009), message
            return message["code"]
        frame = json.loads(message["text"])
        assert isinstance(frame, dict) and frame.get("type") in PROTOCOL_TYPES, frame
        answers.append(frame)
        if frame["type"] == "error":
            assert frame["code"] and frame["detail"]
        replies = [answer for answer in answers if answer["type"] in ("error", "pong")]
        if parsed_type is None:
            # A frame that is not a JSON object with a string type is always answered with an error frame
            # (presence and status frames may arrive in between: they are pushed, not replies).
            assert not replies or replies[0]["type"] == "error", answers
        if frame == {"type": "pong"}:
            pongs_due -= 1
            if not pongs_due:
                return None


async def fuzz_socket(path: str, user: Any, sequence: list[tuple[str, Any]]) -> None:
    token = await database_sync_to_async(tokens.issue_access_token)(user)
    comm = communicator(path, subprotocols=["bearer", token])
    assert (await comm.connect())[0]
    closed = None
    for kind, data in sequence:
        closed = await exchange(comm, kind, data)
        if closed:
            break
    # Also after a server close: a real server then tells the consumer the socket is gone.
    await comm.disconnect()
    # The next good client is served.
    good = communicator(path, subprotocols=["bearer", token])
    assert (await good.connect())[0]
    await good.send_json_to({"type": "ping"})
    while True:
        message = await good.receive_output(timeout=5)
        assert message["type"] == "websocket.send", message
        frame = json.loads(message["text"])
        assert frame["type"] in PROTOCOL_TYPES, frame
        if frame == {"type": "pong"}:
            break
    await good.disconnect()


def socket_paths(order: Order) -> list[str]:
    return ["/ws/notifications/", f"/ws/orders/{order.pk}/", f"/ws/orders/{order.pk}/chat/"]


@pytest.mark.parametrize("socket", ["notifications", "order", "chat"])
def test_no_frame_crashes_a_consumer_and_the_next_client_is_served(
    world: dict[str, Any], error_log: ErrorLog, socket: str
) -> None:
    path = dict(zip(["notifications", "order", "chat"], socket_paths(world["order"]), strict=True))[socket]

    @BOUNDED
    @given(sequence=st.lists(frames, min_size=1, max_size=4), as_staff=st.booleans())
    def run(sequence: list[tuple[str, Any]], as_staff: bool) -> None:
        async_to_sync(fuzz_socket)(path, world["staff" if as_staff else "alice"], sequence)

    run()


JSON_ANSWERS = {200, 204, 400, 401, 403, 404, 405, 409, 422, 429}


def bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=512),
        json_values.map(lambda value: dumps(value).encode()),
        st.fixed_dictionaries({}, optional={
            "username": json_values, "password": json_values, "refresh": json_values, "status": json_values,
        }).map(lambda value: dumps(value).encode()),
        st.integers(min_value=1, max_value=50_000).map(lambda depth: b"[" * depth + b"]" * depth),
    )


@pytest.mark.parametrize("endpoint", ["/api/auth/token/", "/api/auth/refresh/", "/api/auth/logout/",
                                      "/api/orders/<id>/status/", "/api/orders/"])
def test_no_request_body_makes_a_json_endpoint_fail_with_500(world: dict[str, Any], error_log: ErrorLog,
                                                   endpoint: str) -> None:
    path = endpoint.replace("<id>", str(world["order"].pk))
    staff_token = tokens.issue_access_token(world["staff"])
    client = Client()  # raises on any unhandled exception, so a 500 fails the example

    @BOUNDED
    @given(body=bodies(), authorized=st.booleans(), content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded"]))
    def run(body: bytes, authorized: bool, content_type: str) -> None:
        headers = {"Authorization": f"Bearer {staff_token}"} if authorized else {}
        response = client.post(path, data=body, content_type=content_type, headers=headers)
        assert response.status_code in JSON_ANSWERS, (response.status_code, response.content[:200])
        if response.status_code != 204:
            assert isinstance(json.loads(response.content), dict)

    run()
    # The next good client is served.
    good = client.post("/api/auth/token/", data=json.dumps({"username": "alice", "password": "correct-horse-battery"}),
                       content_type="application/json")
    assert good.status_code == 200
