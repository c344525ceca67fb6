"""The at-risk flag on the staff board, in chromium against real uvicorn + celery: a row gets its badge live when
the check flags its order (the order.updated frame of the new ETA makes the row re-read its staff fields), and
the at-risk filter shows only flagged orders."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.async_api import expect

from orders import services
from orders.models import Order
from tests.browser.pages import assert_accessible, log_in
from tests.helpers import make_order

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]


def promised_orders(alice: Any, staff: Any) -> tuple[Order, Order]:
    """One order promised an hour ago (late whatever the estimate), one promised in a month."""
    now = timezone.now()
    late, fine = make_order(alice), make_order(alice)
    services.update_order(order=late, changes={"promised_at": now - timedelta(hours=1)}, actor=staff)
    services.update_order(order=fine, changes={"promised_at": now + timedelta(days=30)}, actor=staff)
    return late, fine


async def test_the_board_badges_an_order_live_when_it_is_flagged_and_filters_at_risk_orders(
    alice: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    late, fine = await asyncio.to_thread(promised_orders, alice, staff)
    board = await log_in(await new_context(), server.http, staff.username)
    await expect(board.locator("#connection")).to_have_text("Live")
    late_row = board.locator(f'#board-body tr[data-order-id="{late.pk}"]')
    await expect(late_row.locator(".at-risk-badge")).to_be_hidden()

    assert await asyncio.to_thread(lambda: services.flag_orders_at_risk(now=timezone.now())) == [late]
    await expect(late_row.locator(".at-risk-badge")).to_be_visible(timeout=15_000)
    await expect(late_row.locator(".at-risk-badge")).to_have_text("At risk")
    await expect(late_row).to_have_attribute("data-at-risk", "true")
    await expect(board.locator(f'#board-body tr[data-order-id="{fine.pk}"] .at-risk-badge')).to_be_hidden()
    await assert_accessible(board)  # WCAG 2.1 AA with the badge shown (its colours among them)

    await board.get_by_label("Only orders at risk of missing their promise").check()
    await board.get_by_role("button", name="Show").click()
    await board.wait_for_url("**at_risk=1**")
    await expect(board.locator("#board-body tr")).to_have_count(1)
    await expect(board.locator(f'#board-body tr[data-order-id="{late.pk}"] .at-risk-badge')).to_be_visible()


async def test_the_customers_open_order_page_says_it_is_running_late_when_the_check_flags_it(
    alice: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    late, _ = await asyncio.to_thread(promised_orders, alice, staff)
    page = await log_in(await new_context(), server.http, alice.username)
    await page.goto(f"{server.http}/orders/{late.pk}/")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator("#late-notice")).to_be_hidden()

    assert await asyncio.to_thread(lambda: services.flag_orders_at_risk(now=timezone.now())) == [late]
    await expect(page.locator("#late-notice")).to_be_visible(timeout=15_000)
    await assert_accessible(page)
    eta = await asyncio.to_thread(lambda: Order.objects.get(pk=late.pk).eta)
    assert eta is not None
    await expect(page.locator("#eta time")).to_have_attribute("datetime", eta.isoformat())
