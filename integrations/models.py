"""Webhook endpoints, their deliveries (one per event and endpoint) and every attempt; tracking-link keys."""

from __future__ import annotations

import base64
import secrets
import uuid

from django.conf import settings
from django.db import models

from orders.models import Order, OrderEvent

# The event types a webhook endpoint may subscribe to (docs/integration.md).
ORDER_CREATED = "order.created"
ORDER_STATUS = "order.status"
ORDER_UPDATED = "order.updated"
EVENT_TYPES = (ORDER_CREATED, ORDER_STATUS, ORDER_UPDATED)


def new_webhook_secret() -> str:
    """Standard Webhooks' secret form: `whsec_` and the base64 of the key bytes (the spec asks for 24 to 64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text=f"A subset of {', '.join(EVENT_TYPES)}.")
    secret = models.CharField(max_length=100, default=new_webhook_secret, editable=False)
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # When deliveries to this endpoint began failing without a success since; None while it works.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint. Its webhook-id is the same on every attempt, so receivers de-duplicate."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (retries exhausted)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(OrderEvent, on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40)
    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id, editable=False)
    # The body, fixed when the event is recorded: every retry sends the same bytes under the same id.
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due (None once delivered or failed).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Last handed to the broker: the sweep hands a due delivery over again only a lease later, so a backlog of
    # queued tasks is not queued twice.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # While an attempt runs: its claim, which lapses by itself if the worker dies mid-attempt.
    leased_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="one_delivery_per_event")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="webhookdelivery_due",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.event_type} → {self.endpoint_id}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    response_status = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.response_status or self.error}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300


class TrackingKey(models.Model):
    """An order's tracking-link version: rotating it (the admin) makes every earlier link of the order invalid.
    An order without a row is at version 0."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, primary_key=True, related_name="tracking_key")
    version = models.PositiveIntegerField(default=0)
    rotated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.order_id} v{self.version}"
