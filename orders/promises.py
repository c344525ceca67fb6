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
from django.db.models import OuterRef, Subquery

from orders.models import OrderEvent
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


def misses_promise(*, expected: datetime | None, promised_at: datetime | None, margin: timedelta) -> bool:
    """Whether the expected delivery is later than the promise by more than the tolerated margin."""
    return expected is not None and promised_at is not None and expected > promised_at + margin


def observed_dwells(*, since: datetime, now: datetime, limit: int) -> dict[str, list[timedelta]]:
    """Per en-route status, the stays that ended in [since, now) with a move along the delivery path: at most the
    `limit` latest each, so the read stays bounded however busy the shop is.

    A stay begins at the order's first event into the status: the state machine never re-enters one, and other
    events on the same seq stream (shipment, ETA changes) that record the status unchanged come after it."""
    entered = Subquery(
        OrderEvent.objects.filter(order_id=OuterRef("order_id"), to_status=OuterRef("from_status"),
                                  seq__lt=OuterRef("seq"))
        .order_by("seq").values("created_at")[:1]
    )
    stays: dict[str, list[timedelta]] = {}
    for position, status in enumerate(EN_ROUTE):
        left = (
            OrderEvent.objects.filter(from_status=status, to_status=DELIVERY_PATH[position + 1],
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
