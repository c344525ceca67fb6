"""Webhooks out: endpoints, deliveries fed from the event outbox, attempts with backoff, and disabling endpoints
that keep failing. Tasks (integrations/tasks.py), the admin and the API call these functions."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations import sending, targets
from integrations.models import (
    EVENT_TYPES,
    ORDER_CREATED,
    ORDER_STATUS,
    ORDER_UPDATED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from orders.models import OrderEvent

logger = logging.getLogger(__name__)

MAX_ENDPOINT_URL = 2000


class InvalidEndpoint(Exception):
    """An endpoint that cannot be registered: field name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def event_type(event: OrderEvent) -> str:
    if event.kind == OrderEvent.Kind.UPDATED:
        return ORDER_UPDATED
    return ORDER_STATUS if event.from_status else ORDER_CREATED


def payload(event: OrderEvent) -> dict[str, Any]:
    """The webhook body of an event (docs/integration.md)."""
    order = event.order
    at = event.created_at.isoformat()
    if event.kind == OrderEvent.Kind.UPDATED:
        # As the `order.updated` frame: the changed fields beside the order's identity and seq.
        return {
            "type": ORDER_UPDATED,
            "timestamp": at,
            "data": {"order_id": order.pk, "number": order.number, "external_ref": order.external_ref or None,
                     "seq": event.seq, "at": at, **event.changes},
        }
    return {
        "type": event_type(event),
        "timestamp": at,
        "data": {
            "order_id": order.pk,
            "number": order.number,
            # Order.external_ref comes with order intake; an order without one sends null.
            "external_ref": getattr(order, "external_ref", None) or None,
            "seq": event.seq,
            "status": event.to_status,
            "previous": event.from_status or None,
            "at": at,
        },
    }


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()


# --- Endpoints ---------------------------------------------------------------------------------------------

def clean_endpoint(url: Any, events: Any) -> tuple[str, list[str]]:
    errors: dict[str, str] = {}
    if not isinstance(url, str) or not url.strip():
        errors["url"] = "A URL is required."
    elif len(url) > MAX_ENDPOINT_URL:
        errors["url"] = f"At most {MAX_ENDPOINT_URL} characters."
    else:
        url = url.strip()
        try:
            targets.check_url(url)
        except targets.UnsafeTarget as exc:
            errors["url"] = f"Not allowed: {exc}."
    if not isinstance(events, list) or not events or not all(isinstance(name, str) for name in events):
        errors["events"] = f"A non-empty list of event types: {', '.join(EVENT_TYPES)}."
    else:
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            errors["events"] = f"Unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}."
    if errors:
        raise InvalidEndpoint(errors)
    return url, [name for name in EVENT_TYPES if name in events]


def create_endpoint(*, url: Any, events: Any, created_by: User | None = None,
                    description: str = "") -> WebhookEndpoint:
    """Register an endpoint (InvalidEndpoint with field errors if not acceptable). Its addresses are vetted at
    every delivery, not only here: what a name resolves to changes."""
    url, events = clean_endpoint(url, events)
    return WebhookEndpoint.objects.create(url=url, events=events, created_by=created_by, description=description)


def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- Deliveries from the outbox ----------------------------------------------------------------------------

def record_deliveries(event: OrderEvent) -> list[WebhookDelivery]:
    """In the transaction that records `event`: one delivery per enabled endpoint subscribed to its type, so an
    event is never committed without its deliveries."""
    kind = event_type(event)
    endpoints = [endpoint for endpoint in WebhookEndpoint.objects.filter(enabled=True) if kind in endpoint.events]
    if not endpoints:
        return []
    body = payload(event)
    now = timezone.now()
    return WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=endpoint, event=event, event_type=kind, payload=body, next_attempt_at=now,
                         enqueued_at=now)  # enqueued when this transaction commits (integrations/receivers.py)
         for endpoint in endpoints]
    )


def retry_delays() -> list[int]:
    return settings.WEBHOOK_RETRY_DELAYS


def lease() -> timedelta:
    # Longer than any attempt can take: the connect and the answer each have WEBHOOK_TIMEOUT_SECONDS.
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def unleased(now: datetime) -> Q:
    return Q(leased_until=None) | Q(leased_until__lte=now)


def claim(delivery_id: int) -> WebhookDelivery | None:
    """Take a due delivery for one attempt: a conditional update, so two workers (the on-commit task and the
    sweep, a redelivered message) never send it at once. The claim is a lease: if the worker dies mid-attempt,
    it lapses and the sweep sends the delivery again, under the same webhook-id.

    The attempt is counted here, before it is made: one that never ends (a killed worker, a hung one) still
    spends the retry schedule, so an endpoint that hangs its callers cannot be retried forever."""
    now = timezone.now()
    # No join in this UPDATE (Django would move every condition into a subquery, which PostgreSQL does not
    # re-check against a row another claim just changed): the endpoint is checked by a subquery of its own.
    claimed = WebhookDelivery.objects.filter(
        unleased(now), pk=delivery_id, status=WebhookDelivery.State.PENDING, next_attempt_at__lte=now,
        endpoint_id__in=WebhookEndpoint.objects.filter(enabled=True).values("pk"),
    ).update(leased_until=now + lease(), attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if delivery.attempts > len(retry_delays()) + 1:
        # Earlier attempts were interrupted until the schedule ran out.
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            status=WebhookDelivery.State.FAILED, next_attempt_at=None, leased_until=None, enqueued_at=None)
        logger.warning("Webhook %s: attempts interrupted %d times; giving up", delivery.webhook_id,
                       delivery.attempts - 1)
        return None
    return delivery


def attempt(delivery_id: int) -> WebhookAttempt | None:
    """One attempt at a delivery, if it is due: sign, POST, log the attempt, then mark it delivered or schedule
    the next try (the retry schedule, WEBHOOK_RETRY_DELAYS) or give up when that is spent."""
    delivery = claim(delivery_id)
    if delivery is None:
        return None
    endpoint = delivery.endpoint
    body = body_of(delivery)
    started = timezone.now()
    status: int | None = None
    error = ""
    duration_ms = 0
    try:
        target = targets.vet(endpoint.url)
        response = sending.post(target, body, sending.signed_headers(endpoint.secret, delivery.webhook_id, body),
                                timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        status, duration_ms = response.status, response.duration_ms
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except targets.UnsafeTarget as exc:
        error = f"Refused: {exc}"
    except (OSError, http.client.HTTPException) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((timezone.now() - started).total_seconds() * 1000)
    logged = WebhookAttempt.objects.create(delivery=delivery, at=started, response_status=status,
                                           duration_ms=duration_ms, error=error[:500])
    finish(delivery, logged)
    return logged


def finish(delivery: WebhookDelivery, logged: WebhookAttempt) -> None:
    now = timezone.now()
    attempts = delivery.attempts  # this one included (claim)
    endpoint = delivery.endpoint
    done = {"leased_until": None, "enqueued_at": None}
    # Only while this attempt's lease is the delivery's: one that outlived its lease leaves the row to the newer
    # attempt that took it over.
    ours = WebhookDelivery.objects.filter(pk=delivery.pk, leased_until=delivery.leased_until)
    if logged.succeeded:
        ours.update(status=WebhookDelivery.State.DELIVERED, delivered_at=now, next_attempt_at=None, **done)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).exclude(failing_since=None).update(failing_since=None)
        return
    delays = retry_delays()
    if attempts > len(delays):
        ours.update(status=WebhookDelivery.State.FAILED, next_attempt_at=None, **done)
        logger.warning("Webhook %s to endpoint %s failed %d times; giving up", delivery.webhook_id, endpoint.pk,
                       attempts)
    else:
        ours.update(next_attempt_at=now + timedelta(seconds=delays[attempts - 1]), **done)
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=logged.at)
    if logged.response_status == 410:
        # The spec's "Gone": the receiver asks not to be called again.
        disable_endpoint(endpoint=endpoint, reason="The endpoint answered 410 Gone.")


def take_due_deliveries(*, limit: int = 500) -> list[int]:
    """The sweep's hand-off: deliveries due now (retries, new ones whose on-commit task was lost, lapsed claims of
    killed workers) and not handed to the broker within a lease, marked as handed over now."""
    now = timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            unleased(now), Q(enqueued_at=None) | Q(enqueued_at__lte=now - lease()),
            status=WebhookDelivery.State.PENDING, next_attempt_at__lte=now, endpoint__enabled=True,
        ).order_by("next_attempt_at").values_list("pk", flat=True)[:limit]
    )
    WebhookDelivery.objects.filter(pk__in=due).update(enqueued_at=now)
    return due


def resend(deliveries: Iterable[WebhookDelivery]) -> list[int]:
    """Send deliveries again now (the admin's action), under their own webhook-id, with a fresh retry schedule
    (their attempt log is kept); returns their ids."""
    ids = [delivery.pk for delivery in deliveries]
    now = timezone.now()
    WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDelivery.State.PENDING, attempts=0, next_attempt_at=now, enqueued_at=now, leased_until=None,
        delivered_at=None)
    return ids


# --- Endpoints that keep failing -----------------------------------------------------------------------------

def disable_endpoint(*, endpoint: WebhookEndpoint, reason: str) -> bool:
    """Disable an endpoint and tell staff (a log line and an e-mail); False if it was already disabled."""
    now = timezone.now()
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_at=now, disabled_reason=reason[:300]):
        return False
    logger.warning("Webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)
    tell_staff(subject=f"Webhook endpoint disabled: {endpoint.url}",
               text=f"The webhook endpoint {endpoint.url} (id {endpoint.pk}) was disabled: {reason}\n\n"
                    "Its deliveries are kept. Fix the receiver, then enable it again in the admin and resend "
                    "what it missed.\n")
    return True


def disable_failing_endpoints() -> list[int]:
    """Disable endpoints that have failed, without one success, for WEBHOOK_DISABLE_AFTER_DAYS."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
    failing = WebhookEndpoint.objects.filter(enabled=True, failing_since__lte=cutoff)
    days = settings.WEBHOOK_DISABLE_AFTER_DAYS
    return [endpoint.pk for endpoint in failing
            if disable_endpoint(endpoint=endpoint, reason=f"Every delivery failed for {days} days.")]


def staff_emails() -> Sequence[str]:
    users = get_user_model().objects.filter(Q(is_staff=True) | Q(is_superuser=True), is_active=True)
    return sorted({user.email for user in users if user.email})


def tell_staff(*, subject: str, text: str) -> None:
    recipients = staff_emails()
    if not recipients:
        return
    # After the disabling commits; a mail server that is down must not undo it.
    def send() -> None:
        try:
            send_mail(subject, text, None, list(recipients))
        except OSError as exc:
            logger.warning("Staff not e-mailed about %r: %s", subject, exc)

    transaction.on_commit(send)
