"""Reads: which orders a user may see (HTTP and WebSocket alike), the order list's pages, event history, outbox,
stuck orders, the board."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import ApiKey, Scope
from orders.models import ChatMessage, Order, OrderEvent
from orders.states import TRANSITIONS, Status

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


def board_orders(limit: int = 200, *, at_risk: bool = False) -> list[Order]:
    """The staff board's orders: the most recently changed first, with their customers; `at_risk`: only those."""
    orders: QuerySet[Order] = Order.objects.select_related("customer").order_by(
        F("status_changed_at").desc(nulls_last=True), "-pk")
    if at_risk:
        orders = at_risk_orders(orders)
    return list(orders[:limit])


def order_count() -> int:
    return Order.objects.count()


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
