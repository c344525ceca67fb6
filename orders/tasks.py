"""Celery tasks: deliver status events (the outbox), e-mail offline customers and those who did not see a change in
time, alert staff about stuck orders, flag orders at risk of missing their promise and send their customers the
notice."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import partial
from smtplib import SMTPException
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from orders import selectors, services
from orders.delivery import deliver, email_unless_seen
from orders.models import Order, OrderEvent
from orders.signals import order_at_risk, orders_stuck, status_changed

logger = logging.getLogger(__name__)

# Transient failures worth retrying; anything else is a bug and is left to the outbox sweep.
RETRYABLE = (RedisError, ConnectionError, OSError, TimeoutError)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    # A push hung on an unreachable Redis gives its pool slot back; the event stays in the outbox for the sweep.
    soft_time_limit=30,
    time_limit=45,
)
def send_order_update(event_id: int) -> None:
    """Push one OrderEvent to its customer, its order's watchers and staff. Safe to run twice."""
    event = OrderEvent.objects.select_related("order").filter(pk=event_id).first()
    if event is None:
        logger.warning("send_order_update: event %s does not exist", event_id)
        return
    deliver(event)


@receiver(status_changed, dispatch_uid="orders.tasks.push_on_commit")
def push_on_commit(sender: Any, event: OrderEvent, **kwargs: Any) -> None:
    """Every recorded event is pushed once its transaction commits; nothing is pushed for a rollback."""
    transaction.on_commit(partial(enqueue_push, event.pk))


# Until when (time.monotonic()) this process leaves pushes to the outbox sweep after a publish failed: a frozen
# broker then costs one save its timeout, not every save of a bulk action or of every request.
_broker_down_until = 0.0


def enqueue_push(event_id: int) -> None:
    """Hand an event to the push worker; if the broker is down the outbox sweep sends it later."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.info("Broker unavailable lately; event %s waits in the outbox for the next sweep", event_id)
        return
    try:
        send_order_update.delay(event_id)
    except BrokerUnavailable:
        _broker_down_until = time.monotonic() + settings.BROKER_UNAVAILABLE_BACKOFF_SECONDS
        logger.warning("Broker unavailable; event %s stays in the outbox for the next sweep (pushes from this "
                       "process wait for the sweep for %s s)", event_id, settings.BROKER_UNAVAILABLE_BACKOFF_SECONDS)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def republish_unpublished_events() -> int:
    """Re-push events whose push never succeeded (broker or Redis down at commit, worker killed)."""
    cutoff = timezone.now() - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS)
    events = selectors.unpublished_events(created_before=cutoff)
    for event in events:
        deliver(event)
    if events:
        logger.info("Outbox sweep re-published %d event(s)", len(events))
    return len(events)


@shared_task
def alert_stuck_orders() -> int:
    """Tell staff (a frame on staff.orders and a log line) about orders stuck in one status too long."""
    cutoff = timezone.now() - timedelta(minutes=settings.STUCK_ORDER_AFTER_MINUTES)
    orders = selectors.stuck_orders(changed_before=cutoff)
    if orders:
        logger.warning(
            "%d order(s) unchanged for over %d minutes: %s",
            len(orders),
            settings.STUCK_ORDER_AFTER_MINUTES,
            ", ".join(f"{order.number} ({order.status})" for order in orders),
        )
        orders_stuck.send(sender=Order, orders=orders)
    return len(orders)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def email_order_update(event_id: int) -> None:
    """E-mail a status change to a customer who was not connected when it was pushed. Sends at most once."""
    services.email_status_change(event_id=event_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def check_orders_at_risk() -> int:
    """Flag open orders that will probably miss their promise (orders/promises.py); each customer is told once."""
    return len(services.flag_orders_at_risk(now=timezone.now()))


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def email_if_unseen(event_id: int) -> None:
    """EMAIL_FALLBACK_AFTER_SECONDS after a change reached a connected customer: e-mail it unless they have seen it
    (orders.delivery.check_seen_later). Sends at most once, whichever task sends first."""
    email_unless_seen(event_id)


@shared_task(
    acks_late=True,
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=6,
)
def email_at_risk_notice(order_id: int) -> None:
    """E-mail an at-risk order's customer the new ETA. Sends at most once."""
    services.email_at_risk_notice(order_id=order_id)


@receiver(order_at_risk, dispatch_uid="orders.tasks.notice_on_commit")
def notice_on_commit(sender: Any, order: Order, **kwargs: Any) -> None:
    transaction.on_commit(partial(enqueue_notice, order.pk))


def enqueue_notice(order_id: int) -> None:
    try:
        email_at_risk_notice.delay(order_id)
    except BrokerUnavailable:
        # The order stays flagged and unnotified: the next at-risk check offers the notice again.
        logger.warning("Broker unavailable; the at-risk notice of order %s waits for the next check", order_id)
