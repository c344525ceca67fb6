"""Reads: how long orders usually stay in each status, when an open order will probably arrive, and which orders
will probably miss their promised delivery (`promised_at`). Every function takes `now`, so tests drive the clock.

The arithmetic (percentile, expected delivery, at risk) is pure; `observed_dwells` and `usual_dwells` read the
event log. An order's dwell in a status is the time from the event that moved it there to the event that moved it
on along the delivery path; a cancellation is not the end of a normal stay and is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import DateTimeField, ExpressionWrapper, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from orders.models import Order, OrderEvent
from orders.states import Status

# The statuses a delivered order went through, in order; an order in one of them is still on its way.
DELIVERY_PATH: tuple[str, ...] = (
    Status.PENDING, Status.CONFIRMED, Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY, Status.DELIVERED,
)
EN_ROUTE: tuple[str, ...] = DELIVERY_PATH[:-1]


def percentile(durations: Sequence[timedelta], pct: int) -> timedelta:
    """The nearest-rank `pct`th percentile (1–100) of non-empty `durations`: always one of the observed values,
    so one outlier cannot drag it between two real stays."""
    if not durations:
        raise ValueError("percentile of no durations")
    if not 1 <= pct <= 100:
        raise ValueError(f"percentile must be 1–100, got {pct}")
    ordered = sorted(durations)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Dwell:
    """The usual stay in one status, and how it was found."""

    usual: timedelta
    samples: int  # observed stays it was computed from
    observed: bool  # False: too few samples, `usual` is the setting's default


def usual_dwell(durations: Sequence[timedelta], *, default: timedelta, pct: int, min_samples: int) -> Dwell:
    """The `pct`th percentile of the observed stays, or `default` while there are fewer than `min_samples`."""
    if len(durations) < max(1, min_samples):
        return Dwell(usual=default, samples=len(durations), observed=False)
    return Dwell(usual=percentile(durations, pct), samples=len(durations), observed=True)


def expected_delivery(
    *, status: str, entered_at: datetime, now: datetime, dwells: Mapping[str, timedelta]
) -> datetime | None:
    """When an order in `status` since `entered_at` will probably be delivered: what is left of its usual stay in
    this status (nothing once it has overstayed, which then moves the estimate on with the clock), plus the usual
    stay in each status still ahead. None for an order that is not on its way (delivered, cancelled)."""
    if status not in EN_ROUTE:
        return None
    position = EN_ROUTE.index(status)
    left_here = max(dwells[status] - (now - entered_at), timedelta(0))
    ahead = sum((dwells[later] for later in EN_ROUTE[position + 1:]), timedelta(0))
    return now + left_here + ahead


def whole_minute_after(moment: datetime) -> datetime:
    """`moment` rounded up to the minute: an ETA customers read is a promise of its own, not a measurement."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(minutes=1)


def misses_promise(*, expected: datetime | None, promised_at: datetime | None, margin: timedelta) -> bool:
    """Whether the expected delivery is later than the promise by more than the tolerated margin."""
    return expected is not None and promised_at is not None and expected > promised_at + margin


def _usual(dwells: Mapping[str, Dwell | timedelta]) -> dict[str, timedelta]:
    return {status: dwell.usual if isinstance(dwell, Dwell) else dwell for status, dwell in dwells.items()}


@dataclass(frozen=True)
class AtRisk:
    order: Order
    expected: datetime  # its expected delivery, more than the margin past `order.promised_at`


def orders_missing_promise(
    *, now: datetime, dwells: Mapping[str, Dwell | timedelta], margin: timedelta, limit: int = 500
) -> list[AtRisk]:
    """Open orders with a promise, not flagged yet, whose expected delivery is more than `margin` past it; the
    soonest promises first, at most `limit` (the next check takes the rest).

    The database does the sifting with expected_delivery's own arithmetic, per status: an order is late when
    `max(now, entered + here) + ahead > promised_at + margin`, i.e. when either term alone is; each row found is
    then checked again by expected_delivery, which stays the one definition of the estimate."""
    usual = _usual(dwells)
    entered = Coalesce("status_changed_at", Value(now), output_field=DateTimeField())
    late = Q()
    for position, status in enumerate(EN_ROUTE):
        ahead = sum((usual[later] for later in EN_ROUTE[position + 1:]), timedelta(0))
        overdue_here = ExpressionWrapper(entered + Value(usual[status] + ahead - margin), output_field=DateTimeField())
        late |= Q(status=status) & (Q(promised_at__lt=now + ahead - margin) | Q(promised_at__lt=overdue_here))
    candidates = (
        Order.objects.select_related("customer")
        .filter(late, promised_at__isnull=False, at_risk_since=None)
        .order_by("promised_at", "pk")[:limit]
    )
    found = []
    for order in candidates:
        expected = expected_delivery(status=order.status, entered_at=order.status_changed_at or now, now=now,
                                     dwells=usual)
        if expected is not None and misses_promise(expected=expected, promised_at=order.promised_at, margin=margin):
            found.append(AtRisk(order=order, expected=expected))
    return found


def flagged_unnotified(*, flagged_since: datetime, flagged_before: datetime) -> list[Order]:
    """Open orders flagged at risk in [flagged_since, flagged_before) whose customer (with an address) has had no
    notice e-mail yet."""
    orders = Order.objects.filter(
        at_risk_since__gte=flagged_since, at_risk_since__lt=flagged_before, at_risk_notified_at=None,
        status__in=EN_ROUTE,
    ).exclude(customer__email="")
    return list(orders.order_by("at_risk_since")[:500])


def observed_dwells(*, since: datetime, now: datetime, limit: int) -> dict[str, list[timedelta]]:
    """Per en-route status, the stays that ended in [since, now) with a move along the delivery path: at most the
    `limit` latest each, so the read stays bounded however busy the shop is.

    A stay begins at the order's status event into the status (the state machine never re-enters one) and ends at
    its status event out; `updated` events in between (shipment, ETA) do not end it."""
    entered = Subquery(
        OrderEvent.objects.filter(order_id=OuterRef("order_id"), kind=OrderEvent.Kind.STATUS,
                                  to_status=OuterRef("from_status"), seq__lt=OuterRef("seq"))
        .order_by("seq").values("created_at")[:1]
    )
    stays: dict[str, list[timedelta]] = {}
    for position, status in enumerate(EN_ROUTE):
        left = (
            OrderEvent.objects.filter(kind=OrderEvent.Kind.STATUS, from_status=status,
                                      to_status=DELIVERY_PATH[position + 1],
                                      created_at__gte=since, created_at__lt=now)
            .annotate(entered_at=entered)
            .exclude(entered_at=None)
            .order_by("-created_at")
            .values_list("entered_at", "created_at")[:limit]
        )
        stays[status] = [left_at - entered_at for entered_at, left_at in left]
    return stays


def default_dwells() -> dict[str, timedelta]:
    return {status: timedelta(minutes=settings.AT_RISK_DEFAULT_DWELL_MINUTES[status]) for status in EN_ROUTE}


def usual_dwells(*, now: datetime) -> dict[str, Dwell]:
    """Each en-route status's usual stay over the last AT_RISK_HISTORY_DAYS (the settings' defaults where fewer
    than AT_RISK_MIN_SAMPLES stays were seen)."""
    observed = observed_dwells(since=now - timedelta(days=settings.AT_RISK_HISTORY_DAYS), now=now,
                               limit=settings.AT_RISK_SAMPLE_LIMIT)
    defaults = default_dwells()
    return {
        status: usual_dwell(observed[status], default=defaults[status], pct=settings.AT_RISK_DWELL_PERCENTILE,
                            min_samples=settings.AT_RISK_MIN_SAMPLES)
        for status in EN_ROUTE
    }
