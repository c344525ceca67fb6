"""A guest tracking link in Debian's chromium against real uvicorn + celery: the order's page opens without
logging in, goes live over the tracking socket, shows a status change without reload, and has no chat."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from integrations import tracking
from orders import services
from orders.models import Order, OrderEvent

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]


async def test_a_tracking_link_shows_a_live_status_change_without_logging_in(
    staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    path = await asyncio.to_thread(tracking.tracking_path, alice_order)
    page = await (await new_context()).new_page()  # no cookies: nobody is logged in
    failed: list[str] = []  # the page's own requests that were refused (its script, styles, the API)
    page.on("response", lambda response: failed.append(response.url)
            if response.status >= 400 and not response.url.endswith("/favicon.ico") else None)
    await page.goto(server.http + path)
    await expect(page.locator("h1")).to_have_text(f"Order {alice_order.number}")
    await expect(page.locator("#connection")).to_have_text("Live")
    assert await page.locator("#chat-form").count() == 0
    assert await page.get_by_text("1 Test Street").count() == 0
    await page.evaluate("window.notReloaded = true")

    await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
    await expect(page.locator('#timeline li[data-seq="2"] .timeline-status')).to_have_text("Confirmed")
    await expect(page.locator("#current-status")).to_have_text("Confirmed")
    assert await page.evaluate("window.notReloaded") is True
    assert failed == []


async def test_a_rotated_link_stops_the_open_page_and_no_longer_opens(
    alice_order: Order, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    path = await asyncio.to_thread(tracking.tracking_path, alice_order)
    page = await (await new_context()).new_page()
    await page.goto(server.http + path)
    await expect(page.locator("#connection")).to_have_text("Live")

    await asyncio.to_thread(tracking.rotate, order=alice_order)
    await expect(page.locator("#connection")).to_have_text("Offline (This link is no longer valid)")
    response = await page.goto(server.http + path)
    assert response is not None and response.status == 404
    await expect(page.locator("h1")).to_have_text("This tracking link is not valid")


# Chromium's German short month names (Intl.DateTimeFormat "de", month: "short").
GERMAN_MONTHS = ["Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."]


async def test_a_german_browser_gets_the_page_in_german_with_dates_in_its_own_time_zone(
    staff: Any, alice_order: Order, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    path = await asyncio.to_thread(tracking.tracking_path, alice_order)
    # Accept-Language: de-DE; a time zone 5 h 30 min off UTC, so a date left in UTC cannot pass.
    page = await (await new_context(locale="de-DE", timezone_id="Asia/Kolkata")).new_page()
    await page.goto(server.http + path)
    assert await page.get_attribute("html", "lang") == "de"
    await expect(page.locator("h1")).to_have_text(f"Bestellung {alice_order.number}")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator("#freshness")).to_have_text(re.compile(r"^Aktuell · geprüft (jetzt|vor \d+ Sek\.)$"))

    created = (await asyncio.to_thread(OrderEvent.objects.get, order=alice_order, seq=1)).created_at
    local = created.astimezone(ZoneInfo("Asia/Kolkata"))
    first = page.locator('#timeline li[data-seq="1"] time')
    await expect(first).to_have_text(f"{local.day}. {GERMAN_MONTHS[local.month - 1]}, {local:%H:%M:%S}")

    await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=staff)
    await expect(page.locator('#timeline li[data-seq="2"] .timeline-status')).to_have_text("Bestätigt")
    await expect(page.locator("#current-status")).to_have_text("Bestätigt")
    await expect(page.locator('#progress li[data-step="confirmed"] .step-state')).to_have_text(" (aktuell)")
