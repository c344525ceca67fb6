"""Creates the demo data: a staff user, two customers with orders, and prints how to log in."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from orders import services
from orders.models import Order, OrderItem
from orders.states import Status

DEMO_PASSWORD = "demo-pass-123"
USERS = [
    # username, is_staff, name
    ("staff", True, "Sam Staff"),
    ("alice", False, "Alice Customer"),
    ("bob", False, "Bob Customer"),
]
ORDERS = {
    "alice": [
        [("Espresso beans 1 kg", 1, "24.90"), ("Milk frother", 1, "39.00")],
        [("Ceramic cup", 4, "8.50")],
    ],
    "bob": [[("Pour-over kettle", 1, "59.00")]],
}


class Command(BaseCommand):
    help = "Create demo users and orders (idempotent) and print credentials and URLs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--in-production", action="store_true",
                            help="Create the demo users, with their published password, outside the embedded mode too.")

    def handle(self, *args: Any, base_url: str, in_production: bool, **options: Any) -> None:
        if not settings.EMBEDDED and not in_production:
            # Known passwords never reach a real database by accident (make run with DATABASE_URL set).
            self.stdout.write("Production mode: no demo users created (seed_demo --in-production would). "
                              "Create staff with `python manage.py createsuperuser`.")
            return
        User = get_user_model()
        users = {}
        with transaction.atomic():
            for username, is_staff, name in USERS:
                first, last = name.split(" ", 1)
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={"is_staff": is_staff, "is_superuser": is_staff, "first_name": first,
                              "last_name": last, "email": f"{username}@example.com"},
                )
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                users[username] = user
            for username, baskets in ORDERS.items():
                customer = users[username]
                if Order.objects.filter(customer=customer).exists():
                    continue
                for index, basket in enumerate(baskets):
                    order = Order.objects.create(customer=customer, shipping_address=f"{index + 1} Demo Street")
                    for name, quantity, price in basket:
                        OrderItem.objects.create(order=order, name=name, quantity=quantity, unit_price=Decimal(price))
                    if index == 0:
                        services.change_status(order=order, to=Status.CONFIRMED, actor=users["staff"])
                        # A promise and a parcel to follow, so the order page's delivery facts show something.
                        noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
                        promised = noon + timedelta(days=3)
                        services.update_order(order=order, actor=users["staff"], changes={
                            "carrier": "DHL", "tracking_number": f"JJD00{order.pk:012d}", "promised_at": promised,
                            "eta": promised - timedelta(hours=2)})

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  Staff:     staff / {DEMO_PASSWORD}   (admin: {base_url}/admin/)")
        if settings.STAFF_REQUIRE_2FA:
            self.stdout.write("             then a code from an authenticator app, set up at the first login")
        self.stdout.write(f"  Customers: alice / {DEMO_PASSWORD}, bob / {DEMO_PASSWORD}")
        self.stdout.write(f"  Open:      {base_url}/            (log in as alice, watch her orders live)")
        self.stdout.write(f"  API:       POST {base_url}/api/auth/token/  then ws://…/ws/notifications/")
        if settings.EMBEDDED:
            self.stdout.write("  Mode:      embedded (SQLite, in-memory channel layer, eager Celery)")
