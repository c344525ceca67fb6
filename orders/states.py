"""The order status state machine: which status may follow which, and why not."""

from __future__ import annotations

from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    PENDING = "pending", _("Pending")
    CONFIRMED = "confirmed", _("Confirmed")
    PREPARING = "preparing", _("Preparing")
    SHIPPED = "shipped", _("Shipped")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERED = "delivered", _("Delivered")
    CANCELLED = "cancelled", _("Cancelled")


TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.CONFIRMED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.PREPARING, Status.CANCELLED}),
    Status.PREPARING: frozenset({Status.SHIPPED, Status.CANCELLED}),
    Status.SHIPPED: frozenset({Status.OUT_FOR_DELIVERY}),
    Status.OUT_FOR_DELIVERY: frozenset({Status.DELIVERED}),
    Status.DELIVERED: frozenset(),
    Status.CANCELLED: frozenset(),
}
# Closed orders change no more (delivered, cancelled): the staff board hides them unless asked.
CLOSED_STATUSES = frozenset(status for status, following in TRANSITIONS.items() if not following)


class IllegalTransition(Exception):
    """A status change the state machine forbids; `reason` is safe to show to staff and API clients."""

    def __init__(self, current: str, requested: str, reason: str) -> None:
        super().__init__(reason)
        self.current = current
        self.requested = requested
        self.reason = reason


def label(status: str) -> str:
    """The status's English name: the reasons below are the API's (and the admin's) words, in one language."""
    try:
        with translation.override("en"):
            return str(Status(status).label)
    except ValueError:
        return status


def check_transition(current: str, requested: str) -> None:
    """Raise IllegalTransition unless `requested` may follow `current`."""
    if requested not in Status.values:
        raise IllegalTransition(current, requested, f"“{requested}” is not a known status.")
    if requested == current:
        raise IllegalTransition(current, requested, f"The order is already {label(current).lower()}.")
    allowed = TRANSITIONS[current]
    if requested not in allowed:
        if not allowed:
            reason = f"A {label(current).lower()} order cannot change status any more."
        else:
            choices = " or ".join(label(s).lower() for s in sorted(allowed, key=Status.values.index))
            reason = (
                f"A {label(current).lower()} order cannot become {label(requested).lower()}; "
                f"it can become {choices}."
            )
        raise IllegalTransition(current, requested, reason)
