"""Live pages past 200 orders, in chromium against real uvicorn + celery: a staff board reconnecting reconciles
every order changed meanwhile (also ones older than the rows shown), a row added live knows its customer, so a
staff reply clears its unread count, and "My orders" pages its list and catches up on any of its pages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from orders import services
from orders.models import Order, OrderEvent
from tests.browser.pages import log_in
from tests.helpers import make_order

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

ORDERS = 205  # the board renders the 200 most recently changed


def create_orders(alice: Any, bob: Any) -> list[Order]:
    """Oldest first; the even ones are alice's."""
    return [make_order(bob if i % 2 else alice) for i in range(ORDERS)]


async def all_pushed(timeout: float = 120) -> None:
    """Wait until the worker has pushed every event, so no creation frame reaches the board later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await asyncio.to_thread(OrderEvent.objects.filter(published_at=None).count):
        assert loop.time() < deadline, "the worker did not push the orders' creation events in time"
        await asyncio.sleep(0.2)


async def change_status(order: Order, to: str, actor: Any) -> None:
    await asyncio.to_thread(services.change_status, order=order, to=to, actor=actor)


def row(board: Page, order: Order) -> Locator:
    return board.locator(f'#board-body tr[data-order-id="{order.pk}"]')


async def test_board_reconnecting_after_an_outage_shows_changes_to_old_orders_made_meanwhile(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    orders = await asyncio.to_thread(create_orders, alice, bob)
    oldest, second_oldest = orders[0], orders[1]
    await change_status(oldest, "confirmed", staff)  # just changed: on the board, though the oldest created
    await all_pushed()
    board = await log_in(await new_context(), server.http, staff.username)
    await expect(board.locator("#connection")).to_have_text("Live")
    await expect(board.locator("#board-body tr")).to_have_count(200)
    await expect(row(board, oldest).locator(".status-badge")).to_have_text("Confirmed")
    await expect(row(board, second_oldest)).to_have_count(0)  # outside the board's window

    await asyncio.to_thread(server.stop)
    await expect(board.locator("#connection")).to_have_text("Reconnecting…")
    # Missed: nobody is connected. One order on the board, one that was not.
    await change_status(oldest, "preparing", staff)
    await change_status(second_oldest, "confirmed", staff)
    await asyncio.to_thread(start_server, port=server.port)

    await expect(board.locator("#connection")).to_have_text("Live", timeout=30_000)
    await expect(row(board, oldest).locator(".status-badge")).to_have_text("Preparing")
    added = row(board, second_oldest)
    await expect(added.locator(".status-badge")).to_have_text("Confirmed")
    await expect(added.locator('[data-label="Customer"]')).to_have_text("bob")
    await expect(added.get_by_role("link", name=second_oldest.number, exact=True)).to_have_attribute(
        "href", f"/orders/{second_oldest.pk}/")
    # Most recently changed first; only what changed is highlighted.
    first_rows = board.locator("#board-body tr")
    await expect(first_rows.nth(0)).to_have_attribute("data-order-id", str(second_oldest.pk))
    await expect(first_rows.nth(1)).to_have_attribute("data-order-id", str(oldest.pk))
    await expect(board.locator("#board-body tr.changed")).to_have_count(2)
    await expect(first_rows).to_have_count(201)


async def test_row_added_live_has_its_customer_and_a_staff_reply_clears_its_unread_count(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    orders = await asyncio.to_thread(create_orders, alice, bob)
    oldest = orders[0]  # alice's, not on the board
    await all_pushed()
    board = await log_in(await new_context(), server.http, staff.username)
    await expect(board.locator("#connection")).to_have_text("Live")
    await expect(board.locator("#board-body tr")).to_have_count(200)
    await expect(row(board, oldest)).to_have_count(0)

    await change_status(oldest, "confirmed", staff)  # a live frame for an order the page did not render
    added = row(board, oldest)
    await expect(added.locator(".status-badge")).to_have_text("Confirmed")
    await asyncio.to_thread(services.post_chat_message, order_id=oldest.pk, sender=alice, text="Any news?")
    await expect(added.locator(".unread-count")).to_have_text("1")
    await asyncio.to_thread(services.post_chat_message, order_id=oldest.pk, sender=staff, text="Packing it now.")
    await expect(added.locator(".unread-count")).to_have_text("0")  # answered, not a second unread message
    await expect(added.locator('[data-label="Customer"]')).to_have_text("alice")
    await expect(added).to_have_attribute("data-customer", "alice")
    await expect(added.get_by_role("link", name="Open in admin")).to_have_attribute(
        "href", f"/admin/orders/order/{oldest.pk}/change/")

    # A brand-new order gets its row and customer too.
    new = await asyncio.to_thread(make_order, bob)
    await expect(row(board, new).locator('[data-label="Customer"]')).to_have_text("bob")
    await expect(board.locator("#board-body tr").first).to_have_attribute("data-order-id", str(new.pk))


async def test_my_orders_shows_older_orders_on_later_pages_and_catches_up_there_after_an_outage(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    orders = await asyncio.to_thread(lambda: [make_order(alice) for _ in range(ORDERS)])
    oldest = orders[0]
    await all_pushed()
    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/?page=5")
    await expect(customer.locator("#orders-shown")).to_have_text("Orders 201–205 of 205, newest first.")
    await expect(customer.locator("#connection")).to_have_text("Live")
    card = customer.locator(f'[data-order-id="{oldest.pk}"]')
    await expect(card.locator(".status-badge")).to_have_text("Pending")

    await asyncio.to_thread(server.stop)
    await expect(customer.locator("#connection")).to_have_text("Reconnecting…")
    await change_status(oldest, "confirmed", staff)  # missed: nobody is connected
    await asyncio.to_thread(start_server, port=server.port)
    await expect(customer.locator("#connection")).to_have_text("Live", timeout=30_000)
    await expect(card.locator(".status-badge")).to_have_text("Confirmed")
