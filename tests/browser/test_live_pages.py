"""The live pages in Debian's chromium against real uvicorn + celery: a status changed in /admin/ reaches
the customer's open page without reload, the page survives a server restart without missing anything,
the staff board follows changes and chats, and another customer's order is a 404."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from orders import services
from orders.models import Order, OrderEvent
from tests.browser.pages import admin_log_in, log_in
from tests.e2e.processes import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]


def timeline_status(page: Page, seq: int) -> Locator:
    return page.locator(f'#timeline li[data-seq="{seq}"] .timeline-status')


async def change_status(order: Order, to: str, actor: Any) -> None:
    await asyncio.to_thread(services.change_status, order=order, to=to, actor=actor)


async def test_customer_timeline_shows_a_status_changed_in_admin_within_2s_without_reload(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    customer_context = await new_context()
    my_orders = await log_in(customer_context, server.http, alice.username)
    assert my_orders.url == f"{server.http}/orders/"
    await expect(my_orders.locator("#connection")).to_have_text("Live")
    customer = await customer_context.new_page()
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(customer.locator("#connection")).to_have_text("Live")
    await customer.evaluate("window.notReloaded = true")

    admin = await admin_log_in(await new_context(), server.http, staff.username)
    await admin.goto(f"{server.http}/admin/orders/order/{alice_order.pk}/change/")
    await admin.select_option("#id_status", "confirmed")
    # When the page shows the change, by the browser's clock (this machine's): judged against the event's commit,
    # and waited for generously, so a loaded machine slows the admin's round trip without failing the test.
    await customer.evaluate("""() => {
        const status = document.querySelector("#current-status");
        new MutationObserver(() => { window.shownAt ??= Date.now(); })
            .observe(status, {childList: true, characterData: true, subtree: true});
    }""")
    await admin.click("input[name=_save]")

    await expect(timeline_status(customer, 2)).to_have_text("Confirmed", timeout=20_000)
    event = await asyncio.to_thread(OrderEvent.objects.get, order=alice_order, seq=2)
    shown_after = await customer.evaluate("window.shownAt") / 1000 - event.created_at.timestamp()
    assert shown_after < 2, f"shown {shown_after:.2f} s after the commit"
    await expect(customer.locator("#current-status")).to_have_text("Confirmed")
    assert await customer.evaluate("window.notReloaded") is True
    assert await customer.locator("#timeline li").count() == 2
    await expect(admin.locator(".messagelist")).to_contain_text("was changed successfully")
    # The customer's order list in another tab follows too.
    await expect(my_orders.locator(f'[data-order-id="{alice_order.pk}"] .status-badge')).to_have_text("Confirmed")


async def test_indicator_shows_reconnecting_while_the_server_is_down_then_live_with_the_missed_status(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    indicator = customer.locator("#connection")
    await expect(indicator).to_have_text("Live")
    await customer.evaluate("window.notReloaded = true")

    await asyncio.to_thread(server.stop)
    await expect(indicator).to_have_text("Reconnecting…")
    await expect(indicator).to_have_attribute("data-state", "reconnecting")
    await change_status(alice_order, "confirmed", staff)  # missed: nobody is connected
    await asyncio.to_thread(start_server, port=server.port)

    await expect(indicator).to_have_text("Live", timeout=30_000)
    await expect(timeline_status(customer, 2)).to_have_text("Confirmed")
    await expect(customer.locator("#current-status")).to_have_text("Confirmed")
    # Live again, not just caught up: the next change arrives too, once.
    await change_status(alice_order, "preparing", staff)
    await expect(timeline_status(customer, 3)).to_have_text("Preparing")
    assert await customer.locator("#timeline li").count() == 3
    assert await customer.evaluate("window.notReloaded") is True


async def test_customer_opening_another_customers_order_page_gets_404(
    alice: Any, bob_order: Order, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    customer = await log_in(await new_context(), server.http, alice.username)
    response = await customer.goto(f"{server.http}/orders/{bob_order.pk}/")
    assert response is not None and response.status == 404
    assert bob_order.number not in await customer.content()


async def test_staff_board_highlights_live_changes_shows_who_watches_and_counts_unanswered_chats(
    alice: Any, staff: Any, alice_order: Order, bob_order: Order, start_server: Any, start_worker: Any,
    new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    board = await log_in(await new_context(), server.http, staff.username)
    assert board.url == f"{server.http}/staff/"
    await expect(board.locator("#connection")).to_have_text("Live")
    alice_row = board.locator(f'#board-body tr[data-order-id="{alice_order.pk}"]')
    await expect(alice_row.locator(".unread-count")).to_have_text("0")
    await expect(alice_row.get_by_role("link", name="Open in admin")).to_have_attribute(
        "href", f"/admin/orders/order/{alice_order.pk}/change/")

    await change_status(bob_order, "confirmed", staff)
    bob_row = board.locator(f'#board-body tr[data-order-id="{bob_order.pk}"]')
    await expect(bob_row.locator(".status-badge")).to_have_text("Confirmed")
    await expect(bob_row).to_have_class("changed")
    await expect(bob_row.locator(".change-note")).to_have_text("(just changed)")
    await expect(board.locator("#board-body tr").first).to_have_attribute("data-order-id", str(bob_order.pk))

    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(customer.locator("#connection")).to_have_text("Live")
    await expect(alice_row.locator(".watchers")).to_have_text("alice")  # a presence frame
    await customer.get_by_label("Message").fill("Can you deliver after 5pm?")
    await customer.get_by_role("button", name="Send").click()
    await expect(customer.locator("#chat-log .chat-text")).to_have_text(["Can you deliver after 5pm?"])
    await expect(alice_row.locator(".unread-count")).to_have_text("1")

    # A fresh board starts from what the server knows: alice still watching, her message still unanswered.
    await board.reload()
    await expect(alice_row.locator(".watchers")).to_have_text("alice")
    await expect(alice_row.locator(".unread-count")).to_have_text("1")

    # Staff answer from the order's live page: it shows who is watching; the reply reaches the customer live
    # and clears the board's unread count.
    agent = await board.context.new_page()
    await agent.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(agent.locator("#watchers")).to_have_text("alice")
    await expect(agent.locator("#chat-log .chat-text")).to_have_text(["Can you deliver after 5pm?"])
    await agent.get_by_label("Message").fill("Yes, we'll book the evening slot.")
    await agent.get_by_role("button", name="Send").click()
    await expect(customer.locator("#chat-log .chat-text")).to_have_text(
        ["Can you deliver after 5pm?", "Yes, we'll book the evening slot."])
    await expect(alice_row.locator(".unread-count")).to_have_text("0")


async def test_the_pages_sockets_are_the_published_js_clients(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, new_context: Any
) -> None:
    """One implementation of the socket rules: every page loads clients/js's module as it is, and no page script
    opens a WebSocket of its own."""
    client = (ROOT / "clients" / "js" / "src" / "index.js").read_text()
    for script in Path(ROOT / "static" / "js").glob("*.js"):
        assert "WebSocket(" not in script.read_text(), script.name
    server = await asyncio.to_thread(start_server)
    customer = await log_in(await new_context(), server.http, alice.username)
    board = await log_in(await new_context(), server.http, staff.username)
    for page, path in ((customer, "/orders/"), (customer, f"/orders/{alice_order.pk}/"), (board, "/staff/")):
        await page.goto(server.http + path)
        await expect(page.locator("#connection")).to_have_text("Live")
        loaded = await page.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")
        assert f"{server.http}/static/realtime-client/index.js" in loaded, path
    served = await customer.request.get(f"{server.http}/static/realtime-client/index.js")
    assert served.ok and await served.text() == client


async def test_reconnect_delays_grow_exponentially_with_jitter_up_to_the_cap(
    alice: Any, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    page = await log_in(await new_context(), server.http, alice.username)
    delays = await page.evaluate("""async () => {
        const { backoffDelay, BACKOFF } = await import("/static/js/live-socket.js");
        const samples = (n) => Array.from({ length: 200 }, () => backoffDelay(n));
        return { base: BACKOFF.baseMs, max: BACKOFF.maxMs,
                 byAttempt: [0, 1, 2, 3, 10].map((n) => [Math.min(...samples(n)), Math.max(...samples(n))]) };
    }""")
    base, cap = delays["base"], delays["max"]
    for attempt, (low, high) in zip([0, 1, 2, 3, 10], delays["byAttempt"], strict=True):
        ceiling = min(cap, base * 2**attempt)
        assert ceiling / 2 <= low <= high <= ceiling
        assert high - low > ceiling / 10, "no jitter: every client would retry at the same instant"


async def test_a_socket_refused_right_after_it_opens_backs_off_instead_of_retrying_at_once(
    alice: Any, start_server: Any, new_context: Any
) -> None:
    """A socket over the per-user cap opens and is closed with 4008 straight away: the page's retries must grow
    (the backoff resets at a pong, never at open) rather than hammer the server every half second."""
    server = await asyncio.to_thread(start_server, env={"WS_MAX_CONNECTIONS_PER_USER": "1"})
    context = await new_context()
    first = await log_in(context, server.http, alice.username)  # "My orders": the user's one socket
    await expect(first.locator("#connection")).to_have_text("Live")

    second = await context.new_page()
    await second.add_init_script("""(() => {
        window.attempts = [];
        const Original = window.WebSocket;
        window.WebSocket = class extends Original {
            constructor(...args) { super(...args); window.attempts.push(performance.now()); }
        };
    })()""")
    await second.goto(f"{server.http}/orders/")
    await second.wait_for_timeout(6000)
    attempts = await second.evaluate("window.attempts")
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    # 0.25-0.5 s, 0.5-1 s, 1-2 s, 2-4 s: at most 5 tries in 6 s (about 16 if each open reset the counter).
    assert 2 <= len(attempts) <= 6, attempts
    assert gaps[-1] > 2 * gaps[0], gaps
    await expect(first.locator("#connection")).to_have_text("Live")
