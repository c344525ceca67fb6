"""Every frame the consumers send matches its schema in realtime/asyncapi.yaml, and every frame they accept is a
client message of the document: the real consumers over the real Redis layer, pushes through the eager Celery task.
Schemas are checked strictly here: a field the document does not name fails, so it cannot fall behind the code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
import yaml
from channels.db import database_sync_to_async
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT7

from orders import services
from orders.models import Order
from realtime import push
from realtime.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, FORBIDDEN, NOT_FOUND
from realtime.views import DOCUMENT_PATH
from tests.realtime.sockets import Socket, bearer_subprotocols, communicator, refused_with

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

DOCUMENT_URI = "urn:asyncapi"
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def is_time_with_offset(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; this is the rule the docs state.
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


def load_document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT_PATH.read_text())


def closed(schema: Any) -> Any:
    """The schema with every object's properties closed: additionalProperties false where it says nothing."""
    if isinstance(schema, dict):
        schema = {key: closed(value) for key, value in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


@cache
def registry() -> Registry:
    document = load_document()
    strict = dict(document, components=closed(copy.deepcopy(document["components"])))
    return Registry().with_resource(DOCUMENT_URI, DRAFT7.create_resource(strict))


def address(channel: str, order: Order | None = None, query: str = "") -> str:
    """The channel's address from the document, for `order`: the sockets are opened where it says they are."""
    path = str(load_document()["channels"][channel]["address"])
    return path.replace("{order_id}", str(order.pk)) + query if order is not None else path + query


def frame_types(channel: str, action: str) -> dict[str, str]:
    """Frame `type` → its message's key in components/messages, for what the server sends (`send`) or accepts
    (`receive`) on `channel`."""
    document = load_document()
    types: dict[str, str] = {}
    for operation in document["operations"].values():
        if operation["action"] != action or operation["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        for ref in operation["messages"]:
            key = ref["$ref"].rsplit("/", 1)[1]
            message_ref = document["channels"][channel]["messages"][key]["$ref"]
            message_key = message_ref.rsplit("/", 1)[1]
            types[document["components"]["messages"][message_key]["name"]] = message_key
    return types


def errors(channel: str, action: str, frame: Any) -> list[str]:
    """Why `frame` is not a frame the document allows on `channel` in that direction (empty if it is)."""
    if not isinstance(frame, dict) or frame.get("type") not in frame_types(channel, action):
        return [f"no {action} message of type {frame.get('type') if isinstance(frame, dict) else frame!r}"
                f" on channel {channel}"]
    message = frame_types(channel, action)[frame["type"]]
    validator = Draft7Validator({"$ref": f"{DOCUMENT_URI}#/components/messages/{message}/payload"},
                                registry=registry(), format_checker=FORMATS)
    failures: list[ValidationError] = list(validator.iter_errors(frame))
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in failures]


class CheckedComm:
    """A WebsocketCommunicator that checks every frame it receives against the server messages of its channel,
    and every JSON frame it sends against the client messages; it records the types of both."""

    def __init__(self, comm: Any, channel: str) -> None:
        self.comm = comm
        self.channel = channel
        self.received: set[str] = set()
        self.sent: set[str] = set()

    async def connect(self, timeout: float = 1) -> Any:
        return await self.comm.connect(timeout)

    async def send_json_to(self, frame: dict[str, Any]) -> None:
        assert errors(self.channel, "receive", frame) == [], frame
        self.sent.add(frame["type"])
        await self.comm.send_json_to(frame)

    async def send_invalid(self, frame: dict[str, Any]) -> None:
        """Send a frame the document refuses too (the server's error frames answer these)."""
        assert errors(self.channel, "receive", frame) != [], frame
        await self.comm.send_json_to(frame)

    async def send_raw(self, *, text: str | None = None, data: bytes | None = None) -> None:
        """Send what is no JSON object at all (bad JSON, a binary frame)."""
        await self.comm.send_to(text_data=text, bytes_data=data)

    async def receive_json_from(self, timeout: float = 1) -> dict[str, Any]:
        frame: dict[str, Any] = await self.comm.receive_json_from(timeout)
        assert errors(self.channel, "send", frame) == [], frame
        self.received.add(frame["type"])
        return frame

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        return bool(await self.comm.receive_nothing(timeout, interval))

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        await self.comm.disconnect(code, timeout)


async def open_checked(user: Any, channel: str, order: Order | None = None, query: str = "") -> Socket:
    """A Socket on the channel's address as `user` (bearer) whose every frame, both ways, is checked against it."""
    subprotocols = await bearer_subprotocols(user)
    comm = CheckedComm(communicator(address(channel, order, query), subprotocols=subprotocols), channel)
    socket = Socket(comm)
    assert (await comm.connect())[0]
    await socket.ping()
    return socket


async def drain(*sockets: Socket) -> None:
    """Read (and so check) every frame still on its way."""
    for socket in sockets:
        assert await socket.nothing_of("no such frame")


def received(*sockets: Socket) -> set[str]:
    return set().union(*(socket.comm.received for socket in sockets))


def sent(*sockets: Socket) -> set[str]:
    return set().union(*(socket.comm.sent for socket in sockets))


async def refresh_in_band(socket: Socket, user: Any) -> None:
    """The in-band token refresh: auth with a fresh access token of the same user, answered auth.ok."""
    from accounts import tokens

    token = await database_sync_to_async(tokens.issue_access_token)(user)
    await socket.send({"type": "auth", "token": token})
    assert (await socket.next("auth.ok"))["exp"] > 0


async def change(order: Order, to: str, actor: Any) -> None:
    await database_sync_to_async(services.change_status)(order=order, to=to, actor=actor)


async def ship(order: Order, actor: Any, **changes: Any) -> None:
    await database_sync_to_async(services.update_order)(order=order, changes=changes, actor=actor)


async def refused_as_documented(path: str, user: Any) -> tuple[int, str]:
    message = await refused_with(communicator(path, subprotocols=await bearer_subprotocols(user)))
    documented = {(entry["code"], entry["reason"]) for entry in load_document()["x-close-codes"]}
    assert (message["code"], message["reason"]) in documented, message
    return message["code"], message["reason"]


def test_the_strict_check_refuses_an_undocumented_field_and_a_wrong_type() -> None:
    frame = {"type": "order.reset", "order_id": 7, "seq": 2}
    assert errors("order", "send", frame) == []
    assert errors("order", "send", {**frame, "extra": 1}) != []
    assert errors("order", "send", {**frame, "seq": "2"}) != []
    assert errors("order", "send", {"type": "chat.message"}) != []  # not a frame of that endpoint
    assert errors("chat", "send", {"type": "chat.message", "order_id": 7, "id": 1, "sender": "alice", "text": "hi",
                                   "at": "2026-11-25T10:00:00"}) != []  # a time without its offset


async def test_notification_stream_frames_both_ways_match_the_document(
    alice: Any, bob: Any, staff: Any, alice_order: Order, bob_order: Order
) -> None:
    customer = await open_checked(alice, "notifications")
    board = await open_checked(staff, "notifications")

    await change(alice_order, "confirmed", staff)
    assert (await customer.next("order.status"))["seq"] == 2
    assert (await board.next("order.status"))["seq"] == 2
    await ship(alice_order, staff, carrier="DHL", tracking_number="JJD0001", eta=datetime(2026, 12, 3, tzinfo=UTC))
    assert (await customer.next("order.updated"))["seq"] == 3
    assert (await board.next("order.updated"))["carrier_tracking_url"].endswith("JJD0001")
    await customer.send({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 0})
    assert (await customer.next("order.status"))["seq"] == 1  # the replay; seq 2 and 3 were sent already
    await customer.send({"type": "subscribe", "order_id": alice_order.pk, "after_seq": 9})
    assert (await customer.next("order.reset"))["seq"] == 3
    await customer.send({"type": "subscribe", "order_id": bob_order.pk})
    assert (await customer.next("error"))["code"] == "forbidden"
    await customer.send({"type": "subscribe", "order_id": 2_000_000_000, "after_seq": 0})
    assert (await customer.next("error"))["code"] == "not_found"
    await customer.send({"type": "seen", "order_id": alice_order.pk, "seq": 2})
    assert (await board.next("order.seen"))["seq"] == 2
    await customer.comm.send_invalid({"type": "subscribe", "order_id": "seven"})
    assert (await customer.next("error"))["code"] == "bad_frame"
    await customer.comm.send_invalid({"type": "seen", "order_id": alice_order.pk, "seq": 0})
    assert (await customer.next("error"))["code"] == "bad_frame"
    await customer.comm.send_invalid({"type": "message", "text": "not on this socket"})
    assert (await customer.next("error"))["code"] == "unknown_type"
    await customer.comm.send_raw(text="{")
    assert (await customer.next("error"))["code"] == "bad_json"
    await customer.comm.send_raw(text="[1]")
    assert (await customer.next("error"))["code"] == "bad_frame"
    await customer.comm.send_raw(data=b"\x00")
    assert (await customer.next("error"))["code"] == "bad_frame"

    # Staff's stream also carries every order's presence, chat and stuck-order frames.
    chat = await open_checked(alice, "chat", alice_order)
    assert (await board.next("presence"))["watchers"][0]["user"] == "alice"
    await chat.send({"type": "message", "text": "Where is it?"})
    assert (await board.next("chat.message"))["text"] == "Where is it?"
    await database_sync_to_async(alice_order.refresh_from_db)()
    await database_sync_to_async(push.publish_stuck_orders)([alice_order])
    assert (await board.next("order.stuck"))["orders"][0]["order_id"] == alice_order.pk

    await refresh_in_band(customer, alice)
    await drain(customer, board, chat)
    assert received(customer, board) == set(frame_types("notifications", "send"))
    assert sent(customer, board) == set(frame_types("notifications", "receive"))
    assert not customer.comm.received & {"presence", "chat.message", "order.stuck", "order.seen"}  # staff only
    for socket in (customer, board, chat):
        await socket.close()


async def test_order_socket_frames_both_ways_match_the_document(
    alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    await change(alice_order, "confirmed", staff)
    await ship(alice_order, staff, promised_at=datetime(2026, 12, 4, 12, tzinfo=UTC))
    replaying = await open_checked(alice, "order", alice_order, "?after_seq=0")
    assert [frame["seq"] for frame in [await replaying.next("order.status"), await replaying.next("order.status")]] \
        == [1, 2]
    assert (await replaying.next("order.updated"))["promised_at"] == "2026-12-04T12:00:00+00:00"
    ahead = await open_checked(alice, "order", alice_order, "?after_seq=9")
    assert (await ahead.next("order.reset"))["seq"] == 3
    watching_staff = await open_checked(staff, "order", alice_order)
    assert {watcher["user"] for watcher in (await watching_staff.next("presence"))["watchers"]} >= {"alice"}
    await change(alice_order, "preparing", staff)
    assert (await replaying.next("order.status"))["previous"] == "confirmed"
    assert (await watching_staff.next("order.status"))["seq"] == 4
    await ship(alice_order, staff, carrier="Acme Freight", tracking_number="A-1", eta=None, promised_at=None)
    updated = await watching_staff.next("order.updated")
    assert updated["carrier_tracking_url"] is None and updated["promised_at"] is None and "eta" not in updated
    await replaying.comm.send_invalid({"type": "subscribe", "order_id": alice_order.pk})
    assert (await replaying.next("error"))["code"] == "unknown_type"
    await replaying.send({"type": "seen", "order_id": alice_order.pk, "seq": 3})
    await replaying.comm.send_invalid({"type": "seen", "order_id": alice_order.pk})
    assert (await replaying.next("error"))["code"] == "bad_frame"

    await refresh_in_band(replaying, alice)
    await drain(replaying, ahead, watching_staff)
    assert received(replaying, ahead, watching_staff) == set(frame_types("order", "send"))
    assert sent(replaying, ahead, watching_staff) == set(frame_types("order", "receive"))
    assert "presence" not in received(replaying, ahead)  # staff only
    for socket in (replaying, ahead, watching_staff):
        await socket.close()

    # Refusals close with a (code, reason) of the document's close codes.
    assert await refused_as_documented(address("order", alice_order), bob) == (CLOSE_FORBIDDEN, FORBIDDEN)
    missing = address("order").replace("{order_id}", "2000000000")
    assert await refused_as_documented(missing, alice) == (CLOSE_NOT_FOUND, NOT_FOUND)


async def test_chat_socket_frames_both_ways_match_the_document(alice: Any, staff: Any, alice_order: Order) -> None:
    customer = await open_checked(alice, "chat", alice_order)
    await customer.send({"type": "message", "text": "  Where is it?  "})
    assert (await customer.next("chat.message"))["text"] == "Where is it?"
    replying = await open_checked(staff, "chat", alice_order)
    assert (await replying.next("chat.message"))["sender"] == "alice"  # the history on join
    assert "alice" in {watcher["user"] for watcher in (await replying.next("presence"))["watchers"]}
    await replying.send({"type": "message", "text": "On its way."})
    assert (await customer.next("chat.message"))["sender"] == "staff"
    await customer.comm.send_invalid({"type": "message", "text": "   "})
    assert (await customer.next("error"))["code"] == "empty_message"
    await customer.comm.send_invalid({"type": "message"})
    assert (await customer.next("error"))["code"] == "empty_message"
    await customer.comm.send_invalid({"type": "message", "text": "x" * (services.CHAT_MAX_LENGTH + 1)})
    assert (await customer.next("error"))["code"] == "message_too_long"
    await customer.comm.send_invalid({"type": "subscribe", "order_id": alice_order.pk})
    assert (await customer.next("error"))["code"] == "unknown_type"

    await refresh_in_band(customer, alice)
    await drain(customer, replying)
    assert received(customer, replying) == set(frame_types("chat", "send"))
    assert sent(customer, replying) == set(frame_types("chat", "receive"))
    assert "presence" not in customer.comm.received  # staff only
    for socket in (customer, replying):
        await socket.close()
