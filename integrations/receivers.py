"""Integrations' side of order events: webhook deliveries recorded with each event, sent once it commits."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from integrations import tasks, webhooks
from orders.models import OrderEvent
from orders.signals import status_changed


@receiver(status_changed, dispatch_uid="integrations.record_webhook_deliveries")
def record_webhook_deliveries(sender: Any, event: OrderEvent, **kwargs: Any) -> None:
    """Runs inside the event's transaction: its deliveries commit with it or not at all (the outbox)."""
    for delivery in webhooks.record_deliveries(event):
        transaction.on_commit(partial(tasks.enqueue_delivery, delivery.pk))
