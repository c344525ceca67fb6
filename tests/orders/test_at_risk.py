"""The at-risk check: open orders that will probably miss their promise are flagged once, get the new ETA as an
`order.updated` event, and their customer gets one notice e-mail. The clock is the test's: `now` is passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.utils import timezone

from integrations.tracking import tracking_url
from orders import services, tasks
from orders.models import Order, OrderEvent
from tests.helpers import make_order, with_history
from worker.queues import QUEUE_OF_TASK
from worker.schedule import SCHEDULE

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
# Usual stays while history is thin: an order preparing for 1 h is expected 3 + 24 + 3 = 30 h from now.
DEFAULTS = {"pending": 60, "confirmed": 120, "preparing": 240, "shipped": 1440, "out_for_delivery": 180}


@pytest.fixture(autouse=True)
def _estimator_settings(settings: Any) -> None:
    settings.AT_RISK_DEFAULT_DWELL_MINUTES = DEFAULTS
    settings.AT_RISK_MIN_SAMPLES = 1_000  # the defaults, whatever other tests left in the log
    settings.AT_RISK_MARGIN_MINUTES = 30
    settings.SITE_URL = "https://shop.example.com"


def preparing_order(customer: Any, staff: Any, *, promised_at: datetime | None, since: datetime = NOW - H) -> Order:
    """An order preparing since `since`, promised for `promised_at`."""
    order = with_history(make_order(customer), [("confirmed", since - H), ("preparing", since)],
                         created=since - 2 * H, actor=staff)
    if promised_at is not None:
        services.update_order(order=order, changes={"promised_at": promised_at}, actor=staff)
    return order


def latest_event(order: Order) -> OrderEvent:
    return OrderEvent.objects.filter(order=order).order_by("-seq").first()  # type: ignore[return-value]


@pytest.mark.django_db
def test_an_order_that_will_miss_its_promise_is_flagged_once_with_the_expected_delivery_as_eta(
    alice: Any, staff: Any
) -> None:
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    seq = order.seq

    assert services.flag_orders_at_risk(now=NOW) == [order]
    order.refresh_from_db()
    assert order.at_risk and order.at_risk_since == NOW
    assert order.eta == NOW + 30 * H and order.seq == seq + 1
    event = latest_event(order)
    assert event.kind == OrderEvent.Kind.UPDATED and event.changes == {"eta": (NOW + 30 * H).isoformat()}

    assert services.flag_orders_at_risk(now=NOW + H) == [], "flagged once"
    order.refresh_from_db()
    assert order.seq == seq + 1 and order.at_risk_since == NOW


@pytest.mark.django_db
def test_an_order_expected_within_the_margin_of_its_promise_is_not_flagged(alice: Any, staff: Any) -> None:
    on_time = preparing_order(alice, staff, promised_at=NOW + 30 * H - timedelta(minutes=30))
    late = preparing_order(alice, staff, promised_at=NOW + 30 * H - timedelta(minutes=31))
    assert services.flag_orders_at_risk(now=NOW) == [late]
    on_time.refresh_from_db()
    assert on_time.at_risk_since is None and on_time.eta is None


@pytest.mark.django_db
def test_an_order_that_overstays_its_status_becomes_at_risk_as_the_clock_moves_on(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW + 40 * H)
    assert services.flag_orders_at_risk(now=NOW) == [], "30 h expected, 40 h promised"
    assert services.flag_orders_at_risk(now=NOW + 13 * H) == [], "overstayed: 13 + 27 h, the promise, on time"
    later = NOW + 13 * H + timedelta(minutes=31)
    assert services.flag_orders_at_risk(now=later) == [order], "31 min later it is 1 min past the margin"
    order.refresh_from_db()
    assert order.eta == later + 27 * H


@pytest.mark.django_db
def test_orders_without_a_promise_and_closed_orders_are_never_flagged(alice: Any, staff: Any) -> None:
    preparing_order(alice, staff, promised_at=None)
    delivered = make_order(alice)
    services.update_order(order=delivered, changes={"promised_at": NOW - 100 * H}, actor=staff)
    for status in ("confirmed", "preparing", "shipped", "out_for_delivery", "delivered"):
        services.change_status(order=delivered, to=status, actor=staff)
    cancelled = make_order(alice)
    services.update_order(order=cancelled, changes={"promised_at": NOW - 100 * H}, actor=staff)
    services.change_status(order=cancelled, to="cancelled", actor=staff)
    assert services.flag_orders_at_risk(now=NOW) == []


@pytest.mark.django_db
def test_an_eta_staff_set_later_than_the_estimate_stays(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    services.update_order(order=order, changes={"eta": NOW + 50 * H}, actor=staff)
    seq = order.seq
    assert services.flag_orders_at_risk(now=NOW) == [order]
    order.refresh_from_db()
    assert order.eta == NOW + 50 * H and order.seq == seq and order.at_risk


@pytest.mark.django_db
def test_the_eta_is_rounded_up_to_the_minute(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW, since=NOW - H - timedelta(seconds=1, microseconds=5))
    services.flag_orders_at_risk(now=NOW)
    order.refresh_from_db()
    assert order.eta == NOW + 30 * H


@pytest.mark.django_db
def test_a_closed_order_is_no_longer_at_risk(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW)
    services.flag_orders_at_risk(now=NOW)
    for status in ("shipped", "out_for_delivery", "delivered"):
        services.change_status(order=order, to=status, actor=staff)
    order.refresh_from_db()
    assert order.at_risk_since == NOW and not order.at_risk


# --- the notice e-mail -------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_the_customer_gets_one_notice_email_with_the_new_eta_in_text_and_html(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    mail.outbox.clear()
    services.flag_orders_at_risk(now=NOW)
    services.flag_orders_at_risk(now=NOW + H)
    tasks.email_at_risk_notice(order.pk)  # a duplicate task sends nothing either

    (message,) = mail.outbox
    assert isinstance(message, EmailMultiAlternatives) and message.to == ["alice@example.com"]
    assert message.subject == f"Order {order.number} is running late"
    assert message.body.startswith("Hello alice,\n\n")
    assert (f"your order {order.number} will probably arrive later than we promised "
            "(March 3, 2026, 8 a.m. UTC)") in message.body
    assert "It should now arrive by March 3, 2026, 6 p.m. UTC." in message.body
    assert f"Track it live: {tracking_url(order)}\n" in message.body and "<" not in message.body
    ((html, kind),) = message.alternatives
    assert isinstance(html, str) and kind == "text/html" and '<html lang="en">' in html
    assert "<strong>March 3, 2026, 6 p.m. UTC</strong>" in html and f'<a href="{tracking_url(order)}"' in html
    order.refresh_from_db()
    assert order.at_risk_notified_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_the_notice_is_in_the_sites_language(alice: Any, staff: Any, settings: Any) -> None:
    settings.LANGUAGE_CODE = "de"
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    mail.outbox.clear()
    services.flag_orders_at_risk(now=NOW)
    (message,) = mail.outbox
    assert message.subject == f"Bestellung {order.number} verspätet sich"
    assert "Sie sollte jetzt bis 3. März 2026 18:00 UTC ankommen." in message.body
    assert "Hallo alice," in message.body


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_a_notice_that_never_went_out_is_offered_again_by_the_next_check(alice: Any, staff: Any) -> None:
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    # As after a broker outage at commit: flagged, no notice sent.
    Order.objects.filter(pk=order.pk).update(at_risk_since=NOW - H)
    mail.outbox.clear()
    services.flag_orders_at_risk(now=NOW)
    assert [message.subject for message in mail.outbox] == [f"Order {order.number} is running late"]
    services.flag_orders_at_risk(now=NOW + H)
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_a_customer_without_an_address_is_flagged_and_not_mailed(alice: Any, staff: Any) -> None:
    alice.email = ""
    alice.save()
    order = preparing_order(alice, staff, promised_at=NOW + 20 * H)
    mail.outbox.clear()
    assert services.flag_orders_at_risk(now=NOW) == [order]
    assert mail.outbox == []


# --- the periodic task -------------------------------------------------------------------------------------

def test_the_check_runs_on_the_periodic_queue_every_interval_of_the_settings(settings: Any) -> None:
    (job,) = [job for job in SCHEDULE if job.task == "orders.tasks.check_orders_at_risk"]
    assert (job.every, job.period) == (settings.AT_RISK_CHECK_INTERVAL_SECONDS, "seconds")
    assert QUEUE_OF_TASK["orders.tasks.check_orders_at_risk"] == "periodic"
    assert QUEUE_OF_TASK["orders.tasks.email_at_risk_notice"] == "email"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_the_periodic_task_flags_on_the_real_clock(alice: Any, staff: Any) -> None:
    now = timezone.now()
    order = preparing_order(alice, staff, promised_at=now + 20 * H, since=now - H)
    mail.outbox.clear()
    assert tasks.check_orders_at_risk.delay().get(timeout=10) == 1
    order.refresh_from_db()
    assert order.at_risk and order.eta is not None and order.eta - (now + 30 * H) < timedelta(minutes=2)
    assert len(mail.outbox) == 1
    assert tasks.check_orders_at_risk.delay().get(timeout=10) == 0
    assert len(mail.outbox) == 1
