"""The only code that knows group names and frame shapes, and the only caller of group_send."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from realtime import metrics

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
    run_on_layer(_group_send_many(groups, {"type": "access.recheck"}))


def status_frame(event: Any) -> dict[str, Any]:
    """The `order.status` frame for an OrderEvent (its `order` loaded)."""
    return {
        "type": "order.status",
        "order_id": event.order_id,
        "number": event.order.number,
        "seq": event.seq,
        "status": event.to_status,
        "previous": event.from_status or None,
        "at": event.created_at.isoformat(),
        "event_id": event.pk,
    }


def status_message(event: Any) -> dict[str, Any]:
    """The channel-layer message for an event: the frame serialised once, plus what consumers de-duplicate by."""
    return {
        "type": "order.status",
        "order_id": event.order_id,
        "seq": event.seq,
        "text": json.dumps(status_frame(event)),
        "created_at": event.created_at.timestamp(),  # for the delivery-latency metric
    }


def reset_frame(order_id: int, seq: int) -> dict[str, Any]:
    """`order.reset`: the client is ahead of the order's log (a restored database, a client bug); it sets its
    last seq to `seq`, the log's end, and reloads the order. Later events follow as usual."""
    return {"type": "order.reset", "order_id": order_id, "seq": seq}


def error_frame(code: str, detail: str) -> dict[str, str]:
    return {"type": "error", "code": code, "detail": detail}


def publish_event(event: Any) -> None:
    """Send a status event to its customer's stream, the order's watchers and staff."""
    message = status_message(event)
    groups = (user_group(event.order.customer_id), order_group(event.order_id), STAFF_GROUP)
    run_on_layer(_group_send_many(groups, message))
    metrics.event_published()


def chat_frame(message: Any) -> dict[str, Any]:
    """The `chat.message` frame for a ChatMessage (its `sender` loaded)."""
    return {
        "type": "chat.message",
        "order_id": message.order_id,
        "id": message.pk,
        "sender": message.sender.get_username(),
        "text": message.text,
        "at": message.created_at.isoformat(),
    }


def publish_chat_message(message: Any) -> None:
    text = json.dumps(chat_frame(message))
    async_to_sync(_group_send_many)((chat_group(message.order_id),), {"type": "chat.message", "text": text})
    # The staff feed: staff's /ws/notifications/ gets every order's chat frames (the board counts unread
    # chats from it) without one chat socket per order. `staff.alert` is the staff stream's forward-only type.
    async_to_sync(_group_send_many)((STAFF_GROUP,), {"type": "staff.alert", "text": text})


def presence_frame(order_id: int, watchers: Iterable[Any]) -> dict[str, Any]:
    """The staff-only `presence` frame: who watches the order now, one entry per user however many tabs."""
    return {
        "type": "presence",
        "order_id": order_id,
        "watchers": [
            {"user": watcher.username, "since": datetime.fromtimestamp(watcher.since, tz=UTC).isoformat()}
            for watcher in watchers
        ],
    }


async def send_presence(order_id: int, watchers: Iterable[Any]) -> None:
    """Tell staff an order's watchers changed: staff sockets on the order and its chat, and every staff stream.

    Customers share the order and chat groups, so there the message type is `presence.changed`, which
    consumers forward to staff only; the staff stream forwards `staff.alert` as is.
    """
    text = json.dumps(presence_frame(order_id, watchers))
    await _group_send_many((order_group(order_id), chat_group(order_id)), {"type": "presence.changed", "text": text})
    await _group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": text})


def publish_presence(order_id: int, watchers: Iterable[Any]) -> None:
    run_on_layer(send_presence(order_id, watchers))


def publish_stuck_orders(orders: Iterable[Any]) -> None:
    frame = {
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
    run_on_layer(_group_send_many((STAFF_GROUP,), {"type": "staff.alert", "text": json.dumps(frame)}))


def group_expiry(layer: Any) -> float | None:
    """Seconds after its last group_add that the layer drops a channel from a group, or None if it never does
    (channels_redis's core and the in-memory layer expire members; the pub/sub layer does not)."""
    expiry = getattr(layer, "group_expiry", None)
    return float(expiry) if expiry else None


async def _group_send_many(groups: Iterable[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, message)


# Longer than any healthy group_send; a stuck Redis raises TimeoutError, which the push task retries. The bound
# of every layer send from sync code (tasks), on any Celery pool (docs/reliability.md, "Bounds").
LAYER_SEND_TIMEOUT_SECONDS = 10.0


class _LayerLoop:
    """One event loop per process, on a daemon thread, that sync code (Celery tasks) sends through.

    async_to_sync from a plain thread runs each call on a new event loop, and channels_redis keeps its
    connection pools per loop: every push paid for a new loop and new Redis connections (~15-30 ms, bench/).
    Here the loop, and so the layer's pools, live as long as the process. Rebuilt after a fork (Celery's
    prefork children): threads do not survive fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="channel-layer-loop", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_layer_loop = _LayerLoop()


def run_on_layer(coroutine: Coroutine[Any, Any, None], *, timeout: float = LAYER_SEND_TIMEOUT_SECONDS) -> None:
    """Run a channel-layer coroutine from sync code and wait for it (errors and timeouts raise here).

    The in-memory layer (embedded mode, some tests) lives on the caller's event loop, so it keeps
    async_to_sync, which runs the coroutine there when called from within sync_to_async.
    """
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        async_to_sync(_await)(coroutine)
        return
    future = asyncio.run_coroutine_threadsafe(coroutine, _layer_loop.loop())
    try:
        future.result(timeout=timeout)
    except TimeoutError:
        future.cancel()
        raise


async def _await(coroutine: Coroutine[Any, Any, None]) -> None:
    await coroutine


def warm_up(*, timeout: float = 2.0) -> None:
    """Start this process's layer loop and open its Redis connection now, so the first push does not pay for
    them (a Celery child's first push took 50-100 ms more, bench/). A send to a group nobody joins is a no-op."""
    if not isinstance(get_channel_layer(), InMemoryChannelLayer):
        run_on_layer(get_channel_layer().group_send("push.warm-up", {"type": "warm.up"}), timeout=timeout)
