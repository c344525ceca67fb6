"""Integrations' side of order events: webhook deliveries recorded with each event, sent once it commits; and
a rotated tracking link's open pages closed at once."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from integrations import tasks, webhooks
from integrations.models import TrackingKey
from orders.models import OrderEvent
from orders.signals import status_changed
from realtime import push
from realtime.receivers import recheck_on_commit


@receiver(status_changed, dispatch_uid="integrations.record_webhook_deliveries")
def record_webhook_deliveries(sender: Any, event: OrderEvent, **kwargs: Any) -> None:
    """Runs inside the event's transaction: its deliveries commit with it or not at all (the outbox)."""
    for delivery in webhooks.record_deliveries(event):
        transaction.on_commit(partial(tasks.enqueue_delivery, delivery.pk))


@receiver(post_save, sender=TrackingKey, dispatch_uid="integrations.recheck_rotated_tracking_sockets")
def recheck_rotated_tracking_sockets(sender: Any, instance: TrackingKey, raw: bool = False, **kwargs: Any) -> None:
    """A link rotated: the order's sockets re-check now, so pages open on the old link close (4001) at once, not
    at their next periodic re-check."""
    if not raw:
        recheck_on_commit([push.order_group(instance.order_id)])
