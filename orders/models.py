"""Orders, their items, their status-event log (the outbox) and their chat messages."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, transaction

from orders.states import Status

# Crockford-style alphabet: no I, L, O or U, so numbers read aloud over the phone are unambiguous.
ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_number() -> str:
    return "ORD-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


class Order(models.Model):
    number = models.CharField(max_length=20, unique=True, editable=False, default=new_order_number)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    # The seq of the order's latest OrderEvent; written only together with that event.
    seq = models.PositiveIntegerField(default=0, editable=False)
    shipping_address = models.TextField(blank=True)
    internal_note = models.TextField(blank=True, help_text="Staff only; never sent to customers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Who is making the next save(); recorded as the actor of the status event it causes. Not a field.
    changed_by: Any = None

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "status_changed_at"])]

    def __str__(self) -> str:
        return self.number or f"Order #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The status-change receivers (orders.signals) must run in the same transaction as the write,
        # so a plain save() from the admin or a shell records its event atomically.
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "status" in update_fields:
            # A status change also writes the seq and timestamp that orders.services stamps on it.
            kwargs["update_fields"] = {*update_fields, "seq", "status_changed_at", "updated_at"}
        with transaction.atomic(using=kwargs.get("using")):
            super().save(*args, **kwargs)

    @property
    def total(self) -> Decimal:
        return sum((item.subtotal for item in self.items.all()), Decimal("0"))


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


class OrderEvent(models.Model):
    """One status change of an order: its history, and the outbox the push worker drains."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id}#{self.seq} {self.from_status or '∅'} → {self.to_status}"


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
