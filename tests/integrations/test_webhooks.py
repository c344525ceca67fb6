"""Webhook deliveries from the outbox, attempts, backoff, giving up, disabling failing endpoints, resend."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from integrations import tasks, webhooks
from integrations.models import WebhookDelivery, WebhookEndpoint
from orders import services
from orders.models import Order
from tests.helpers import make_order
from tests.integrations.conftest import Receiver

pytestmark = pytest.mark.django_db


def endpoint(url: str, events: list[str] | None = None) -> WebhookEndpoint:
    return webhooks.create_endpoint(url=url, events=events or ["order.created", "order.status"])


def test_each_event_records_one_delivery_per_subscribed_endpoint(alice: Any, private_targets: None) -> None:
    both = endpoint("http://127.0.0.1:1/both")
    status_only = endpoint("http://127.0.0.1:1/status", ["order.status"])
    off = endpoint("http://127.0.0.1:1/off")
    WebhookEndpoint.objects.filter(pk=off.pk).update(enabled=False)
    order = make_order(alice)
    services.change_status(order=order, to="confirmed", actor=None)
    deliveries = WebhookDelivery.objects.order_by("event__seq", "endpoint_id")
    assert [(d.endpoint_id, d.event_type, d.event.seq) for d in deliveries] == [
        (both.pk, "order.created", 1), (both.pk, "order.status", 2), (status_only.pk, "order.status", 2)]
    assert deliveries[1].payload == {
        "type": "order.status",
        "timestamp": deliveries[1].event.created_at.isoformat(),
        "data": {"order_id": order.pk, "number": order.number, "external_ref": None, "seq": 2,
                 "status": "confirmed", "previous": "pending", "at": deliveries[1].event.created_at.isoformat()},
    }


def test_a_rolled_back_change_leaves_no_delivery(alice_order: Order, private_targets: None) -> None:
    endpoint("http://127.0.0.1:1/hooks")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.change_status(order=alice_order, to="confirmed", actor=None)
        raise RuntimeError("rolled back")
    assert not WebhookDelivery.objects.filter(event__seq=2).exists()


def test_a_delivery_is_signed_and_marked_delivered(alice: Any, receiver: Receiver, private_targets: None) -> None:
    hook = endpoint(receiver.url, ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    attempt = webhooks.attempt(delivery.pk)
    assert attempt is not None and attempt.response_status == 200
    sent = receiver.received[0]
    assert Webhook(hook.secret).verify(sent.body, sent.headers)["data"]["seq"] == 1
    assert sent.headers["webhook-id"] == delivery.webhook_id
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("delivered", 1, None)
    assert webhooks.attempt(delivery.pk) is None  # delivered: a second run sends nothing
    assert len(receiver.received) == 1


def test_a_failed_attempt_is_logged_and_retried_later_under_the_same_id(
        alice: Any, receiver: Receiver, private_targets: None, settings: Any) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [60, 600]
    receiver.answers = [(500, {}), (200, {})]
    hook = endpoint(receiver.url, ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    first = webhooks.attempt(delivery.pk)
    assert first is not None and (first.response_status, first.error) == (500, "HTTP 500")
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.next_attempt_at is not None
    assert timedelta(seconds=55) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=60)
    hook.refresh_from_db()
    assert hook.failing_since == first.at
    assert webhooks.attempt(delivery.pk) is None  # not due yet
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhooks.take_due_deliveries() == [delivery.pk]
    assert webhooks.take_due_deliveries() == []  # handed over once, not on every sweep
    second = webhooks.attempt(delivery.pk)
    assert second is not None and second.response_status == 200
    assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    hook.refresh_from_db()
    assert hook.failing_since is None
    assert [a.response_status for a in delivery.attempt_log.order_by("at")] == [500, 200]


def test_a_connection_error_is_logged_and_retries_run_out(alice: Any, private_targets: None, settings: Any) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [0]
    endpoint("http://127.0.0.1:1/nobody-listens", ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    first = webhooks.attempt(delivery.pk)
    assert first is not None and first.response_status is None and "ConnectionRefused" in first.error
    webhooks.attempt(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)


def test_a_private_target_is_refused_at_delivery_time_when_not_allowed(
        alice: Any, receiver: Receiver, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    endpoint(receiver.url.replace("http://", "https://"), ["order.created"])
    make_order(alice)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    attempt = webhooks.attempt(WebhookDelivery.objects.get().pk)
    assert attempt is not None and attempt.error.startswith("Refused: ")
    assert receiver.received == []


def test_a_claimed_delivery_is_not_sent_twice_until_its_lease_lapses(alice: Any, private_targets: None) -> None:
    endpoint("http://127.0.0.1:1/hooks", ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(enqueued_at=None)  # its on-commit task was lost
    assert webhooks.claim(delivery.pk) is not None
    assert webhooks.claim(delivery.pk) is None  # a second worker, or the sweep, while the first one sends
    assert webhooks.take_due_deliveries() == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now())  # the worker died
    assert webhooks.take_due_deliveries() == [delivery.pk]
    assert webhooks.claim(delivery.pk) is not None


def test_410_gone_disables_the_endpoint_and_tells_staff(
        alice: Any, staff: Any, receiver: Receiver, private_targets: None,
        django_capture_on_commit_callbacks: Any) -> None:
    receiver.answers = [(410, {})]
    hook = endpoint(receiver.url, ["order.created"])
    make_order(alice)
    with django_capture_on_commit_callbacks(execute=True):  # the e-mail goes when the disabling commits
        webhooks.attempt(WebhookDelivery.objects.get().pk)
    hook.refresh_from_db()
    assert not hook.enabled and "410" in hook.disabled_reason
    assert [m.to for m in mail.outbox] == [[staff.email]]


def test_an_endpoint_failing_for_days_is_disabled_and_staff_are_emailed(
        staff: Any, private_targets: None, settings: Any, django_capture_on_commit_callbacks: Any,
        caplog: Any) -> None:
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 3
    failing = endpoint("http://127.0.0.1:1/failing")
    recent = endpoint("http://127.0.0.1:1/recent")
    WebhookEndpoint.objects.filter(pk=failing.pk).update(failing_since=timezone.now() - timedelta(days=3, hours=1))
    WebhookEndpoint.objects.filter(pk=recent.pk).update(failing_since=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.disable_failing_endpoints() == [failing.pk]
    failing.refresh_from_db()
    assert not failing.enabled and failing.disabled_at is not None
    assert WebhookEndpoint.objects.get(pk=recent.pk).enabled
    assert [m.to for m in mail.outbox] == [[staff.email]]
    assert "http://127.0.0.1:1/failing" in mail.outbox[0].subject
    assert "disabled" in caplog.text
    assert webhooks.disable_failing_endpoints() == []  # once


def test_attempts_that_never_end_still_spend_the_retry_schedule(
        alice: Any, private_targets: None, settings: Any) -> None:
    settings.WEBHOOK_RETRY_DELAYS = [0, 0]
    endpoint("http://127.0.0.1:1/hangs", ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    for expected in (1, 2, 3):
        assert webhooks.claim(delivery.pk) is not None  # a worker takes it and is killed mid-attempt
        assert WebhookDelivery.objects.get(pk=delivery.pk).attempts == expected
        WebhookDelivery.objects.filter(pk=delivery.pk).update(leased_until=timezone.now())
    assert webhooks.claim(delivery.pk) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)


def test_disabled_endpoints_get_no_new_deliveries_and_send_none_pending(alice: Any, private_targets: None) -> None:
    hook = endpoint("http://127.0.0.1:1/hooks")
    make_order(alice)
    WebhookEndpoint.objects.filter(pk=hook.pk).update(enabled=False)
    make_order(alice)
    assert WebhookDelivery.objects.count() == 1
    WebhookDelivery.objects.update(enqueued_at=None)
    assert webhooks.take_due_deliveries() == []
    assert webhooks.claim(WebhookDelivery.objects.get().pk) is None


def test_resend_sends_a_delivered_event_again_under_its_id(
        alice: Any, receiver: Receiver, private_targets: None) -> None:
    endpoint(receiver.url, ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    webhooks.attempt(delivery.pk)
    assert webhooks.resend(WebhookDelivery.objects.all()) == [delivery.pk]
    webhooks.attempt(delivery.pk)
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.webhook_id] * 2
    assert json.loads(receiver.received[0].body) == json.loads(receiver.received[1].body)


def test_the_sweep_enqueues_due_deliveries(alice: Any, receiver: Receiver, private_targets: None,
                                            eager_celery: None, django_capture_on_commit_callbacks: Any) -> None:
    endpoint(receiver.url, ["order.created"])
    with django_capture_on_commit_callbacks(execute=True):
        Order.objects.create(customer=alice)
        # Not committed yet: nothing sent; the eager on-commit task sends it once this block commits.
        assert receiver.received == []
    assert len(receiver.received) == 1
    WebhookDelivery.objects.update(status="pending", next_attempt_at=timezone.now(), enqueued_at=None)
    assert tasks.send_due_webhooks() == 1
    assert len(receiver.received) == 2


def test_the_claim_is_one_update_whose_conditions_postgres_rechecks(alice: Any, private_targets: None) -> None:
    # Under READ COMMITTED, a blocked UPDATE re-checks its WHERE against the row the other claim just wrote, but
    # not conditions hidden in a subquery over the same table (what Django makes of a filter with a join): two
    # workers could then both claim one delivery.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    endpoint("http://127.0.0.1:1/hooks", ["order.created"])
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    with CaptureQueriesContext(connection) as queries:
        assert webhooks.claim(delivery.pk) is not None
    update = next(q["sql"] for q in queries if q["sql"].startswith("UPDATE"))
    assert '"integrations_webhookdelivery"."leased_until"' in update.split("WHERE", 1)[1]
    assert "JOIN" not in update
