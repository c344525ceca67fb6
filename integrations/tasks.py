"""Celery tasks of webhooks out: one attempt at a delivery (queue `webhooks`), and the sweep that sends what is due."""

from __future__ import annotations

import logging

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerUnavailable

from integrations import webhooks

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=60, time_limit=75)
def deliver_webhook(delivery_id: int) -> None:
    """One attempt at one delivery if it is due; retries are scheduled in the database, not in the broker."""
    webhooks.attempt(delivery_id)


def enqueue_delivery(delivery_id: int) -> None:
    try:
        deliver_webhook.delay(delivery_id)
    except BrokerUnavailable:
        logger.warning("Broker unavailable; webhook delivery %s waits for the next sweep", delivery_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def send_due_webhooks() -> int:
    """The webhook outbox sweep (beat): enqueue every due delivery, and disable endpoints failing for days."""
    due = webhooks.take_due_deliveries()
    for delivery_id in due:
        enqueue_delivery(delivery_id)
    webhooks.disable_failing_endpoints()
    return len(due)
