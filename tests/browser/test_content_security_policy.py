"""Every page runs under the strict Content-Security-Policy without a single violation: the customer's order
page (with its chat), My orders, the staff board, the login page, the admin's order pages and the API docs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import Page

from config.headers import CONTENT_SECURITY_POLICY
from orders import services
from orders.models import Order
from tests.browser.pages import admin_log_in, log_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

# Records every violation the browser reports, from before the page's own scripts run.
WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (event) => window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));
"""


async def visit(page: Page, url: str) -> list[str]:
    """Open `url`, let it settle, and answer the violations seen (after checking the policy was sent)."""
    response = await page.goto(url)
    assert response is not None and response.ok, url
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, url
    assert "camera=()" in response.headers["permissions-policy"]
    await page.wait_for_load_state("networkidle")
    return await page.evaluate("window.cspViolations")


async def test_the_pages_of_customers_staff_and_the_admin_run_without_a_violation(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(services.post_chat_message, order_id=alice_order.pk, sender=alice, text="Hello")
    customer_context = await new_context()
    await customer_context.add_init_script(WATCH_VIOLATIONS)
    login_page = await customer_context.new_page()
    assert await visit(login_page, f"{server.http}/accounts/login/") == []
    customer = await log_in(customer_context, server.http, alice.username)
    for path in ("/orders/", f"/orders/{alice_order.pk}/"):
        assert await visit(customer, server.http + path) == [], path

    staff_context = await new_context()
    await staff_context.add_init_script(WATCH_VIOLATIONS)
    board = await log_in(staff_context, server.http, staff.username)
    assert await visit(board, f"{server.http}/staff/") == []
    admin_context = await new_context()
    await admin_context.add_init_script(WATCH_VIOLATIONS)
    admin = await admin_log_in(admin_context, server.http, staff.username)
    for path in ("/admin/", "/admin/orders/order/", f"/admin/orders/order/{alice_order.pk}/change/",
                 "/admin/orders/order/add/", "/admin/orders/chatmessage/"):
        assert await visit(admin, server.http + path) == [], path

    # The watch itself sees a violation: an inline script is refused on our pages.
    await customer.evaluate("""() => { const s = document.createElement("script");
                                       s.textContent = "window.inlineRan = true"; document.body.append(s); }""")
    await customer.wait_for_function("window.cspViolations.length > 0")
    assert await customer.evaluate("window.inlineRan") is None


async def test_the_api_docs_page_renders_the_api_from_this_site_without_a_violation(
    start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    context = await new_context()
    await context.add_init_script(WATCH_VIOLATIONS)
    foreign: list[str] = []
    context.on("request", lambda request: None if request.url.startswith(server.http) else foreign.append(request.url))
    page = await context.new_page()
    assert await visit(page, f"{server.http}/api/docs") == []
    # Swagger UI drew the document it fetched: the operations of the orders API are on the page.
    await page.wait_for_selector("text=/api/orders/{order_id}/status/")
    assert await page.evaluate("window.cspViolations") == [] and foreign == []
