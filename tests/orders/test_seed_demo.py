"""The demo data (users with a published password) goes only where it is meant to: the embedded mode."""

from __future__ import annotations

from io import StringIO
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.models import Order


def test_production_mode_gets_no_demo_users_unless_asked_for(db: None, settings: Any) -> None:
    assert settings.EMBEDDED is False  # the suite runs on PostgreSQL and Redis, as production does
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "no demo users created" in out.getvalue()
    assert not get_user_model().objects.filter(username__in=["staff", "alice", "bob"]).exists()
    call_command("seed_demo", "--in-production", stdout=StringIO())
    staff = get_user_model().objects.get(username="staff")
    assert staff.is_superuser and staff.check_password("demo-pass-123")
    assert Order.objects.filter(customer__username="alice").count() == 2


def test_the_embedded_mode_gets_the_demo_users(db: None, settings: Any) -> None:
    settings.EMBEDDED = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "staff / demo-pass-123" in out.getvalue()
    assert get_user_model().objects.filter(username__in=["staff", "alice", "bob"]).count() == 3
    # Each customer's first order is confirmed and has a parcel and a promise to show.
    shipped = Order.objects.filter(customer__username="alice", status="confirmed").get()
    assert shipped.carrier == "DHL" and shipped.carrier_tracking_url and shipped.promised_at and shipped.eta
    assert list(shipped.events.values_list("seq", "kind")) == [(1, "status"), (2, "status"), (3, "updated")]
