"""Reads: which orders a user may see (HTTP and WebSocket alike), the order list's pages, event history, outbox,
stuck orders, the board."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import ApiKey, Scope
from orders.models import ChatMessage, Order, OrderEvent
from orders.states import CLOSED_STATUSES, TRANSITIONS, Status

# Who reads: a person (a customer, staff) or a shop's system with a service API key.
Viewer = User | AnonymousUser | ApiKey


class Access(enum.Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"
    MISSING = "missing"


def sees_all_orders(user: Viewer) -> bool:
    """Staff who may view orders in the admin (`orders.view_order`, or `change_order`, which implies it; superusers
    have both) see every order and its staff-only fields. Staff without either are customers here: the admin
    would show them no orders either, so nothing else may. An API key sees them all with `orders:read`, or
    `orders:write` (which needs to find the order it changes), as staff do."""
    if isinstance(user, ApiKey):
        return user.allows(Scope.ORDERS_READ) or user.allows(Scope.ORDERS_WRITE)
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    return user.has_perm("orders.view_order") or user.has_perm("orders.change_order")


def may_change_status(user: Viewer) -> bool:
    """The admin's rule for changing an order (`orders.change_order`), for the API's status changes too; for an
    API key, `orders:write`."""
    if isinstance(user, ApiKey):
        return user.allows(Scope.ORDERS_WRITE)
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm("orders.change_order"))


def may_create_orders(user: Viewer) -> bool:
    """Intake: an API key with `orders:write`, or staff who may add orders in the admin."""
    if isinstance(user, ApiKey):
        return user.allows(Scope.ORDERS_WRITE)
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm("orders.add_order"))


def visible_orders(user: Viewer) -> QuerySet[Order]:
    if sees_all_orders(user):
        return Order.objects.all()
    if isinstance(user, ApiKey) or not user.is_authenticated or not user.is_active:
        return Order.objects.none()
    return Order.objects.filter(customer=user)


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    # The id to continue below (the next page's `before`), or None on the last page.
    next_before: int | None


def order_page(
    user: Viewer,
    *,
    limit: int,
    before: int | None = None,
    updated_since: datetime | None = None,
    status: str | None = None,
    external_ref: str | None = None,
) -> OrderPage:
    """One page of the orders `user` may see, newest first, keyed by id below `before`.

    Keyed by id, which never changes, so walking the pages returns each order that existed when the walk
    began exactly once, however its status (and so its `updated_at`) changes meanwhile. `updated_since`
    keeps the orders whose `updated_at` (bumped by every save, so by every status change) is not older.
    """
    orders = visible_orders(user).select_related("customer")
    if updated_since is not None:
        orders = orders.filter(updated_at__gte=updated_since)
    if status is not None:
        orders = orders.filter(status=status)
    if external_ref is not None:
        orders = orders.filter(external_ref=external_ref)
    if before is not None:
        orders = orders.filter(pk__lt=before)
    # One more than asked says whether another page follows, without a COUNT.
    rows = list(orders.order_by("-pk")[: limit + 1])
    page = rows[:limit]
    return OrderPage(orders=page, next_before=page[-1].pk if len(rows) > limit else None)


def get_visible_order(user: Viewer, order_id: int) -> Order | None:
    return visible_orders(user).select_related("customer").filter(pk=order_id).first()


def order_access(user: Viewer, order_id: int) -> Access:
    """Whether `user` may watch order `order_id`; sockets close with 4003 or 4004 by the answer."""
    if visible_orders(user).filter(pk=order_id).exists():
        return Access.ALLOWED
    if Order.objects.filter(pk=order_id).exists():
        return Access.FORBIDDEN
    return Access.MISSING


def events_after(order_id: int, after_seq: int, limit: int | None = None) -> list[OrderEvent]:
    """The order's events with seq > after_seq, oldest first (the replay a reconnecting client needs)."""
    limit = limit or settings.REPLAY_LIMIT
    events = OrderEvent.objects.select_related("order").filter(order_id=order_id, seq__gt=after_seq)
    return list(events.order_by("seq")[:limit])


def event_log(order: Order) -> list[OrderEvent]:
    """The order's events, oldest first, up to REPLAY_LIMIT (the API's order detail): each has `order` set to
    this one, without joining the order table again."""
    return list(order.events.order_by("seq")[: settings.REPLAY_LIMIT])


def status_history(order_id: int) -> list[OrderEvent]:
    """The order's status changes, oldest first (its timeline; `updated` events are shown as the order's facts)."""
    return list(OrderEvent.objects.filter(order_id=order_id, kind=OrderEvent.Kind.STATUS).order_by("seq"))


def current_seq(order_id: int) -> int:
    return Order.objects.filter(pk=order_id).values_list("seq", flat=True).first() or 0


def customer_order_seqs(user: User) -> dict[int, int]:
    """The current seq of each of the customer's orders: where a customer's notification stream starts."""
    return dict(Order.objects.filter(customer=user).values_list("pk", "seq"))


def order_seqs(order_ids: Iterable[int]) -> dict[int, int]:
    """The current seq of each of these orders (missing ones are left out)."""
    return dict(Order.objects.filter(pk__in=list(order_ids)).values_list("pk", "seq"))


def customers_order_seqs(customer_ids: Iterable[int]) -> dict[int, dict[int, int]]:
    """Per customer, the current seq of each of their orders: many customer_order_seqs in one query."""
    seqs: dict[int, dict[int, int]] = {customer_id: {} for customer_id in customer_ids}
    for order_id, customer_id, seq in Order.objects.filter(customer_id__in=list(seqs)).values_list(
        "pk", "customer_id", "seq"
    ):
        seqs[customer_id][order_id] = seq
    return seqs


def changed_order_seqs(since: datetime) -> dict[int, int]:
    """The current seq of every order changed (`updated_at`) since `since`: what a staff stream may have missed."""
    return dict(Order.objects.filter(updated_at__gte=since).values_list("pk", "seq"))


def unpublished_events(*, created_before: datetime, limit: int = 500) -> list[OrderEvent]:
    events = OrderEvent.objects.select_related("order").filter(published_at=None, created_at__lt=created_before)
    return list(events.order_by("order_id", "seq")[:limit])


def stuck_orders(*, changed_before: datetime, limit: int = 200) -> list[Order]:
    open_statuses = [status for status, following in TRANSITIONS.items() if following]
    orders = Order.objects.filter(status__in=open_statuses, status_changed_at__lt=changed_before)
    return list(orders.order_by("status_changed_at")[:limit])


def chat_history(order_id: int, limit: int = 50) -> list[ChatMessage]:
    """The last `limit` messages of the order's chat, oldest first."""
    latest = ChatMessage.objects.select_related("sender").filter(order_id=order_id).order_by("-created_at", "-id")
    return list(reversed(latest[:limit]))


def at_risk_orders(orders: QuerySet[Order]) -> QuerySet[Order]:
    """Those of `orders` flagged as likely to miss their promise and still on their way (Order.at_risk)."""
    return orders.filter(at_risk_since__isnull=False).exclude(status__in=[Status.DELIVERED, Status.CANCELLED])


# --- The staff board -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BoardFilter:
    """What the staff board shows: a search, some statuses (none: every open one, or every one with
    `include_closed`), and the support queue (orders whose chat awaits a staff reply)."""

    search: str = ""
    statuses: frozenset[str] = frozenset()
    include_closed: bool = False
    awaiting_reply: bool = False
    # Only orders flagged as likely to miss their promise (at_risk_orders).
    at_risk: bool = False

    def shown_statuses(self) -> frozenset[str]:
        if self.statuses:
            return self.statuses
        return frozenset(Status.values) if self.include_closed else frozenset(Status.values) - CLOSED_STATUSES


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class BoardCursor:
    """A place in the board's order (most recent status change first, never-changed last, then the higher id)."""

    changed_at: datetime | None
    order_id: int

    @classmethod
    def of(cls, order: Order) -> BoardCursor:
        return cls(order.status_changed_at, order.pk)

    def text(self) -> str:
        """As the page's links carry it: microseconds since the epoch (or "n": never changed), a dot, the id."""
        stamp = "n" if self.changed_at is None else str((self.changed_at - EPOCH) // MICROSECOND)
        return f"{stamp}.{self.order_id}"

    @classmethod
    def parse(cls, text: str | None) -> BoardCursor | None:
        """A cursor from a link, or None for anything else (the board then shows its first page)."""
        stamp, _, order_id = (text or "").partition(".")
        if not order_id.isdigit() or len(order_id) > 19 or not (stamp == "n" or stamp.isdigit()):
            return None
        if stamp == "n":
            return cls(None, int(order_id))
        try:
            changed_at = EPOCH + int(stamp) * MICROSECOND
        except OverflowError:
            return None
        return cls(changed_at, int(order_id))

    def below(self) -> Q:
        """The orders after this place on the board."""
        if self.changed_at is None:
            return Q(status_changed_at=None, pk__lt=self.order_id)
        return (Q(status_changed_at__lt=self.changed_at) | Q(status_changed_at=self.changed_at, pk__lt=self.order_id)
                | Q(status_changed_at=None))

    def above(self) -> Q:
        """The orders before this place on the board."""
        if self.changed_at is None:
            return Q(status_changed_at__isnull=False) | Q(status_changed_at=None, pk__gt=self.order_id)
        return Q(status_changed_at__gt=self.changed_at) | Q(status_changed_at=self.changed_at, pk__gt=self.order_id)


@dataclass(frozen=True)
class BoardPage:
    orders: list[Order]
    # Per status, the orders matching the search (and the support queue), whatever the status filter says.
    counts: dict[str, int]
    # The orders the filter shows in all, and how many of them rank above this page's first row.
    total: int
    start: int
    # Where the following and the preceding page start (None: there is none).
    next_after: BoardCursor | None
    previous_before: BoardCursor | None


BOARD_ORDER = (F("status_changed_at").desc(nulls_last=True), "-pk")
BOARD_ORDER_REVERSED = (F("status_changed_at").asc(nulls_first=True), "pk")


def _searched(orders: QuerySet[Order], search: str) -> QuerySet[Order]:
    """Orders whose number, external_ref, or customer's username, name or e-mail contains `search`."""
    for word in search.split():
        orders = orders.filter(
            Q(number__icontains=word) | Q(external_ref__icontains=word) | Q(customer__username__icontains=word)
            | Q(customer__email__icontains=word) | Q(customer__first_name__icontains=word)
            | Q(customer__last_name__icontains=word)
        )
    return orders


def _chat_awaits_reply() -> Q:
    """The order's latest chat message is its customer's (the admin's support queue); no chat: not awaiting."""
    latest_sender = ChatMessage.objects.filter(order_id=OuterRef("pk")).order_by("-id").values("sender_id")[:1]
    return Q(customer_id=Subquery(latest_sender))


def _matching(board: BoardFilter) -> QuerySet[Order]:
    """The orders of the board's search and support queue, whatever their status."""
    matching = _searched(Order.objects.all(), board.search)
    if board.at_risk:
        matching = at_risk_orders(matching)
    return matching.filter(_chat_awaits_reply()) if board.awaiting_reply else matching


def board_counts(board: BoardFilter, *, first: Order | None = None) -> tuple[dict[str, int], int]:
    """Per status, the orders of the board's search and support queue (whatever the status filter says), and
    how many of the shown statuses rank above `first`: one query grouped by status."""
    aggregates: dict[str, Any] = {"count": Count("pk")}
    if first is not None:
        aggregates["above"] = Count("pk", filter=BoardCursor.of(first).above())
    counts = {status: 0 for status in Status.values}
    start = 0
    shown_statuses = board.shown_statuses()
    for row in _matching(board).values("status").annotate(**aggregates).order_by():
        counts[row["status"]] = row["count"]
        if row["status"] in shown_statuses:
            start += row.get("above", 0)
    return counts, start


def board_page(board: BoardFilter, *, limit: int, after: BoardCursor | None = None,
               before: BoardCursor | None = None) -> BoardPage:
    """One page of the staff board: the orders `board` shows, most recently changed first, starting below
    `after` (or ending right above `before`), with the counts per status, the total and where the page starts.
    Two queries: the rows, and one count grouped by status. Keyed by place, not offset, so an order moving to
    the top while staff page through makes no other order skip or repeat."""
    shown_statuses = board.shown_statuses()
    shown = _matching(board).filter(status__in=sorted(shown_statuses)).select_related("customer")
    if before is not None:
        fetched = list(shown.filter(before.above()).order_by(*BOARD_ORDER_REVERSED)[:limit])
        rows, has_next = fetched[::-1], True  # the page we came back from follows
    else:
        fetched = list((shown.filter(after.below()) if after else shown).order_by(*BOARD_ORDER)[: limit + 1])
        rows, has_next = fetched[:limit], len(fetched) > limit
    if not rows and (after or before):
        return board_page(board, limit=limit)  # past either end (orders moved meanwhile): the first page
    counts, start = board_counts(board, first=rows[0] if rows else None)
    return BoardPage(
        orders=rows, counts=counts, total=sum(counts[status] for status in shown_statuses), start=start,
        next_after=BoardCursor.of(rows[-1]) if has_next else None,
        previous_before=BoardCursor.of(rows[0]) if start > 0 else None,
    )


def board_rows(order_ids: Iterable[int]) -> list[Order]:
    """These orders as board rows, with their customers (a row the page adds or refreshes live)."""
    return list(Order.objects.select_related("customer").filter(pk__in=list(order_ids)).order_by(*BOARD_ORDER))


def awaiting_reply_counts(order_ids: list[int]) -> dict[int, int]:
    """Per order, the customer's chat messages since anyone else (staff) last wrote: the board's "unread"."""
    last_reply = (
        ChatMessage.objects.filter(order_id=OuterRef("order_id"))
        .exclude(sender_id=OuterRef("order__customer_id"))
        .order_by("-id")
        .values("id")[:1]
    )
    unanswered = (
        ChatMessage.objects.filter(order_id__in=order_ids, sender_id=F("order__customer_id"))
        .annotate(last_reply=Coalesce(Subquery(last_reply), 0))
        .filter(id__gt=F("last_reply"))
        .values("order_id")
        .annotate(count=Count("id"))
        .values_list("order_id", "count")
    )
    return dict(unanswered)


@dataclass(frozen=True)
class ChatSummary:
    """An order's chat as the board shows it: the customer's messages awaiting a reply, and the latest message."""

    unread: int
    # The id of the latest message: the board counts a live chat frame only if its id is above it, so a
    # message this read already counted is never counted twice (static/js/board-rows.js).
    last_id: int
    last_text: str
    last_sender: str


def chat_summaries(order_ids: Iterable[int]) -> dict[int, ChatSummary]:
    """Per order with a chat, its ChatSummary, in one statement (one snapshot: the count and `last_id` agree;
    correlated subqueries, so SQLite's embedded mode runs it too)."""
    messages = ChatMessage.objects.filter(order_id=OuterRef("pk"))
    latest = messages.order_by("-id")
    last_reply = messages.exclude(sender_id=OuterRef("customer_id")).order_by("-id").values("id")[:1]
    unread = (
        messages.filter(sender_id=OuterRef("customer_id"), id__gt=OuterRef("last_reply"))
        .order_by().values("order_id").annotate(count=Count("id")).values("count")
    )
    rows = (
        Order.objects.filter(pk__in=list(order_ids))
        .annotate(last_reply=Coalesce(Subquery(last_reply), 0))
        .annotate(last_id=Subquery(latest.values("id")[:1]), last_text=Subquery(latest.values("text")[:1]),
                  last_sender=Subquery(latest.values("sender__username")[:1]),
                  unread=Coalesce(Subquery(unread), 0))
        .filter(last_id__isnull=False)
        .values_list("pk", "last_id", "last_text", "last_sender", "unread")
    )
    return {order_id: ChatSummary(unread=count, last_id=last_id, last_text=text, last_sender=sender)
            for order_id, last_id, text, sender, count in rows}
