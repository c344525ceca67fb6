"""The order page's delivery receipts in Debian's chromium: it acknowledges the status it was rendered with once its
socket is live, then each change once shown; a guest's tracking page does too, staff's never count; the staff board
shows them live."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import expect

from integrations.tracking import tracking_url
from orders import services
from orders.models import Order
from tests.browser.pages import log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]


async def stored_receipt(order: Order, seq: int, timeout: float = 10) -> int:
    """The order's seen seq once it is `seq`, or what it is after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        stored: int = await asyncio.to_thread(
            lambda: Order.objects.values_list("seen_seq", flat=True).get(pk=order.pk))
        if stored == seq or time.monotonic() > deadline:
            return stored
        await asyncio.sleep(0.1)


async def test_the_order_page_acknowledges_what_it_shows_and_staffs_page_does_not_count(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    board = await log_in(await new_context(), server.http, staff.username)
    await board.goto(f"{server.http}/staff/")
    seen_cell = board.locator(f'tr[data-order-id="{alice_order.pk}"] .seen')
    await expect(seen_cell).to_have_text("Not yet")
    await expect(board.locator("#connection")).to_have_text("Live")
    staff_page = await board.context.new_page()
    await staff_page.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(staff_page.locator("#connection")).to_have_text("Live")
    await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
    await expect(staff_page.locator("#current-status")).to_have_text("Confirmed")
    assert await stored_receipt(alice_order, 2, timeout=1) == 0  # staff watching never stand in for the customer

    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(customer.locator("#connection")).to_have_text("Live")
    assert await stored_receipt(alice_order, 2) == 2  # the status the page was rendered with
    await expect(seen_cell).to_contain_text("Seen")  # live on the board (order.seen)
    await asyncio.to_thread(services.change_status, order=alice_order, to="preparing", actor=staff)
    await expect(customer.locator("#current-status")).to_have_text("Preparing")
    assert await stored_receipt(alice_order, 3) == 3
    await expect(seen_cell).to_contain_text("Seen")
    await board.reload()
    await expect(seen_cell).to_contain_text("Seen")  # as the server renders it


async def test_a_guests_tracking_page_acknowledges_what_it_shows(
    staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    guest = await (await new_context()).new_page()
    link = await asyncio.to_thread(tracking_url, alice_order)
    await guest.goto(server.http + link[link.index("/t/"):])
    await expect(guest.locator("#connection")).to_have_text("Live")
    await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
    await expect(guest.locator("#current-status")).to_have_text("Confirmed")
    assert await stored_receipt(alice_order, 2) == 2
