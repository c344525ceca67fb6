"""The server → client frames (docs/protocol.md), each declared once as a typed shape with its builder.

An OrderEvent's own fields come from `OrderEvent.to_dict()`, the shape the JSON API also serves; an `updated`
event's changed fields from `OrderEvent.changes`, as recorded by orders.services.update_order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from orders.models import ChatMessage, EventDict, Order, OrderEvent

if TYPE_CHECKING:  # presence sends frames through push, which imports this module
    from realtime.presence import Watcher


class StatusFrame(EventDict):
    type: Literal["order.status"]
    order_id: int
    number: str
    event_id: int


class UpdatedFrame(TypedDict, total=False):
    """`order.updated`: the order's shipment or promise changed. Only the changed fields are present (among
    carrier, tracking_number, carrier_tracking_url, promised_at, eta); the rest are always there."""

    type: Literal["order.updated"]
    order_id: int
    number: str
    seq: int
    at: str
    event_id: int
    carrier: str
    tracking_number: str
    carrier_tracking_url: str | None
    promised_at: str | None
    eta: str | None


class ResetFrame(TypedDict):
    type: Literal["order.reset"]
    order_id: int
    seq: int


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    detail: str


class PongFrame(TypedDict):
    type: Literal["pong"]


class AuthOkFrame(TypedDict):
    type: Literal["auth.ok"]
    exp: int


class ChatFrame(TypedDict):
    type: Literal["chat.message"]
    order_id: int
    id: int
    sender: str
    text: str
    at: str


class WatcherEntry(TypedDict):
    user: str
    since: str


class PresenceFrame(TypedDict):
    type: Literal["presence"]
    order_id: int
    watchers: list[WatcherEntry]


class StuckOrder(TypedDict):
    order_id: int
    number: str
    status: str
    since: str | None


class StuckFrame(TypedDict):
    type: Literal["order.stuck"]
    orders: list[StuckOrder]


class SeenFrame(TypedDict):
    type: Literal["order.seen"]
    order_id: int
    seq: int
    at: str


PONG: PongFrame = {"type": "pong"}


def status_frame(event: OrderEvent) -> StatusFrame:
    """The `order.status` frame for an OrderEvent (its `order` loaded)."""
    return {
        "type": "order.status",
        "order_id": event.order_id,
        "number": event.order.number,
        **event.to_dict(),
        "event_id": event.pk,
    }


def updated_frame(event: OrderEvent) -> UpdatedFrame:
    """The `order.updated` frame for an `updated` OrderEvent (its `order` loaded): its seq, then the fields it
    changed."""
    frame: dict[str, Any] = {
        **event.changes,
        "type": "order.updated",
        "order_id": event.order_id,
        "number": event.order.number,
        "seq": event.seq,
        "at": event.created_at.isoformat(),
        "event_id": event.pk,
    }
    return frame  # type: ignore[return-value]  # `changes` holds only UpdatedFrame's optional fields


def event_frame(event: OrderEvent) -> StatusFrame | UpdatedFrame:
    """The frame of any event of an order's seq stream, live or replayed: `order.status` or `order.updated`."""
    if event.kind == OrderEvent.Kind.UPDATED:
        return updated_frame(event)
    return status_frame(event)


def reset_frame(order_id: int, seq: int) -> ResetFrame:
    """`order.reset`: the client is ahead of the order's log (a restored database, a client bug); it sets its
    last seq to `seq`, the log's end, and reloads the order. Later events follow as usual."""
    return {"type": "order.reset", "order_id": order_id, "seq": seq}


def error_frame(code: str, detail: str) -> ErrorFrame:
    return {"type": "error", "code": code, "detail": detail}


def auth_ok_frame(exp: int) -> AuthOkFrame:
    """The answer to an in-band `auth`: the socket now lives until `exp` (the new access token's, epoch seconds)."""
    return {"type": "auth.ok", "exp": exp}


def chat_frame(message: ChatMessage) -> ChatFrame:
    """The `chat.message` frame for a ChatMessage (its `sender` loaded)."""
    return {
        "type": "chat.message",
        "order_id": message.order_id,
        "id": message.pk,
        "sender": message.sender.get_username(),
        "text": message.text,
        "at": message.created_at.isoformat(),
    }


def presence_frame(order_id: int, watchers: Iterable[Watcher]) -> PresenceFrame:
    """The staff-only `presence` frame: who watches the order now, one entry per user however many tabs."""
    return {
        "type": "presence",
        "order_id": order_id,
        "watchers": [
            {"user": watcher.username, "since": datetime.fromtimestamp(watcher.since, tz=UTC).isoformat()}
            for watcher in watchers
        ],
    }


def stuck_frame(orders: Iterable[Order]) -> StuckFrame:
    """`order.stuck`, for staff: orders unchanged in one status for over STUCK_ORDER_AFTER_MINUTES."""
    return {
        "type": "order.stuck",
        "orders": [
            {
                "order_id": order.pk,
                "number": order.number,
                "status": order.status,
                "since": order.status_changed_at.isoformat() if order.status_changed_at else None,
            }
            for order in orders
        ],
    }


def seen_frame(order_id: int, seq: int, at: datetime) -> SeenFrame:
    """`order.seen`, for staff: the order's customer has now been shown its events up to `seq` (a receipt)."""
    return {"type": "order.seen", "order_id": order_id, "seq": seq, "at": at.isoformat()}
