"""The order page in Debian's chromium against real uvicorn + celery tells the truth about its socket: a frozen
server (SIGSTOP: TCP stays up, nothing answers) takes it off "Live" within the pong deadline, and after SIGCONT it
catches up with what changed meanwhile; a page ahead of a restored database follows `order.reset`."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from orders import services
from orders.models import Order
from tests.browser.pages import log_in
from tests.e2e.processes import Server
from tests.helpers import restore_order_at_seq_1

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

PING_SECONDS = 1
PONG_TIMEOUT_SECONDS = 2
FAST_SOCKETS = {"WS_PING_INTERVAL_SECONDS": str(PING_SECONDS), "WS_PONG_TIMEOUT_SECONDS": str(PONG_TIMEOUT_SECONDS),
                "WS_POSITION_CHECK_SECONDS": "1"}


def timeline_status(page: Page, seq: int) -> Locator:
    return page.locator(f'#timeline li[data-seq="{seq}"] .timeline-status')


async def change_status(order: Order, to: str, actor: Any) -> None:
    await asyncio.to_thread(services.change_status, order=order, to=to, actor=actor)


def signal_server(server: Server, sig: signal.Signals) -> None:
    assert server.popen is not None
    os.killpg(server.popen.pid, sig)


async def test_a_frozen_server_takes_the_page_off_live_within_the_pong_deadline_and_it_catches_up_after(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server, env=FAST_SOCKETS)
    await asyncio.to_thread(start_worker)
    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    indicator = customer.locator("#connection")
    await expect(indicator).to_have_text("Live")
    await customer.evaluate("window.notReloaded = true")

    signal_server(server, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        # At most one ping interval until the next ping, then the deadline; the rest is room for a loaded machine.
        await expect(indicator).to_have_attribute("data-state", "reconnecting",
                                                  timeout=(PING_SECONDS + PONG_TIMEOUT_SECONDS + 10) * 1000)
        print(f"\nleft Live {time.monotonic() - frozen_at:.1f} s after SIGSTOP")
        await expect(indicator).to_have_text("Reconnecting…")
        # Committed while the server is frozen; the worker pushes it to a server that cannot pass it on.
        await change_status(alice_order, "confirmed", staff)
    finally:
        signal_server(server, signal.SIGCONT)

    await expect(indicator).to_have_text("Live", timeout=30_000)
    await expect(timeline_status(customer, 2)).to_have_text("Confirmed")
    await expect(customer.locator("#current-status")).to_have_text("Confirmed")
    assert await customer.locator("#timeline li").count() == 2
    assert await customer.evaluate("window.notReloaded") is True


async def test_an_order_page_ahead_of_a_restored_database_shows_the_restored_history_and_stays_live(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server, env=FAST_SOCKETS)
    await asyncio.to_thread(start_worker)
    await change_status(alice_order, "confirmed", staff)
    await change_status(alice_order, "preparing", staff)
    customer = await log_in(await new_context(), server.http, alice.username)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    await expect(customer.locator("#connection")).to_have_text("Live")
    await expect(customer.locator("#timeline li")).to_have_count(3)

    # The database goes back to a backup taken at seq 1; the open socket's position check finds it behind.
    await asyncio.to_thread(restore_order_at_seq_1, alice_order)
    await expect(customer.locator("#timeline li")).to_have_count(1)
    await expect(customer.locator("#current-status")).to_have_text("Pending")

    # The next change is seq 2 again: the page, level with the log, shows it.
    await asyncio.to_thread(alice_order.refresh_from_db)
    await change_status(alice_order, "confirmed", staff)
    await expect(timeline_status(customer, 2)).to_have_text("Confirmed")
    await expect(customer.locator("#current-status")).to_have_text("Confirmed")
    await expect(customer.locator("#timeline li")).to_have_count(2)

# Counts the sockets a page opens (window.sockets), from before its own scripts run.
COUNT_SOCKETS = """(() => {
    window.sockets = 0;
    const Original = window.WebSocket;
    window.WebSocket = class extends Original {
        constructor(...args) { super(...args); window.sockets += 1; }
    };
})()"""


async def test_without_network_the_page_says_so_and_reconnects_at_once_when_it_is_back(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)  # default 20 s pings: only the browser's events act here
    await asyncio.to_thread(start_worker)
    context = await new_context()
    customer = await log_in(context, server.http, alice.username)
    await customer.add_init_script(COUNT_SOCKETS)
    await customer.goto(f"{server.http}/orders/{alice_order.pk}/")
    indicator = customer.locator("#connection")
    await expect(indicator).to_have_text("Live")
    opened = await customer.evaluate("window.sockets")  # the status socket and the chat's

    await context.set_offline(True)
    await expect(indicator).to_have_text("Offline (No network)")
    await change_status(alice_order, "confirmed", staff)
    await context.set_offline(False)
    # The "online" event reconnects both sockets now, not after a backoff or a pong deadline (20 + 10 s).
    await expect(indicator).to_have_text("Live", timeout=5_000)
    assert await customer.evaluate("window.sockets") == opened + 2
    await expect(timeline_status(customer, 2)).to_have_text("Confirmed")
    assert await customer.locator("#timeline li").count() == 2


async def test_a_page_logged_out_elsewhere_asks_to_log_in_again_and_stops_retrying(
    alice: Any, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server, env={"WS_REAUTH_INTERVAL_SECONDS": "1"})
    context = await new_context()
    orders = await log_in(context, server.http, alice.username)
    await orders.add_init_script(COUNT_SOCKETS)
    await orders.goto(f"{server.http}/orders/")
    await expect(orders.locator("#connection")).to_have_text("Live")

    other_tab = await context.new_page()
    await other_tab.goto(f"{server.http}/orders/")
    await other_tab.get_by_role("button", name="Log out").click()
    await other_tab.wait_for_url("**/accounts/logout/")
    # The socket is closed 4001 at its next credentials check; a session no retry can renew: no more sockets.
    await expect(orders.locator("#connection")).to_have_text("Offline (Please log in again)")
    await orders.wait_for_timeout(2000)
    assert await orders.evaluate("window.sockets") == 1
