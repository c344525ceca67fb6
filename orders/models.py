"""Orders, their items, their status-event log (the outbox) and their chat messages."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from orders.carriers import carrier_tracking_url
from orders.signals import status_changed
from orders.states import Status

# Crockford-style alphabet: no I, L, O or U, so numbers read aloud over the phone are unambiguous.
ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_number() -> str:
    return "ORD-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


# Where an order is in its event log: only orders.services.change_status writes these, and a plain save() of an
# existing order leaves them out, so a stale copy cannot rewind them. Writing status or seq any other way is
# refused (status_changed_at alone cannot make the log and the order disagree).
STATUS_STAMP = ("status", "seq", "status_changed_at")
LOG_POSITION = ("status", "seq")
# The customer's delivery receipt: only orders.services.mark_seen writes it, and a plain save() leaves it out, so a
# stale copy (an admin form opened before the customer looked) cannot move it back.
RECEIPT = ("seen_seq", "seen_at")

# What an order promises and how it ships: only orders.services.update_order writes these (with an
# `order.updated` event on the order's seq stream), so a change always reaches the open pages.
SHIPMENT_FIELDS = ("carrier", "tracking_number", "promised_at", "eta")
# Never written by a plain save() of an existing order: a stale copy cannot rewind them.
SERVICE_WRITTEN = (*STATUS_STAMP, *SHIPMENT_FIELDS, *RECEIPT)
GUARDED = (*LOG_POSITION, *SHIPMENT_FIELDS)
# The text shipment fields' lengths (the API schema and the service check them too).
TEXT_LIMITS = {"carrier": 50, "tracking_number": 100}

UPDATE_ORDER_HINT = (
    "Change an order's carrier, tracking number, promise or ETA with orders.services.update_order(order=..., "
    "changes=..., actor=...): it records the OrderEvent that clients are pushed."
)

CHANGE_STATUS_HINT = (
    "Change an order's status with orders.services.change_status(order=..., to=..., actor=...): it checks the "
    "state machine and records the OrderEvent that clients are pushed."
)


class StatusWriteRefused(Exception):
    """A write of an order's status (or seq) that would bypass its event log."""


def refuse_status_write(fields: Iterable[str], how: str) -> None:
    fields = set(fields)
    written = sorted(fields & set(LOG_POSITION))
    if written:
        raise StatusWriteRefused(f"{how} cannot write {', '.join(written)}. {CHANGE_STATUS_HINT}")
    shipment = sorted(fields & set(SHIPMENT_FIELDS))
    if shipment:
        raise StatusWriteRefused(f"{how} cannot write {', '.join(shipment)}. {UPDATE_ORDER_HINT}")


class OrderQuerySet(models.QuerySet["Order"]):
    """Bulk writes that skip Order.save(): refused for the status stamp, so nothing changes a status unseen."""

    def update(self, **kwargs: Any) -> int:
        refuse_status_write(kwargs, "QuerySet.update()")
        kwargs.setdefault("updated_at", timezone.now())  # so `updated_since` readers see every change
        return super().update(**kwargs)

    def bulk_update(self, objs: Iterable[Order], fields: Iterable[str], batch_size: int | None = None) -> int:
        fields = list(fields)  # read twice: checked here, then written
        refuse_status_write(fields, "QuerySet.bulk_update()")
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def bulk_create(self, objs: Iterable[Order], *args: Any, **kwargs: Any) -> list[Order]:
        """Create orders with their first event each, as save() does, in one transaction."""
        if args or kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
            raise StatusWriteRefused("Order bulk_create() takes only batch_size: each new order needs its event.")
        orders = list(objs)
        now = timezone.now()
        with transaction.atomic(using=self.db):
            for order in orders:
                order.seq, order.status_changed_at = 1, now
            created = super().bulk_create(orders, **kwargs)
            events = OrderEvent.objects.bulk_create(
                [OrderEvent(order=order, seq=1, from_status="", to_status=order.status) for order in created]
            )
            for order, event in zip(created, events, strict=True):
                order.remember_status_stamp()
                status_changed.send(sender=Order, event=event)
        return created

    def write_status_stamp(self, *, status: str, seq: int, at: datetime) -> int:
        """The status write of orders.services.change_status, which holds the row lock and writes event `seq`."""
        return super().update(status=status, seq=seq, status_changed_at=at, updated_at=at)

    def write_receipt(self, *, seq: int, at: datetime) -> int:
        """The receipt write of orders.services.mark_seen. It leaves `updated_at` alone: a receipt is not a change
        of the order, so `updated_since` readers and the staff position check do not re-read it for one."""
        return super().update(seen_seq=seq, seen_at=at)

    def write_update(self, *, seq: int, at: datetime, fields: dict[str, Any]) -> int:
        """The write of orders.services.update_order (shipment fields), which holds the row lock and writes
        event `seq`."""
        return super().update(seq=seq, updated_at=at, **fields)


class Order(models.Model):
    number = models.CharField(max_length=20, unique=True, editable=False, default=new_order_number)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    # The seq of the order's latest OrderEvent; written only together with that event.
    seq = models.PositiveIntegerField(default=0, editable=False)
    shipping_address = models.TextField(blank=True)
    # The shop's own id for the order (intake); unique among orders that have one.
    external_ref = models.CharField(max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code of the prices.")
    # Shipment and promise (SHIPMENT_FIELDS): written at creation, then only by orders.services.update_order.
    # Defaults in the database too: the previous release's processes, running beside this one during an upgrade
    # (docs/operations.md), insert rows without these columns.
    carrier = models.CharField(max_length=TEXT_LIMITS["carrier"], blank=True, default="", db_default="",
                               help_text="E.g. DHL, UPS, DPD.")
    tracking_number = models.CharField(max_length=TEXT_LIMITS["tracking_number"], blank=True, default="",
                                       db_default="")
    promised_at = models.DateTimeField(null=True, blank=True, help_text="When delivery was promised to the customer.")
    eta = models.DateTimeField(null=True, blank=True, help_text="When delivery is now expected.")
    internal_note = models.TextField(blank=True, help_text="Staff only; never sent to customers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The highest seq the customer's page (or a guest's tracking page) reported shown, and when: a delivery receipt.
    seen_seq = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the at-risk check (orders/promises.py) found the order would probably miss its promise; set once, by
    # orders.services.flag_at_risk, which also moves its eta. Its customer's one notice e-mail is claimed below.
    at_risk_since = models.DateTimeField(null=True, blank=True, editable=False)
    at_risk_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "status_changed_at"]),
            # What changed since: the board's reconcile, the list's updated_since, the staff position check.
            models.Index(fields=["updated_at"], name="order_updated_at"),
            # The at-risk check reads only promised orders not flagged yet, soonest promise first.
            models.Index(fields=["promised_at"], name="order_promise_unflagged",
                         condition=models.Q(promised_at__isnull=False, at_risk_since=None)),
        ]
        constraints = [
            models.UniqueConstraint(fields=["external_ref"], condition=~models.Q(external_ref=""),
                                    name="unique_order_external_ref"),
        ]

    def __str__(self) -> str:
        return self.number or f"Order #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """A new order is written with its first event (seq 1). An existing one never writes its status stamp or
        its shipment fields here: changing them is refused (use change_status, update_order), and a stale copy
        cannot rewind them."""
        if self._state.adding:
            with transaction.atomic(using=kwargs.get("using")):
                self.seq, self.status_changed_at = 1, timezone.now()
                super().save(*args, **kwargs)
                event = OrderEvent.objects.create(order=self, seq=1, from_status="", to_status=self.status)
                self.remember_status_stamp()
                status_changed.send(sender=Order, event=event)
            return
        stored = getattr(self, "_stored_stamp", {})
        changed = [name for name, value in stored.items() if self.__dict__.get(name, value) != value]
        refuse_status_write(changed, "Order.save()")
        update_fields = kwargs.get("update_fields")
        if update_fields is None:
            kwargs["update_fields"] = [
                field.name for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in SERVICE_WRITTEN
            ]
        else:
            refuse_status_write(update_fields, "Order.save(update_fields=...)")
            kwargs["update_fields"] = {*update_fields, "updated_at"}  # auto_now moves only when it is listed
        super().save(*args, **kwargs)

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> Order:
        order = super().from_db(db, field_names, values)
        order.remember_status_stamp()
        return order

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        super().refresh_from_db(*args, **kwargs)
        self.remember_status_stamp()

    def remember_status_stamp(self) -> None:
        """Note the status, seq and shipment fields as stored, so save() can tell one changed in memory from a
        stored one."""
        self._stored_stamp = {name: self.__dict__[name] for name in GUARDED if name in self.__dict__}

    @property
    def at_risk(self) -> bool:
        """Flagged as likely to miss its promise and still on its way (a closed order is late or not, no longer
        at risk)."""
        return self.at_risk_since is not None and self.status not in (Status.DELIVERED, Status.CANCELLED)

    @property
    def later_than_promised(self) -> bool:
        """On its way with an ETA past its promise (the at-risk check's new ETA, or staff's): the order page says so."""
        return (self.status not in (Status.DELIVERED, Status.CANCELLED) and self.eta is not None
                and self.promised_at is not None and self.eta > self.promised_at)

    @property
    def total(self) -> Decimal:
        return sum((item.subtotal for item in self.items.all()), Decimal("0"))

    @property
    def carrier_tracking_url(self) -> str | None:
        """The carrier's own tracking page for the tracking number, where the carrier is known (orders.carriers)."""
        return carrier_tracking_url(self.carrier, self.tracking_number)


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def line_total(self) -> Decimal:
        return self.subtotal


class EventDict(TypedDict):
    """An OrderEvent as clients read it, typed once: the API's `events` add `id`, the `order.status` frame
    (realtime/frames.py) adds `type`, `order_id`, `number` and `event_id`."""

    seq: int
    status: str
    previous: str | None
    at: str


class OrderEvent(models.Model):
    """One change of an order, on its seq stream: a status change (`order.status`) or a change of its shipment
    fields (`order.updated`, with `changes`). Its history, and the outbox the push worker drains."""

    class Kind(models.TextChoices):
        STATUS = "status", "Status change"
        UPDATED = "updated", "Shipment or promise changed"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    # Defaults in the database too, for the previous release's inserts during an upgrade (as Order.carrier).
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STATUS, db_default=Kind.STATUS)
    # An `updated` event's changed fields as clients get them (JSON: text, ISO 8601 times or null), with
    # `carrier_tracking_url` when the carrier or the number changed. Empty for a status change.
    changes = models.JSONField(default=dict, db_default={}, blank=True)
    # A status change's before and after; an `updated` event has the order's status, unchanged, in both.
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Or the service API key that made the change (intake, a shop's system).
    api_key = models.ForeignKey("accounts.ApiKey", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Set once when the customer was offline and got this change by e-mail (claimed before sending).
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["order", "seq"], name="unique_order_event_seq")]
        indexes = [
            models.Index(
                fields=["created_at"], name="orderevent_unpublished", condition=models.Q(published_at=None)
            ),
            # The at-risk estimator's recent stays: status changes out of one status into the next, latest first.
            models.Index(fields=["from_status", "to_status", "-created_at"], name="orderevent_stays",
                         condition=models.Q(kind="status")),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.UPDATED:
            return f"{self.order_id}#{self.seq} updated {', '.join(sorted(self.changes))}"
        return f"{self.order_id}#{self.seq} {self.from_status or '∅'} → {self.to_status}"

    @property
    def is_status_change(self) -> bool:
        """A change of status after creation: what status e-mails and `order.status` webhooks are about."""
        return self.kind == self.Kind.STATUS and bool(self.from_status)

    def to_dict(self) -> EventDict:
        return {
            "seq": self.seq,
            "status": self.to_status,
            "previous": self.from_status or None,
            "at": self.created_at.isoformat(),
        }


class ChatMessage(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="chat_messages")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.sender_id} on {self.order_id}: {self.text[:40]}"


class IdempotencyKey(models.Model):
    """An `Idempotency-Key` of a POST and the answer it got (orders.idempotency): a retry gets that answer again.

    Kept IDEMPOTENCY_KEY_TTL_HOURS (at least 24); older ones are pruned when new ones are written."""

    # Whose key: "key:<api key id>" or "user:<user id>" (two callers' keys never collide).
    owner = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    # sha256 of the method, path and canonical JSON body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    # The answer's bytes as sent (text, not jsonb, which would reorder its keys).
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="unique_idempotency_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotencykey_created")]

    def __str__(self) -> str:
        return f"{self.owner} {self.key}"
