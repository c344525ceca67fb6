"""The pages fit a phone screen; the same run takes the screenshots shown in the README.

Screenshots go to a temporary directory, or to $SCREENSHOT_DIR when set:
`SCREENSHOT_DIR=docs/screenshots pytest tests/browser/test_screenshots.py` refreshes the README's images.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.async_api import Page, expect

from orders import services
from orders.models import ChatMessage, Order, OrderItem
from tests.browser.pages import log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 720}


def demo_orders(alice: Any, bob: Any, staff: Any) -> tuple[Order, Order]:
    """A few orders at different stages, with items and a short chat, so the pages look lived in."""
    shipped = Order.objects.create(customer=alice, shipping_address="12 Harbour Road\nBristol BS1 4QA")
    for name, quantity, price in [("Espresso beans 1 kg", 1, "24.90"), ("Milk frother", 1, "39.00"),
                                  ("Ceramic cup", 2, "8.50")]:
        OrderItem.objects.create(order=shipped, name=name, quantity=quantity, unit_price=price)
    for status in ("confirmed", "preparing", "shipped"):
        services.change_status(order=shipped, to=status, actor=staff)
    soon = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    services.update_order(order=shipped, actor=staff, changes={
        "carrier": "DHL", "tracking_number": "00340434161234567890", "promised_at": soon + timedelta(hours=4),
        "eta": soon})
    ChatMessage.objects.create(order=shipped, sender=alice, text="Hi! Could the courier leave it with my neighbour?")
    ChatMessage.objects.create(order=shipped, sender=staff, text="Of course — I've added a note for the courier.")
    waiting = Order.objects.create(customer=bob, shipping_address="3 Mill Lane")
    OrderItem.objects.create(order=waiting, name="Pour-over kettle", quantity=1, unit_price="59.00")
    ChatMessage.objects.create(order=waiting, sender=bob, text="Is the kettle in stock?")
    other = Order.objects.create(customer=alice, shipping_address="12 Harbour Road")
    OrderItem.objects.create(order=other, name="Paper filters", quantity=3, unit_price="4.20")
    services.change_status(order=other, to="cancelled", actor=staff)
    return shipped, waiting


async def fits_width(page: Page) -> bool:
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_customer_page_and_staff_board_fit_a_phone_screen_and_screenshots_are_saved(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any, tmp_path: Path
) -> None:
    shipped, waiting = await asyncio.to_thread(demo_orders, alice, bob, staff)
    out = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)

    # The board first, so the customer's arrival is news on it (presence).
    board = await log_in(await new_context(viewport=DESKTOP), server.http, staff.username)
    waiting_row = board.locator(f'#board-body tr[data-order-id="{waiting.pk}"]')
    await expect(board.locator("#connection")).to_have_text("Live")
    await expect(waiting_row.locator(".unread-count")).to_have_text("1")

    customer = await log_in(await new_context(viewport=PHONE, device_scale_factor=2), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{shipped.pk}/")
    await expect(customer.locator("#connection")).to_have_text("Live")
    await expect(customer.locator("#chat-log li")).to_have_count(2)
    await asyncio.to_thread(services.change_status, order=shipped, to="out_for_delivery", actor=staff)
    await expect(customer.locator("#current-status")).to_have_text("Out for delivery")
    await expect(customer.locator('#progress li[aria-current="step"]')).to_contain_text("Out for delivery")
    assert await fits_width(customer), "the order page scrolls sideways at phone width"
    await customer.screenshot(path=str(out / "customer-order.png"), full_page=True)

    await asyncio.to_thread(services.change_status, order=waiting, to="confirmed", actor=staff)
    await expect(waiting_row).to_have_class("changed")
    await board.screenshot(path=str(out / "staff-board.png"))

    await board.set_viewport_size(PHONE)
    assert await fits_width(board), "the staff board scrolls sideways at phone width"
