"""WebSocket consumers, one endpoint per class: translate client frames to selector/service calls and group
messages to frames.

    BaseConsumer                 auth, frame limits, JSON parsing, client frames by type, ping
      WatchingConsumer           counts as watching (presence); staff get `presence` frames
        EventStreamConsumer      order.status frames once and in order (streams.StreamPositions), replay, reset
          NotificationConsumer   /ws/notifications/   the user's orders (staff: all); `subscribe`
          OrderConsumer          /ws/orders/<id>/     one order, resumable with ?after_seq
          TrackingConsumer       /ws/orders/<id>/     the same for a guest tracking link: read-only, no presence
        ChatConsumer             /ws/orders/<id>/chat/  the order's chat; `message`
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from redis.exceptions import RedisError

from accounts import tokens
from integrations import tracking
from orders import selectors, services
from orders.selectors import Access
from realtime import frames, limits, metrics, positions, presence, push
from realtime.auth import BEARER_SUBPROTOCOL, TRACKING_SUBPROTOCOL, TrackingGrant
from realtime.streams import Live, StreamPositions

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_RATE_LIMITED = 4008
CLOSE_TOO_LARGE = 4009
CLOSE_TRY_AGAIN_LATER = 1013  # RFC 6455's registry: a temporary condition on the server
# Each close's reason, distinct and stable: a client tells the limits apart by them (docs/protocol.md).
NOT_AUTHENTICATED = "not authenticated"
TOKEN_EXPIRED = "token expired"
CREDENTIALS_REVOKED = "credentials revoked"
TOKEN_REFUSED = "token refused"
FORBIDDEN = "not allowed to see this order"
ACCESS_CHANGED = "access changed"
NOT_FOUND = "no such order"
TOO_MANY_FRAMES = "too many frames"
TOO_MANY_CHAT_MESSAGES = "too many chat messages"
FRAME_TOO_LARGE = "frame too large"
SERVER_UNAVAILABLE = "server unavailable"


class FrameError(Exception):
    """A client frame we refuse with an error frame; the connection stays open."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def chosen_subprotocol(scope: dict[str, Any]) -> str | None:
    """The server selects the credential's subprotocol when the client led with one (browsers fail a handshake that
    offered subprotocols and got none back), so even a refused socket hears its close code."""
    offered = (scope.get("subprotocols") or [])[:1]
    return offered[0] if offered and offered[0] in (BEARER_SUBPROTOCOL, TRACKING_SUBPROTOCOL) else None


class BaseConsumer(AsyncJsonWebsocketConsumer):
    """Authentication, frame limits, JSON parsing and ping/pong shared by every socket.

    A client frame of type `t` is handled by `frame_t` if `t` is in `client_frames` (as channels maps a group
    message's type to a method); any other type gets an `unknown_type` error frame.
    """

    client_frames: ClassVar[frozenset[str]] = frozenset({"ping", "auth"})
    user: Any
    # channels' WebsocketConsumer gives each instance a list (its class default is None).
    groups: list[str]  # type: ignore[assignment]
    # Staff with the admin's permission to view orders: every order, and who is watching (orders.selectors).
    sees_all: bool = False
    closed: bool = False
    holds_slot: bool = False

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self._watch_task: asyncio.Task[None] | None = None
        self.budget = limits.FrameBudget(per_second=settings.WS_RATE_LIMIT_PER_SECOND,
                                         burst=settings.WS_RATE_LIMIT_BURST)
        # Close codes only reach a client on an accepted socket, so accept first and close at once if refused.
        await self.accept(chosen_subprotocol(self.scope))
        await self.admit_unless_redis_is_down()

    async def admit_unless_redis_is_down(self) -> None:
        try:
            await self.admit()
        except (RedisError, OSError) as exc:
            # Slots, groups and the layer live in Redis: without it the socket could follow nothing. A clean close
            # the client backs off from, instead of a crashed consumer and a dropped connection (1006).
            logger.warning("Socket closed at connect, Redis is unreachable: %s", exc)
            await self.refuse(CLOSE_TRY_AGAIN_LATER, SERVER_UNAVAILABLE)

    async def admit(self) -> None:
        """Authenticate, take a connection slot, join the socket's groups and send its first frames."""
        if self.user is None or not self.user.is_authenticated:
            await self.refuse(CLOSE_UNAUTHENTICATED, NOT_AUTHENTICATED)
            return
        if not await limits.take_connection_slot_async(self.user.pk, self.channel_name):
            await self.refuse(CLOSE_RATE_LIMITED, limits.TOO_MANY_CONNECTIONS)
            return
        self.holds_slot = True
        self.sees_all = await database_sync_to_async(selectors.sees_all_orders)(self.user)
        claims = self.scope.get("token_claims")
        self._watch_task = asyncio.ensure_future(self._watch_credentials(claims["exp"] if claims else None))
        metrics.socket_opened(self)
        # Role, session and ownership changes reach the socket at once (realtime.receivers), not at the next check.
        await self.join(push.access_group(self.user.pk))
        await self.connected()

    async def connected(self) -> None:
        """Join groups and send the initial frames; the user is authenticated."""

    async def refuse(self, code: int, reason: str) -> None:
        self.closed = True
        await self.close(code=code, reason=reason)

    async def disconnect(self, code: int) -> None:
        self.closed = True
        metrics.socket_closed(self)
        if self._watch_task is not None:
            self._watch_task.cancel()
        if self.holds_slot:
            self.holds_slot = False
            try:
                await limits.release_connection_slot_async(self.user.pk, self.channel_name)
            except (RedisError, OSError) as exc:  # the slot expires by itself (limits.py)
                logger.warning("Could not release the connection slot of %s: %s", self.channel_name, exc)

    async def _watch_credentials(self, expires_at: float | None) -> None:
        """Close with 4001 when the access token expires or the credentials are revoked, with 4003 when the user
        may no longer see what the socket shows.

        Every WS_REAUTH_INTERVAL_SECONDS the socket also renews its connection slot, and it re-joins its groups
        when a third of the layer's group_expiry has passed: the layer drops a member that long after its
        group_add, and a staff board or customer page open for a day would go deaf while looking healthy.
        """
        interval: float = max(settings.WS_REAUTH_INTERVAL_SECONDS, 1)
        expiry = push.group_expiry(self.channel_layer)
        rejoin_every = expiry / 3 if expiry else None
        if rejoin_every is not None:
            interval = min(interval, rejoin_every)
        rejoin_at = time.monotonic() + (rejoin_every or 0)
        while not self.closed:
            wait = interval if expires_at is None else min(interval, max(0.0, expires_at - time.time()))
            await asyncio.sleep(wait)
            if self.closed:
                return
            if expires_at is not None and time.time() >= expires_at:
                await self.refuse(CLOSE_UNAUTHENTICATED, TOKEN_EXPIRED)
                return
            if not await self.still_entitled():
                return
            if self.holds_slot:
                await limits.take_connection_slot_async(self.user.pk, self.channel_name)
            if rejoin_every is not None and time.monotonic() >= rejoin_at and await self.rejoin_groups():
                rejoin_at = time.monotonic() + rejoin_every

    async def still_entitled(self) -> bool:
        """Re-check credentials and access now; close the socket (4001 / 4003) and answer False if they failed."""
        if not await database_sync_to_async(limits.still_authorized)(self.scope):
            await self.refuse(CLOSE_UNAUTHENTICATED, CREDENTIALS_REVOKED)
            return False
        try:
            allowed = await database_sync_to_async(self.still_allowed)()
        except DatabaseError as exc:
            # As for credentials: an unanswered check is not a refusal; the next one asks again.
            logger.warning("Access not re-checked, database unavailable: %s", exc)
            return True
        if not allowed:
            await self.refuse(CLOSE_FORBIDDEN, ACCESS_CHANGED)
            return False
        return True

    def still_allowed(self) -> bool:
        """Whether the user, as stored now, may still see what this socket shows (sync: runs on the DB thread).

        Reloads the user, so staff-only frames follow the role it has now."""
        user = get_user_model().objects.filter(pk=self.user.pk, is_active=True).first()
        if user is None:
            return False
        self.user, self.sees_all = user, selectors.sees_all_orders(user)
        return True

    async def access_recheck(self, message: dict[str, Any]) -> None:
        await self.still_entitled()

    async def rejoin_groups(self) -> bool:
        """Renew this channel's group memberships; False if the layer is unreachable (the next round retries)."""
        try:
            for group in self.groups:
                await self.channel_layer.group_add(group, self.channel_name)
        except (RedisError, OSError) as exc:
            logger.warning("Could not renew the groups of %s: %s", self.channel_name, exc)
            return False
        return True

    async def dispatch(self, message: dict[str, Any]) -> None:
        # channels' dispatch first hops to the one sync thread to close stale DB connections, for every
        # message: a fan-out to N sockets queued N hops behind each other (bench/, daphne, 1,000 staff streams:
        # 1,188 deliveries/s with the hops, 4,045 without).
        # Every database call here goes through database_sync_to_async, which closes them around the call.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def admit_to_order(self, order_id: int) -> bool:
        """Whether the user may watch the order; if not, the socket is closed with 4004 or 4003."""
        access = await database_sync_to_async(selectors.order_access)(self.user, order_id)
        if access is Access.ALLOWED:
            return True
        if access is Access.MISSING:
            await self.refuse(CLOSE_NOT_FOUND, NOT_FOUND)
        else:
            await self.refuse(CLOSE_FORBIDDEN, FORBIDDEN)
        return False

    async def join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups.append(group)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.closed:
            return
        size = len(text_data.encode(errors="surrogatepass")) if text_data is not None else len(bytes_data or b"")
        if size > settings.WS_MAX_FRAME_BYTES:
            await self.refuse(CLOSE_TOO_LARGE, FRAME_TOO_LARGE)
            return
        if not self.budget.take():
            await self.refuse(CLOSE_RATE_LIMITED, TOO_MANY_FRAMES)
            return
        try:
            if text_data is None:
                raise FrameError("bad_frame", "Frames must be JSON text, not binary.")
            try:
                content = json.loads(text_data)
            except (ValueError, RecursionError):
                raise FrameError("bad_json", "The frame is not valid JSON.") from None
            if not isinstance(content, dict) or not isinstance(content.get("type"), str):
                raise FrameError("bad_frame", "A frame must be a JSON object with a string \"type\".")
            frame_type = content["type"]
            if frame_type not in self.client_frames:
                raise FrameError("unknown_type", f"Unknown frame type {frame_type[:40]!r}.")
            await getattr(self, "frame_" + frame_type.replace(".", "_"))(content)
        except FrameError as error:
            await self.send_json(frames.error_frame(error.code, error.detail))

    async def frame_ping(self, content: dict[str, Any]) -> None:
        await self.send_json(frames.PONG)

    async def frame_auth(self, content: dict[str, Any]) -> None:
        """In-band refresh: a socket opened with an access token takes a fresh one of the same user and is then
        not closed at the old one's expiry (no reconnect every 15 minutes); a bad token closes it with 4001."""
        claims = self.scope.get("token_claims")
        if claims is None:
            raise FrameError("auth_not_accepted", "Only a socket opened with an access token takes a new one.")
        token = content.get("token")
        try:
            if not isinstance(token, str):
                raise tokens.InvalidToken("no token")
            user, fresh = await database_sync_to_async(tokens.user_for_token)(token)
            if user.pk != self.user.pk:
                raise tokens.InvalidToken("another user's token")
        except tokens.InvalidToken:
            await self.refuse(CLOSE_UNAUTHENTICATED, TOKEN_REFUSED)
            return
        # Later re-checks follow the new token's login (its family), and the expiry watch its exp.
        self.scope["token_claims"] = fresh
        if self._watch_task is not None:
            self._watch_task.cancel()
        self._watch_task = asyncio.ensure_future(self._watch_credentials(fresh["exp"]))
        await self.send_json(frames.auth_ok_frame(fresh["exp"]))

    async def send_text(self, text: str) -> None:
        if not self.closed:
            await self.send(text_data=text)
            metrics.frame_sent(self)


def _int_or_none(value: Any) -> int | None:
    """A non-negative int from a frame or query value, or None (bools and floats are not ints)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**31 else None
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        return int(value)
    return None


class WatchingConsumer(BaseConsumer):
    """A socket that counts as watching (realtime.presence) and forwards `presence` frames to staff only."""

    presence_connection: presence.Connection | None = None

    async def watch(self, room: str) -> None:
        """Count this socket in `room` until it closes; staff get the order's current watchers at once."""
        if self.closed:
            return
        self.presence_connection = await presence.join(rooms=(room,), user=self.user, channel_name=self.channel_name)
        if self.sees_all:
            # Unchanged watchers were not broadcast (another tab of ours was already there): send them here.
            for order_id, watchers in self.presence_connection.unannounced.items():
                await self.send_text(json.dumps(frames.presence_frame(order_id, watchers)))

    async def disconnect(self, code: int) -> None:
        connection, self.presence_connection = self.presence_connection, None
        if connection is not None:
            await presence.leave(connection)
        await super().disconnect(code)

    async def frame_ping(self, content: dict[str, Any]) -> None:
        if self.presence_connection is not None:
            await presence.beat(self.presence_connection)
        await super().frame_ping(content)

    async def presence_changed(self, message: dict[str, Any]) -> None:
        # Customers share the order and chat groups; who else is watching is for staff only.
        if self.sees_all:
            await self.send_text(message["text"])


class EventStreamConsumer(WatchingConsumer):
    """Sends `order.status` frames once and in seq order per order, whatever arrives twice or out of order.

    Delivery from the worker is at least once and two pushes can overtake each other; a connection remembers
    what it sent (`streams.StreamPositions`), drops repeats and fills a gap from the event log. The position check
    (realtime.positions) fills a gap no later push reveals, and resets a client that is ahead of the log.
    """

    following: positions.Following | None = None

    async def resume_order(self, order_id: int) -> None:
        """A single-order socket, once in its group: from `?after_seq` (the log replayed first) or from the order's
        current seq, then followed by the position check."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        after_seq = _int_or_none((query.get("after_seq") or [None])[0])
        if after_seq is None:
            self.stream.start_at(order_id, await database_sync_to_async(selectors.current_seq)(order_id))
        else:
            await self.replay(order_id, after_seq)
        self.follow(positions.Following(order_id=order_id))

    async def connected(self) -> None:
        self.stream = StreamPositions()
        # The position check runs outside this consumer's message loop: it and the handlers that read and
        # advance the stream's positions take turns.
        self.seq_lock = asyncio.Lock()
        await self.open_stream()

    async def open_stream(self) -> None:
        """Join the stream's groups, bring the client level, and follow() what it watches."""

    def follow(self, following: positions.Following) -> None:
        if not self.closed:
            self.following = following
            positions.follow(self, following)

    async def disconnect(self, code: int) -> None:
        if self.following is not None:
            positions.unfollow(self)
            self.following = None
        await super().disconnect(code)

    async def replay(self, order_id: int, after_seq: int) -> None:
        """Send the order's events after `after_seq` from the log, oldest first.

        If the log ends before `after_seq` (a database restored from a backup, a client bug), send `order.reset`
        with where it ends instead: waiting for the order to pass `after_seq` would keep the client deaf.
        """
        self.stream.begin_replay(order_id, after_seq)
        while not self.closed:
            last = self.stream.last[order_id]
            events = await database_sync_to_async(selectors.events_after)(order_id, last)
            if not events and last == after_seq and after_seq > 0:
                current = await database_sync_to_async(selectors.current_seq)(order_id)
                if current < after_seq:
                    await self.reset(order_id, current)
            for event in events:
                await self.send_text(json.dumps(frames.status_frame(event)))
                self.stream.sent(order_id, event.seq)
            if len(events) < settings.REPLAY_LIMIT:
                return

    async def reset(self, order_id: int, seq: int) -> None:
        """The client is ahead of the log: tell it where the log is; frames continue from there."""
        self.stream.reset(order_id, seq)
        await self.send_text(json.dumps(frames.reset_frame(order_id, seq)))

    async def catch_up(self, current: dict[int, int]) -> None:
        """The position check: replay what this connection has not sent of orders now at `current`, and reset
        those it is ahead of."""
        for order_id, seq in current.items():
            async with self.seq_lock:
                if self.closed:
                    return
                replay_from = self.stream.behind(order_id, seq)
                if replay_from is not None:
                    await self.replay(order_id, replay_from)
                elif self.stream.ahead(order_id, seq):
                    # `current` was read before a push may have moved the stream on: only the log, read now, can
                    # say the client is ahead of it.
                    seq = await database_sync_to_async(selectors.current_seq)(order_id)
                    if self.stream.ahead(order_id, seq):
                        await self.reset(order_id, seq)

    async def order_status(self, message: dict[str, Any]) -> None:
        async with self.seq_lock:
            order_id, seq = message["order_id"], message["seq"]
            decision = self.stream.live(order_id, seq)
            if decision is Live.DROP:
                return
            if decision is Live.GAP:
                await self.replay(order_id, self.stream.last_sent(order_id) or 0)
                return
            await self.send_text(message["text"])
            metrics.status_delivered(message)
            self.stream.sent(order_id, seq)


class NotificationConsumer(EventStreamConsumer):
    """`/ws/notifications/`: every status change of the user's orders (staff: of all orders), and `subscribe` to
    bring one order level from a seq."""

    client_frames = EventStreamConsumer.client_frames | {"subscribe"}
    opened_as_staff = False

    async def open_stream(self) -> None:
        if self.sees_all:
            self.opened_as_staff = True
            await self.join(push.STAFF_GROUP)
            following = positions.Following(every_order=True)
        else:
            # Each of the customer's orders starts at its seq before joining, so an older event pushed again
            # (at-least-once, the outbox sweep) is dropped and one overtaken by a later event is filled in
            # from the log. Events committed while joining are replayed, and their pushes then dropped. An order
            # created after the stream opened starts at 0.
            before = await database_sync_to_async(selectors.customer_order_seqs)(self.user)
            await self.join(push.user_group(self.user.pk))
            self.stream.unknown_start = 0
            for order_id, seq in before.items():
                self.stream.start_at(order_id, seq)
            for changed, seq in (await database_sync_to_async(selectors.customer_order_seqs)(self.user)).items():
                if seq > before.get(changed, 0):
                    await self.replay(changed, before.get(changed, 0))
            following = positions.Following(customer_id=self.user.pk)
        await self.watch(presence.user_room(self.user.pk))
        self.follow(following)

    def still_allowed(self) -> bool:
        # A staff stream carries every order: it ends when its user stops being staff. A customer's stream only
        # ever gets the orders that are theirs when pushed, so it narrows by itself.
        return super().still_allowed() and (self.sees_all or not self.opened_as_staff)

    async def frame_subscribe(self, content: dict[str, Any]) -> None:
        order_id = _int_or_none(content.get("order_id"))
        after_seq = _int_or_none(content.get("after_seq", 0))
        if order_id is None or after_seq is None:
            raise FrameError("bad_frame", "subscribe needs an integer order_id and a non-negative after_seq.")
        access = await database_sync_to_async(selectors.order_access)(self.user, order_id)
        if access is Access.MISSING:
            raise FrameError("not_found", "No such order.")
        if access is Access.FORBIDDEN:
            raise FrameError("forbidden", "You may not watch this order.")
        # The stream's group already carries this order's live events; replay brings the client level.
        async with self.seq_lock:
            await self.replay(order_id, self.stream.resume_from(order_id, after_seq))

    async def staff_alert(self, message: dict[str, Any]) -> None:
        await self.send_text(message["text"])


class OrderConsumer(EventStreamConsumer):
    """`/ws/orders/<id>/`: one order's status changes; `?after_seq=N` replays the events after N first."""

    async def open_stream(self) -> None:
        self.order_id = self.scope["url_route"]["kwargs"]["order_id"]
        if not await self.admit_to_order(self.order_id):
            return
        # Join before reading the log: anything committed meanwhile arrives as a group message after
        # the replay and is dropped there by seq, so the seam has no gap and no duplicate.
        await self.join(push.order_group(self.order_id))
        await self.watch(presence.order_room(self.order_id))
        await self.resume_order(self.order_id)

    def still_allowed(self) -> bool:
        return super().still_allowed() and selectors.order_access(self.user, self.order_id) is Access.ALLOWED


class TrackingConsumer(EventStreamConsumer):
    """`/ws/orders/<id>/` opened with a guest tracking token (realtime.auth.TrackingGrant): the order's status
    frames, resumable as OrderConsumer, and nothing else. There is no user: no connection slot, no presence (a
    guest is not a watcher staff can answer), no client frames but ping. At connect a token for another order is
    closed with 4003, a tampered, rotated or expired one with 4001; a link rotated or expired while open with 4003
    `access changed`."""

    client_frames = frozenset({"ping"})  # a guest's token is not refreshed in band

    async def connect(self) -> None:
        self.user = AnonymousUser()
        self._watch_task = None
        self.budget = limits.FrameBudget(per_second=settings.WS_RATE_LIMIT_PER_SECOND,
                                         burst=settings.WS_RATE_LIMIT_BURST)
        await self.accept(TRACKING_SUBPROTOCOL)
        await self.admit_unless_redis_is_down()

    async def admit(self) -> None:
        grant: TrackingGrant | None = self.scope.get("tracking")
        self.order_id = self.scope["url_route"]["kwargs"]["order_id"]
        if grant is None or grant.order_id is None:
            await self.refuse(CLOSE_UNAUTHENTICATED, NOT_AUTHENTICATED)
            return
        if grant.order_id != self.order_id:
            await self.refuse(CLOSE_FORBIDDEN, FORBIDDEN)
            return
        self.token = grant.token
        metrics.socket_opened(self)
        self._watch_task = asyncio.ensure_future(self._watch_credentials(None))
        await self.connected()

    async def open_stream(self) -> None:
        # As OrderConsumer: join first, then read the log, so the seam has no gap and no duplicate.
        await self.join(push.order_group(self.order_id))
        await self.resume_order(self.order_id)

    async def still_entitled(self) -> bool:
        """The link is still good (not rotated, not expired, its order still there); else close with 4003
        `access changed`, as for a member whose access narrowed (docs/protocol.md, the close codes)."""
        try:
            order = await database_sync_to_async(tracking.verify)(self.token)
        except tracking.BadTrackingToken:
            await self.refuse(CLOSE_FORBIDDEN, ACCESS_CHANGED)
            return False
        except DatabaseError as exc:
            logger.warning("Tracking link not re-checked, database unavailable: %s", exc)
            return True
        if order.pk != self.order_id:
            await self.refuse(CLOSE_FORBIDDEN, ACCESS_CHANGED)
            return False
        return True

    async def presence_changed(self, message: dict[str, Any]) -> None:
        """Who watches an order is for staff only."""


class ChatConsumer(WatchingConsumer):
    """`/ws/orders/<id>/chat/`: the order's customer and staff in one room, the last 50 messages on join."""

    client_frames = WatchingConsumer.client_frames | {"message"}

    async def connected(self) -> None:
        self.order_id = self.scope["url_route"]["kwargs"]["order_id"]
        if not await self.admit_to_order(self.order_id):
            return
        await self.join(push.chat_group(self.order_id))
        await self.watch(presence.order_room(self.order_id))
        for message in await database_sync_to_async(selectors.chat_history)(self.order_id):
            await self.send_json(frames.chat_frame(message))

    def still_allowed(self) -> bool:
        return super().still_allowed() and selectors.order_access(self.user, self.order_id) is Access.ALLOWED

    async def frame_message(self, content: dict[str, Any]) -> None:
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            raise FrameError("empty_message", "A message needs non-empty text.")
        # The stored text is trimmed, so the limit applies to what is stored.
        if len(text.strip()) > services.CHAT_MAX_LENGTH:
            raise FrameError("message_too_long", f"Messages are limited to {services.CHAT_MAX_LENGTH} characters.")
        # Who may post is decided now, not only at connect: the order may have changed hands since.
        if not await database_sync_to_async(self.still_allowed)():
            await self.refuse(CLOSE_FORBIDDEN, ACCESS_CHANGED)
            return
        try:
            await database_sync_to_async(services.post_chat_message)(
                order_id=self.order_id, sender=self.user, text=text
            )
        except services.ChatRateLimited:
            await self.refuse(CLOSE_RATE_LIMITED, TOO_MANY_CHAT_MESSAGES)

    async def chat_message(self, message: dict[str, Any]) -> None:
        await self.send_text(message["text"])
