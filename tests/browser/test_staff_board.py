"""The staff board and "My orders" in chromium against real uvicorn + celery, at phone and desktop widths: search,
filters, counts and a status change from the board (a refused one shows the state machine's reason); past one
page, a board reconnecting reconciles every order changed meanwhile (also ones on later pages), a row added live
knows its customer, so a staff reply clears its unread count, and a read racing a chat frame cannot undo it;
"My orders" shows new orders and changes live, pages its list and catches up on any of its pages."""

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

ORDERS = 205  # "My orders" shows 50 a page
BOARD_ORDERS = 55  # the board's page shows the 50 most recently changed
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDTHS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])


def create_orders(alice: Any, bob: Any, count: int = BOARD_ORDERS) -> list[Order]:
    """Oldest first; the even ones are alice's."""
    return [make_order(bob if i % 2 else alice) for i in range(count)]


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
    await expect(board.locator("#board-body tr")).to_have_count(50)
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
    await expect(added.locator(".customer")).to_have_text("bob")
    await expect(added.get_by_role("link", name=second_oldest.number, exact=True)).to_have_attribute(
        "href", f"/orders/{second_oldest.pk}/")
    # Most recently changed first; only what changed is highlighted.
    first_rows = board.locator("#board-body tr")
    await expect(first_rows.nth(0)).to_have_attribute("data-order-id", str(second_oldest.pk))
    await expect(first_rows.nth(1)).to_have_attribute("data-order-id", str(oldest.pk))
    await expect(board.locator("#board-body tr.changed")).to_have_count(2)
    await expect(first_rows).to_have_count(51)


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
    await expect(board.locator("#board-body tr")).to_have_count(50)
    await expect(row(board, oldest)).to_have_count(0)

    await change_status(oldest, "confirmed", staff)  # a live frame for an order the page did not render
    added = row(board, oldest)
    await expect(added.locator(".status-badge")).to_have_text("Confirmed")
    await asyncio.to_thread(services.post_chat_message, order_id=oldest.pk, sender=alice, text="Any news?")
    await expect(added.locator(".unread-count")).to_have_text("1")
    await asyncio.to_thread(services.post_chat_message, order_id=oldest.pk, sender=staff, text="Packing it now.")
    await expect(added.locator(".unread-count")).to_have_text("0")  # answered, not a second unread message
    await expect(added.locator(".customer")).to_have_text("alice")
    await expect(added).to_have_attribute("data-customer", "alice")
    await expect(added.get_by_role("link", name="Open in admin")).to_have_attribute(
        "href", f"/admin/orders/order/{oldest.pk}/change/")

    # A brand-new order gets its row and customer too.
    new = await asyncio.to_thread(make_order, bob)
    await expect(row(board, new).locator(".customer")).to_have_text("bob")
    await expect(board.locator("#board-body tr").first).to_have_attribute("data-order-id", str(new.pk))


async def test_my_orders_shows_older_orders_on_later_pages_and_catches_up_there_after_an_outage(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    orders = await asyncio.to_thread(create_orders, alice, alice, ORDERS)
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


def set_external_ref(order: Order, ref: str) -> None:
    Order.objects.filter(pk=order.pk).update(external_ref=ref)


def deliver(order: Order, actor: Any) -> None:
    for status in ["confirmed", "preparing", "shipped", "out_for_delivery", "delivered"]:
        services.change_status(order=order, to=status, actor=actor)


@WIDTHS
async def test_staff_search_filter_and_change_a_status_from_the_board_and_a_refused_change_says_why(
    viewport: dict[str, int], alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any,
    new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    first, second, by_ref = [await asyncio.to_thread(make_order, customer) for customer in (alice, alice, bob)]
    await asyncio.to_thread(set_external_ref, by_ref, "SHOP-4711")
    delivered = await asyncio.to_thread(make_order, bob)
    await asyncio.to_thread(deliver, delivered, staff)
    await all_pushed()
    board = await log_in(await new_context(viewport=viewport), server.http, staff.username)
    await expect(board.locator("#connection")).to_have_text("Live")
    # Closed orders are hidden by default, and counted.
    await expect(board.locator("#board-body tr")).to_have_count(3)
    await expect(row(board, delivered)).to_have_count(0)
    await expect(board.locator('.status-count[data-status="pending"]')).to_have_text("3")
    await expect(board.locator('.status-count[data-status="delivered"]')).to_have_text("1")
    width = await board.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the board is {width}px wide at {viewport['width']}px"

    # Search by the shop's reference, then by e-mail.
    await board.get_by_label("Search").fill("shop-4711")
    await board.get_by_role("button", name="Show").click()
    await expect(board.locator("#board-body tr")).to_have_count(1)
    await expect(row(board, by_ref).locator(".external-ref")).to_have_text("SHOP-4711")
    await board.get_by_label("Search").fill("alice@example.com")
    await board.get_by_role("button", name="Show").click()
    await expect(board.locator("#board-body tr")).to_have_count(2)
    await expect(board.locator("#board-summary")).to_contain_text("Orders 1–2 of 2")

    # A change the state machine allows: shown at once, and counted.
    target = row(board, first)
    await target.get_by_label(f"New status {first.number}").select_option("confirmed")
    await target.get_by_role("button", name="Change status").click()
    await expect(target.locator(".change-result")).to_have_text("Changed to Confirmed.")
    await expect(target.locator(".status-badge")).to_have_text("Confirmed")
    assert (await asyncio.to_thread(Order.objects.get, pk=first.pk)).status == "confirmed"
    await expect(board.locator('.status-count[data-status="confirmed"]')).to_have_text("1")
    await expect(board.locator('.status-count[data-status="pending"]')).to_have_text("1")

    # One it refuses: the reason is the state machine's, and nothing changed.
    other = row(board, second)
    await other.get_by_label(f"New status {second.number}").select_option("delivered")
    await other.get_by_role("button", name="Change status").click()
    await expect(other.locator(".change-result")).to_have_text(
        "Not changed: A pending order cannot become delivered; it can become confirmed or cancelled.")
    await expect(other.locator(".status-badge")).to_have_text("Pending")
    assert (await asyncio.to_thread(Order.objects.get, pk=second.pk)).status == "pending"

    # Filter by status; then the closed orders too.
    await board.get_by_role("link", name="Reset").click()
    await board.get_by_label("Confirmed").check()
    await board.get_by_role("button", name="Show").click()
    await expect(board.locator("#board-body tr")).to_have_count(1)
    await expect(row(board, first)).to_have_count(1)
    await board.get_by_role("link", name="Reset").click()
    await board.get_by_label("Show closed orders (delivered, cancelled)").check()
    await board.get_by_role("button", name="Show").click()
    await expect(board.locator("#board-body tr")).to_have_count(4)
    await expect(row(board, delivered).locator(".status-badge")).to_have_text("Delivered")


async def test_a_rows_read_that_started_before_a_chat_message_cannot_undo_its_unread_count(
    alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    """The race of a live-added row: its read of /staff/rows/ answers from before the customer's message, and
    arrives after the message's frame and a later read. The row's chat mark keeps the newer count."""
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    orders = await asyncio.to_thread(create_orders, alice, bob)
    oldest = orders[0]  # alice's, not on the board's first page
    await all_pushed()
    board = await log_in(await new_context(), server.http, staff.username)
    await expect(board.locator("#connection")).to_have_text("Live")
    await expect(row(board, oldest)).to_have_count(0)

    held: list[Any] = []
    release = asyncio.Event()

    async def hold_the_first_read(route: Any) -> None:
        if held:
            await route.continue_()
            return
        answer = await route.fetch()  # read by the server now: before the message
        held.append(answer)
        await release.wait()
        await route.fulfill(response=answer)

    await board.route(f"**/staff/rows/?id={oldest.pk}", hold_the_first_read)
    await change_status(oldest, "confirmed", staff)  # a live frame adds the row, which reads the rest
    added = row(board, oldest)
    await expect(added.locator(".status-badge")).to_have_text("Confirmed")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not held:
        assert loop.time() < deadline, "the added row did not read itself"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(services.post_chat_message, order_id=oldest.pk, sender=alice, text="Any news?")
    await expect(added.locator(".unread-count")).to_have_text("1")
    await expect(added.locator(".chat-preview")).to_have_text("alice: Any news?")
    release.set()  # the stale answer arrives last
    await board.wait_for_timeout(1000)
    await expect(added.locator(".unread-count")).to_have_text("1")
    await expect(added.locator(".customer")).to_have_text("alice")


@WIDTHS
async def test_my_orders_shows_a_new_order_and_its_changes_live(
    viewport: dict[str, int], alice: Any, bob: Any, staff: Any, start_server: Any, start_worker: Any,
    new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    existing = await asyncio.to_thread(make_order, alice)
    await all_pushed()
    customer = await log_in(await new_context(viewport=viewport), server.http, alice.username)
    await expect(customer.locator("#connection")).to_have_text("Live")
    await expect(customer.locator(".order-card")).to_have_count(1)

    new = await asyncio.to_thread(make_order, alice)
    await asyncio.to_thread(make_order, bob)  # someone else's: never shown
    card = customer.locator(f'.order-card[data-order-id="{new.pk}"]')
    await expect(card.locator(".order-number")).to_have_text(new.number)
    await expect(card.locator(".status-badge")).to_have_text("Pending")
    await expect(card).to_contain_text("1 item")
    await expect(customer.locator(".order-card").first).to_have_attribute("data-order-id", str(new.pk))
    await change_status(new, "confirmed", staff)
    await expect(card.locator(".status-badge")).to_have_text("Confirmed")
    await change_status(existing, "cancelled", staff)
    await expect(customer.locator(f'.order-card[data-order-id="{existing.pk}"] .status-badge')).to_have_text(
        "Cancelled")
    await expect(customer.locator(".order-card")).to_have_count(2)
    width = await customer.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the page is {width}px wide at {viewport['width']}px"


async def test_the_board_speaks_german_to_a_german_browser_and_keeps_the_reason_in_the_apis_words(
    alice: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    order = await asyncio.to_thread(make_order, alice)
    await all_pushed()
    board = await log_in(await new_context(), server.http, staff.username)
    await board.get_by_label("Language").select_option("de")  # the header's switch: remembered in a cookie
    await board.locator(".language-switch").get_by_role("button").click()
    await expect(board.get_by_role("heading", level=1)).to_have_text("Alle Bestellungen, live")
    await expect(board.locator("#connection")).to_have_text("Live")
    target = row(board, order)
    await target.get_by_label(f"Neuer Status {order.number}").select_option("shipped")
    await target.get_by_role("button", name="Status ändern").click()
    await expect(target.locator(".change-result")).to_have_text(
        "Nicht geändert: A pending order cannot become shipped; it can become confirmed or cancelled.")
    await target.get_by_label(f"Neuer Status {order.number}").select_option("confirmed")
    await target.get_by_role("button", name="Status ändern").click()
    await expect(target.locator(".change-result")).to_have_text("Geändert in: Bestätigt.")
    await expect(target.locator(".change-note")).to_have_text("(gerade geändert)")
