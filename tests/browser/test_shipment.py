"""Shipment and promise on the order page in Debian's chromium against real uvicorn + celery: carrier, tracking
number (linked to the carrier), promised date, ETA and order date are shown, prices in the order's currency and
the reader's language, and an order.updated frame changes them live, on the customer's page and a guest tracking
link alike, without breaking the seq stream for the status changes that follow."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect

from integrations import tracking
from orders import services
from orders.models import Order, OrderItem
from tests.browser.pages import log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

ETA = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
PROMISED = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def update(order: Order, actor: Any, **changes: Any) -> None:
    await asyncio.to_thread(services.update_order, order=order, changes=changes, actor=actor)


async def test_the_order_page_shows_shipment_and_prices_in_german_and_applies_an_update_live(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    await update(alice_order, staff, promised_at=PROMISED)
    context = await new_context(timezone_id="Europe/Berlin")
    await log_in(context, server.http, alice.username)
    # Her choice of language, as the header's switch stores it (Django's language cookie).
    await context.add_cookies([{"name": "django_language", "value": "de", "url": server.http}])
    page = await context.new_page()
    await page.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(page.locator("#connection")).to_have_text("Live")
    await page.evaluate("window.notReloaded = true")

    # 2 × 9.50 EUR, written as a German reader expects; the order date and promise in the reader's time zone.
    row = page.locator("#items tbody tr").first
    await expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^9,50\s€$"))
    await expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^19,00\s€$"))
    await expect(page.locator("#order-total")).to_have_text(re.compile(r"^19,00\s€$"))
    await expect(page.locator("#ordered-at time")).to_have_count(1)
    await expect(page.locator("#promised-at")).to_contain_text("4. Dez., 13:00")  # 12:00 UTC in Berlin
    await expect(page.locator("#carrier")).to_have_text("Noch nicht bekannt")
    await expect(page.locator("#eta")).to_have_text("Noch nicht bekannt")
    assert await page.locator("#timeline li").count() == 1  # the update is not a status

    await update(alice_order, staff, carrier="DHL", tracking_number="JJD0099", eta=ETA)
    await expect(page.locator("#carrier")).to_have_text("DHL")
    link = page.locator("#tracking-number a")
    await expect(link).to_have_text("JJD0099")
    await expect(link).to_have_attribute(
        "href", "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?submit=1&tracking-id=JJD0099")
    await expect(page.locator("#eta")).to_contain_text("3. Dez., 17:00")

    # The status stream continues past the update's seq without a gap or a reload.
    await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
    await expect(page.locator('#timeline li[data-seq="4"] .timeline-status')).to_have_text("Bestätigt")
    await update(alice_order, staff, carrier="Acme Freight", eta=None)
    await expect(page.locator("#carrier")).to_have_text("Acme Freight")
    await expect(page.locator("#tracking-number")).to_have_text("JJD0099")  # no known page: not a link
    assert await page.locator("#tracking-number a").count() == 0
    await expect(page.locator("#eta")).to_have_text("Noch nicht bekannt")
    assert await page.evaluate("window.notReloaded") is True
    # German's long labels and a long tracking number still fit a phone's width.
    await update(alice_order, staff, tracking_number="00340434161234567890123456789012345678901234567890")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("#tracking-number")).to_contain_text("003404341612345678901234")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_a_tracking_link_shows_shipment_in_the_orders_currency_and_follows_updates(
    alice: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    order = await asyncio.to_thread(Order.objects.create, customer=alice, currency="USD", carrier="UPS",
                                    tracking_number="1Z999AA1", shipping_address="1 Test Street")
    await asyncio.to_thread(OrderItem.objects.create, order=order, name="Mug", quantity=3, unit_price="4.20")
    path = await asyncio.to_thread(tracking.tracking_path, order)
    page = await (await new_context(locale="en-US")).new_page()
    await page.goto(server.http + path)
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator("#order-total")).to_have_text("$12.60")
    await expect(page.locator("#tracking-number a")).to_have_attribute(
        "href", "https://www.ups.com/track?tracknum=1Z999AA1")
    assert await page.get_by_text("1 Test Street").count() == 0  # still no address for a guest

    await update(order, staff, tracking_number="1Z999AA2", promised_at=PROMISED)
    await expect(page.locator("#tracking-number a")).to_have_attribute(
        "href", "https://www.ups.com/track?tracknum=1Z999AA2")
    await expect(page.locator("#promised-at time")).to_have_attribute("datetime", PROMISED.isoformat())
