"""The e-mail fallback: a status change reaches a customer with no live socket by e-mail at once, and a connected
customer whose pages sent no `seen` receipt of it by the delayed check; once, and only then."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from celery.signals import before_task_publish
from channels.db import database_sync_to_async
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone, translation

from integrations.tracking import tracking_url
from orders import delivery, services, tasks
from orders.models import Order, OrderEvent
from tests.helpers import make_order
from tests.realtime.sockets import Socket
from worker.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]



def change(order: Order, to: str, actor: Any) -> OrderEvent:
    return services.change_status(order=order, to=to, actor=actor)


def test_offline_customer_gets_one_email_per_status_change(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    settings.SITE_URL = "https://shop.example.com"
    assert mail.outbox == [], "creating an order is not a change and sends nothing"
    change(alice_order, "confirmed", staff)
    change(alice_order, "preparing", staff)

    assert [message.to for message in mail.outbox] == [["alice@example.com"], ["alice@example.com"]]
    first = mail.outbox[0]
    assert first.subject == f"Order {alice_order.number}: Confirmed"
    assert f"Your order {alice_order.number} is now confirmed (it was pending)." in first.body
    assert f"https://shop.example.com/orders/{alice_order.pk}/" in first.body
    assert OrderEvent.objects.filter(order=alice_order, seq__gt=1, emailed_at=None).count() == 0


def test_a_status_email_has_a_text_and_an_html_part_with_the_tracking_link_and_help(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    settings.SITE_URL, settings.SUPPORT_EMAIL = "https://shop.example.com", "help@shop.example"
    change(alice_order, "confirmed", staff)
    (message,) = mail.outbox
    assert isinstance(message, EmailMultiAlternatives)
    link = tracking_url(alice_order)
    assert message.body.startswith("Hello alice,\n\n") and f"Track it live: {link}\n" in message.body
    assert "Questions? Write to help@shop.example." in message.body and "<" not in message.body
    ((html, kind),) = message.alternatives
    assert isinstance(html, str) and kind == "text/html" and '<html lang="en">' in html
    assert f"Your order {alice_order.number} is now <strong>confirmed</strong> (it was pending)." in html
    assert f'<a href="{link}"' in html and 'href="mailto:help@shop.example"' in html
    assert f'href="https://shop.example.com/orders/{alice_order.pk}/"' in html


def test_status_emails_are_in_the_sites_language_whatever_the_language_of_the_request(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "de"
    with translation.override("en"):  # e.g. staff changing the status from an English page
        change(alice_order, "confirmed", staff)
    (message,) = mail.outbox
    assert message.subject == f"Bestellung {alice_order.number}: Bestätigt"
    assert f"Ihre Bestellung {alice_order.number} ist jetzt: bestätigt (vorher: eingegangen)." in message.body
    assert "Live verfolgen: " in message.body
    ((html, _kind),) = message.alternatives
    assert isinstance(html, str) and '<html lang="de">' in html
    assert "<strong>bestätigt</strong>" in html and "Live verfolgen</a>" in html


def test_running_the_email_task_again_sends_nothing_more(alice: Any, staff: Any, alice_order: Order) -> None:
    event = change(alice_order, "confirmed", staff)
    tasks.email_order_update(event.pk)
    tasks.send_order_update(event.pk)  # an at-least-once re-delivery of the push
    assert len(mail.outbox) == 1


def test_a_failed_send_gives_the_claim_back_for_the_retry(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    event = OrderEvent.objects.create(order=alice_order, seq=99, from_status="pending", to_status="confirmed")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2  # nothing listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    with pytest.raises(OSError):
        services.email_status_change(event_id=event.pk)
    event.refresh_from_db()
    assert event.emailed_at is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.email_status_change(event_id=event.pk) is True
    assert len(mail.outbox) == 1


def test_customer_without_an_email_address_is_skipped(alice: Any, staff: Any, alice_order: Order) -> None:
    alice.email = ""
    alice.save()
    change(alice_order, "confirmed", staff)
    assert mail.outbox == []


async def test_customer_with_a_live_notification_stream_gets_no_email(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    stream = await Socket.open("/ws/notifications/", alice)
    await database_sync_to_async(change)(alice_order, "confirmed", staff)
    assert (await stream.next("order.status"))["status"] == "confirmed"
    assert mail.outbox == []
    await stream.close()

    await database_sync_to_async(change)(alice_order, "preparing", staff)
    assert [message.subject for message in mail.outbox] == [f"Order {alice_order.number}: Preparing"]


async def test_customer_watching_the_order_page_or_chat_gets_no_email_but_one_for_another_order(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    other_order = await database_sync_to_async(make_order)(alice)
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    await database_sync_to_async(change)(alice_order, "confirmed", staff)
    await database_sync_to_async(change)(other_order, "confirmed", staff)
    assert [message.subject for message in mail.outbox] == [f"Order {other_order.number}: Confirmed"]
    await page.close()

    chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    await database_sync_to_async(change)(alice_order, "preparing", staff)
    assert len(mail.outbox) == 1
    await chat.close()


async def test_staff_watching_the_order_does_not_stand_in_for_the_customer(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    staff_page = await Socket.open(f"/ws/orders/{alice_order.pk}/", staff)
    staff_stream = await Socket.open("/ws/notifications/", staff)
    await database_sync_to_async(change)(alice_order, "confirmed", staff)
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
    await staff_page.close()
    await staff_stream.close()


# --- The delayed check: connected is not seen ---------------------------------------------------------------

async def test_a_change_a_connected_customer_has_not_seen_is_emailed_by_the_delayed_check(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    stream = await Socket.open("/ws/notifications/", alice)
    event = await database_sync_to_async(change)(alice_order, "confirmed", staff)
    assert (await stream.next("order.status"))["seq"] == 2
    assert mail.outbox == []
    # What the check enqueued at the push does EMAIL_FALLBACK_AFTER_SECONDS later, run now.
    await database_sync_to_async(tasks.email_if_unseen)(event.pk)
    assert [message.subject for message in mail.outbox] == [f"Order {alice_order.number}: Confirmed"]
    await database_sync_to_async(tasks.email_if_unseen)(event.pk)  # handed out twice by the broker: one e-mail
    assert len(mail.outbox) == 1
    await stream.close()


async def test_a_change_the_customer_has_seen_or_seen_past_is_not_emailed_by_the_delayed_check(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    confirmed = await database_sync_to_async(change)(alice_order, "confirmed", staff)
    preparing = await database_sync_to_async(change)(alice_order, "preparing", staff)
    assert (await page.next("order.status"))["seq"] == 2 and (await page.next("order.status"))["seq"] == 3
    await page.send({"type": "seen", "order_id": alice_order.pk, "seq": 3})
    await page.ping()
    for event in (confirmed, preparing):
        await database_sync_to_async(tasks.email_if_unseen)(event.pk)
    assert mail.outbox == []
    await page.close()


async def test_staff_seeing_a_change_does_not_spare_the_customer_the_delayed_email(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    customer = await Socket.open("/ws/notifications/", alice)
    staff_page = await Socket.open(f"/ws/orders/{alice_order.pk}/", staff)
    event = await database_sync_to_async(change)(alice_order, "confirmed", staff)
    assert (await staff_page.next("order.status"))["seq"] == 2
    await staff_page.send({"type": "seen", "order_id": alice_order.pk, "seq": 2})
    await staff_page.ping()
    await database_sync_to_async(tasks.email_if_unseen)(event.pk)
    assert [message.to for message in mail.outbox] == [["alice@example.com"]]
    await customer.close()
    await staff_page.close()


@contextmanager
def published_checks(settings: Any) -> Iterator[list[dict[str, Any]]]:
    """With a real (not eager) Celery: the headers of every delayed check enqueued, sent to a queue of this test's
    own that no worker consumes and that is deleted after it."""
    settings.CELERY_QUEUE_PREFIX = f"test-receipts-{uuid.uuid4().hex[:8]}-"
    published: list[dict[str, Any]] = []

    def record(sender: Any = None, headers: Any = None, routing_key: str = "", **kwargs: Any) -> None:
        if sender == "orders.tasks.email_if_unseen":
            published.append({**headers, "queue": routing_key})

    before_task_publish.connect(record, weak=False)
    celery_app.conf.task_always_eager = False
    try:
        yield published
    finally:
        celery_app.conf.task_always_eager = True
        before_task_publish.disconnect(record)
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_QUEUE_PREFIX + "email")


async def test_a_change_pushed_to_a_connected_customer_enqueues_the_check_for_later(
    alice: Any, staff: Any, alice_order: Order, settings: Any
) -> None:
    settings.EMAIL_FALLBACK_AFTER_SECONDS = 90
    stream = await Socket.open("/ws/notifications/", alice)
    event = await database_sync_to_async(change)(alice_order, "confirmed", staff)  # pushed by the eager task
    await stream.next("order.status")
    loaded = await database_sync_to_async(OrderEvent.objects.select_related("order").get)(pk=event.pk)
    with published_checks(settings) as checks:
        assert await database_sync_to_async(delivery.offer_email_fallback)(loaded) is False  # no e-mail now
        settings.EMAIL_FALLBACK_AFTER_SECONDS = 0
        assert await database_sync_to_async(delivery.check_seen_later)(loaded) is False  # 0: no check either
    (check,) = checks
    assert check["queue"].endswith("email") and check["argsrepr"] == f"({event.pk},)"
    delay = (datetime.fromisoformat(check["eta"]) - timezone.now()).total_seconds()
    assert 80 < delay <= 90
    assert mail.outbox == []
    await stream.close()


def test_a_status_email_names_the_carrier_tracking_link_and_eta_when_known(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    services.update_order(order=alice_order, changes={"carrier": "UPS", "tracking_number": "1Z9",
                                                      "eta": datetime(2026, 12, 3, 16, tzinfo=UTC)}, actor=staff)
    assert mail.outbox == []  # the update itself sends no status e-mail
    change(alice_order, "confirmed", staff)
    (message,) = mail.outbox
    assert "Carrier: UPS, tracking number 1Z9 (https://www.ups.com/track?tracknum=1Z9)\n" in message.body
    assert "Expected delivery: 3 December 2026, 16:00 UTC\n" in message.body
    ((html, _kind),) = message.alternatives
    assert 'tracking number <a href="https://www.ups.com/track?tracknum=1Z9">1Z9</a>' in str(html)
