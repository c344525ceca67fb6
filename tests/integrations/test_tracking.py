"""Guest tracking links: signed per order, rotatable, expiring after the order closes; the read-only page."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from integrations import tracking
from orders import services
from orders.models import Order

pytestmark = pytest.mark.django_db


def test_a_token_opens_its_own_order_only(alice_order: Order, bob_order: Order) -> None:
    token = tracking.tracking_token(alice_order)
    assert token.startswith("trk_")
    assert tracking.verify(token).pk == alice_order.pk
    assert tracking.verify(tracking.tracking_token(bob_order)).pk == bob_order.pk


def tampered(token: str) -> list[str]:
    order_id, version, sig = token.removeprefix("trk_").split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return [
        f"trk_{order_id}.{version}.{flipped}",          # another signature
        f"trk_{int(order_id) + 1}.{version}.{sig}",      # another order under this signature
        f"trk_{order_id}.{int(version) + 1}.{sig}",      # another version under this signature
        token[:-3], "", "trk_", "nonsense",
    ]


def test_tampered_tokens_are_refused(alice_order: Order, bob_order: Order) -> None:
    for bad in tampered(tracking.tracking_token(alice_order)):
        with pytest.raises(tracking.BadTrackingToken):
            tracking.verify(bad)


def test_rotating_invalidates_earlier_links(alice_order: Order) -> None:
    old = tracking.tracking_token(alice_order)
    new = tracking.rotate(order=alice_order)
    assert new != old and tracking.verify(new).pk == alice_order.pk
    with pytest.raises(tracking.BadTrackingToken, match="rotated"):
        tracking.verify(old)
    newest = tracking.rotate(order=alice_order)
    with pytest.raises(tracking.BadTrackingToken):
        tracking.verify(new)
    assert tracking.verify(newest).pk == alice_order.pk


def test_a_link_expires_the_configured_time_after_the_order_closes(alice_order: Order, settings: Any) -> None:
    settings.TRACKING_LINK_DAYS_AFTER_CLOSED = 7
    token = tracking.tracking_token(alice_order)
    Order.objects.filter(pk=alice_order.pk).update(status_changed_at=timezone.now() - timedelta(days=30))
    assert tracking.verify(token)  # still open: no expiry however old
    services.change_status(order=alice_order, to="cancelled", actor=None)
    assert tracking.verify(token)  # closed just now
    at = timezone.now() - timedelta(days=6, hours=23)
    Order.objects.filter(pk=alice_order.pk).update(status_changed_at=at)
    assert tracking.verify(token)
    Order.objects.filter(pk=alice_order.pk).update(status_changed_at=at - timedelta(hours=2))
    with pytest.raises(tracking.BadTrackingToken, match="expired"):
        tracking.verify(token)


def test_tracking_url_is_site_url_plus_path_or_the_path_alone(alice_order: Order, settings: Any) -> None:
    token = tracking.tracking_token(alice_order)
    settings.SITE_URL = ""
    assert tracking.tracking_url(alice_order) == f"/t/{token}"
    settings.SITE_URL = "https://orders.example.com"
    assert tracking.tracking_url(alice_order) == f"https://orders.example.com/t/{token}"


def test_the_page_shows_the_order_without_login_and_nothing_personal(alice_order: Order) -> None:
    response = Client().get(tracking.tracking_path(alice_order))
    assert response.status_code == 200
    page = response.content.decode()
    assert alice_order.number in page and "Beans" in page
    assert "1 Test Street" not in page and "alice" not in page
    assert 'id="chat-form"' not in page
    assert response.context["page_data"]["tracking"] == tracking.tracking_token(alice_order)
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_staff_opening_a_tracking_link_see_the_guest_page_too(staff: Any, alice_order: Order) -> None:
    from tests.twofactor import force_login_verified

    client = Client()
    force_login_verified(client, staff)
    page = client.get(tracking.tracking_path(alice_order)).content.decode()
    assert alice_order.number in page
    assert "alice" not in page and "Edit in admin" not in page and 'id="watchers"' not in page
    assert page.count('id="connection"') == 1


def test_a_bad_link_gets_a_404_page_and_the_token_is_not_logged(alice_order: Order, caplog: Any) -> None:
    token = tracking.tracking_token(alice_order)
    bad = token[:-2] + ("xx" if not token.endswith("xx") else "yy")
    caplog.set_level(logging.INFO)
    response = Client().get(f"/t/{bad}")
    assert response.status_code == 404
    assert b"not valid" in response.content
    assert bad not in caplog.text and bad[4:] not in caplog.text
    assert "/t/[redacted]" in caplog.text  # Django's "Not Found: <path>" line, redacted


def test_status_emails_carry_the_tracking_link(alice_order: Order, settings: Any) -> None:
    settings.SITE_URL = "https://orders.example.com"
    event = services.change_status(order=alice_order, to="confirmed", actor=None)
    assert services.email_status_change(event_id=event.pk)
    assert tracking.tracking_url(alice_order) in mail.outbox[0].body


def test_tracking_tokens_are_redacted_from_log_lines() -> None:
    from config.redaction import redact

    token = "trk_12.0.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd"
    line = f'127.0.0.1:5000 - "GET /t/{token} HTTP/1.1" 200'
    assert token not in redact(line) and "/t/[redacted]" in redact(line)
    assert token not in redact(f"offered protocols tracking, {token}")
    assert redact("GET /static/js/order-page.js") == "GET /static/js/order-page.js"
