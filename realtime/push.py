"""The only code that knows group names and the only caller of group_send: frames (realtime/frames.py) go to
their groups here, from sync code through realtime/layer.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from channels.layers import get_channel_layer

from orders.models import ChatMessage, Order, OrderEvent
from realtime import frames, layer, metrics

if TYPE_CHECKING:  # presence sends through this module
    from realtime.presence import Watcher

STAFF_GROUP = "staff.orders"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def chat_group(order_id: int) -> str:
    return f"chat.order.{order_id}"


def access_group(user_id: int) -> str:
    """Every socket of one user, whatever it shows: told to re-check its access when the user changes."""
    return f"access.user.{user_id}"


def publish_access_recheck(groups: Iterable[str]) -> None:
    """Have the sockets in `groups` re-check their credentials and access now (a role, owner or login changed)."""
    layer.run(_group_send_many(groups, {"type": "access.recheck"}))


def status_message(event: OrderEvent) -> dict[str, Any]:
    """The channel-layer message for an event of the order's seq stream (a status change or an `order.updated`):
    the frame serialised once, plus what consumers de-duplicate by. Both kinds go to one handler
    (`order.status`), which keeps the stream's seq order whatever the frame says."""
    return {
        "type": "order.status",
        "order_id": event.order_id,
        "seq": event.seq,
        "text": json.dumps(frames.event_frame(event)),
        "created_at": event.created_at.timestamp(),  # for the delivery-latency metric
    }


def publish_event(event: OrderEvent) -> None:
    """Send an event to its customer's stream, the order's watchers and staff."""
    message = status_message(event)
    groups = (user_group(event.order.customer_id), order_group(event.order_id), STAFF_GROUP)
    layer.run(_group_send_many(groups, message))
    metrics.event_published()


async def send_chat_message(message: ChatMessage) -> None:
    text = json.dumps(frames.chat_frame(message))
    await _group_send_many((chat_group(message.order_id),), {"type": "chat.message", "text": text})
    # The staff feed: staff's /ws/notifications/ gets every order's chat frames (the board counts unread
    # chats from it) without one chat socket per order. `staff.alert` is the staff stream's forward-only type.
    await _group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": text})


def publish_chat_message(message: ChatMessage) -> None:
    layer.run(send_chat_message(message))


async def send_presence(order_id: int, watchers: Iterable[Watcher]) -> None:
    """Tell staff an order's watchers changed: staff sockets on the order and its chat, and every staff stream.

    Customers share the order and chat groups, so there the message type is `presence.changed`, which
    consumers forward to staff only; the staff stream forwards `staff.alert` as is.
    """
    text = json.dumps(frames.presence_frame(order_id, watchers))
    await _group_send_many((order_group(order_id), chat_group(order_id)), {"type": "presence.changed", "text": text})
    await _group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": text})


def publish_presence(order_id: int, watchers: Iterable[Watcher]) -> None:
    layer.run(send_presence(order_id, watchers))


async def send_seen(order_id: int, seq: int, at: datetime) -> None:
    """Tell staff streams (the board) that the order's customer has seen its events up to `seq`."""
    text = json.dumps(frames.seen_frame(order_id, seq, at))
    await _group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": text})


def publish_stuck_orders(orders: Iterable[Order]) -> None:
    text = json.dumps(frames.stuck_frame(orders))
    layer.run(_group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": text}))


def group_expiry(channel_layer: Any) -> float | None:
    """Seconds after its last group_add that the layer drops a channel from a group, or None if it never does
    (channels_redis's core and the in-memory layer expire members; the pub/sub layer does not)."""
    expiry = getattr(channel_layer, "group_expiry", None)
    return float(expiry) if expiry else None


def warm_up(*, timeout: float = 2.0) -> None:
    """Start this process's layer loop and open its Redis connection now, so the first push does not pay for
    them (a Celery child's first push took 50-100 ms more, bench/). A send to a group nobody joins is a no-op."""
    if layer.uses_own_loop():
        layer.run(get_channel_layer().group_send("push.warm-up", {"type": "warm.up"}), timeout=timeout)


async def _group_send_many(groups: Iterable[str], message: dict[str, Any]) -> None:
    """One message to several groups at once: each group_send is two Redis round trips (members, then the
    channels' queues), so in turn three groups cost six, together two (bench/, docs/performance.md). Each
    group keeps its own order; the first error raises once every send has ended."""
    channel_layer = get_channel_layer()
    results = await asyncio.gather(*(channel_layer.group_send(group, message) for group in groups),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
