"""Every page of the site passes axe-core's WCAG 2.1 A and AA rules (no serious or critical violation) at phone
and desktop widths, in Debian's chromium against a real uvicorn: as it looks once its scripts have run, with
the states that add colour (a changed row on the board, unread chats, form errors).

Not checked here, because the site does not write them: the API docs at /api/docs (Swagger UI's own page and
styles, vendored by django-ninja) and the Django admin (Django's own templates).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.template.loader import render_to_string
from playwright.async_api import Page, Route, expect

from integrations import tracking
from orders import services
from orders.models import ChatMessage, Order, OrderItem
from tests.browser.pages import assert_accessible, assert_focus_visible, enter_code
from tests.browser.test_content_security_policy import WATCH_VIOLATIONS
from tests.helpers import PASSWORD, make_user
from tests.twofactor import enrol

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]

# 320 CSS px: the width WCAG's reflow criterion (1.4.10) names, narrower than the screenshots' 390.
PHONE = {"width": 320, "height": 640}
DESKTOP = {"width": 1280, "height": 720}
WIDTHS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
CHAT_MESSAGES = 16
SUPPORT = {"SUPPORT_EMAIL": "help@shop.example"}  # so the order page's help line is on the page


def lived_in_order(alice: Any, staff: Any) -> Order:
    """An order part-way through (progress steps done and current, a history), with items and a chat both ways."""
    order = Order.objects.create(customer=alice, shipping_address="12 Harbour Road\nBristol BS1 4QA")
    OrderItem.objects.create(order=order, name="Espresso beans 1 kg", quantity=2, unit_price="24.90")
    for status in ("confirmed", "preparing"):
        services.change_status(order=order, to=status, actor=staff)
    # Enough messages that the chat log scrolls: a scrolling region must be reachable by keyboard.
    for number in range(CHAT_MESSAGES // 2):
        ChatMessage.objects.create(order=order, sender=alice, text=f"Could the courier leave it outside? ({number})")
        ChatMessage.objects.create(order=order, sender=staff, text=f"Of course, I have added a note. ({number})")
    return order


async def open_page(page: Page, url: str, status: int = 200) -> None:
    response = await page.goto(url)
    assert response is not None and response.status == status, url


# The outermost elements that reach past the viewport's right edge, for the reflow failure's report.
TOO_WIDE = """() => [...document.querySelectorAll("main *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter((e) => !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 0.5))
  .slice(0, 5)
  .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}`
              + ` (${Math.round(e.getBoundingClientRect().width)} px)`)"""


async def new_page(new_context: Any, **options: Any) -> Page:
    """A page in its own context that records Content-Security-Policy violations from the start."""
    context = await new_context(**options)
    await context.add_init_script(WATCH_VIOLATIONS)
    return await context.new_page()


async def check(page: Page) -> None:
    """The shared WCAG checks (axe's rules, a visible focus at every Tab stop), and reflow (1.4.10): nothing
    scrolls sideways, down to 320 CSS px."""
    await assert_accessible(page)
    await assert_focus_visible(page)
    assert await page.evaluate("window.cspViolations") == [], "the checks ran under the site's CSP, untouched"
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
        f"{page.url} scrolls sideways at {page.viewport_size}; too wide: {await page.evaluate(TOO_WIDE)}"


async def type_password(page: Page, username: str, password: str = PASSWORD) -> None:
    """The login form by its ids: its labels are in the browser's language."""
    await page.locator("#id_username").fill(username)
    await page.locator("#id_password").fill(password)
    await page.locator("#login-form button[type=submit]").click()


@WIDTHS
async def test_a_customers_pages_pass_wcag_21_aa(
    viewport: dict[str, int], alice: Any, staff: Any, bob_order: Order, start_server: Any, new_context: Any
) -> None:
    order = await asyncio.to_thread(lived_in_order, alice, staff)
    server = await asyncio.to_thread(start_server, env=SUPPORT)
    page = await new_page(new_context, viewport=viewport)

    await open_page(page, f"{server.http}/accounts/login/")
    await check(page)
    await type_password(page, alice.username, "not-the-password")  # the form with its error
    await expect(page.locator(".form-error")).to_be_visible()
    await check(page)
    await type_password(page, alice.username)
    await page.wait_for_url(f"{server.http}/orders/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await check(page)

    await open_page(page, f"{server.http}/orders/{order.pk}/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#chat-log li")).to_have_count(CHAT_MESSAGES)
    await expect(page.locator("#freshness")).not_to_be_empty()
    await expect(page.locator("#help-line")).to_be_visible()
    await check(page)
    # The chat log scrolls: a keyboard reaches it and scrolls it (WCAG 2.1.1).
    assert "ol#chat-log.chat-log" in await assert_focus_visible(page)
    log = page.locator("#chat-log")
    await log.evaluate("log => { log.scrollTop = 0; }")
    await log.focus()
    await page.keyboard.press("PageDown")
    await page.wait_for_function("() => document.getElementById('chat-log').scrollTop > 0")
    await page.get_by_role("button", name="Send").click()  # empty: the browser's own required-field message
    await check(page)

    await open_page(page, f"{server.http}/staff/", status=403)
    await check(page)
    await open_page(page, f"{server.http}/orders/{bob_order.pk}/", status=404)
    await check(page)

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="You are logged out")).to_be_visible()
    await check(page)


@WIDTHS
async def test_the_staff_pages_pass_wcag_21_aa(
    viewport: dict[str, int], alice: Any, staff: Any, start_server: Any, start_worker: Any, new_context: Any
) -> None:
    order = await asyncio.to_thread(lived_in_order, alice, staff)
    newcomer = await asyncio.to_thread(make_user, "newcomer", is_staff=True)
    await asyncio.to_thread(enrol, staff)
    server = await asyncio.to_thread(start_server, env=SUPPORT)
    await asyncio.to_thread(start_worker)

    # A first login sets up the authenticator app: the page with the QR code and the key.
    enrolling = await new_page(new_context, viewport=viewport)
    await open_page(enrolling, f"{server.http}/accounts/login/")
    await type_password(enrolling, newcomer.username)
    await expect(enrolling.get_by_role("heading", name="Set up two-factor login")).to_be_visible()
    await check(enrolling)

    # Later logins ask for the app's code. In German: the header follows, the English-only pages say so.
    page = await new_page(new_context, viewport=viewport, locale="de-DE")
    await open_page(page, f"{server.http}/accounts/login/")
    await type_password(page, staff.username)
    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert (await page.get_attribute("html", "lang"), await page.get_attribute("main", "lang")) == ("de", "en")
    await check(page)
    await enter_code(page, staff.username)

    await page.wait_for_url(f"{server.http}/staff/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    # A change while the board is open: its row highlighted, and the customer's unread message counted.
    await asyncio.to_thread(services.change_status, order=order, to="shipped", actor=staff)
    row = page.locator(f'#board-body tr[data-order-id="{order.pk}"]')
    await expect(row).to_have_class("changed")
    await asyncio.to_thread(services.post_chat_message, order_id=order.pk, sender=alice, text="Any news?")
    await expect(row.locator(".unread-count")).to_have_text("1")
    await check(page)

    await open_page(page, f"{server.http}/orders/{order.pk}/")  # the order page as staff see it
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#chat-log li")).to_have_count(CHAT_MESSAGES + 1)
    await check(page)


@WIDTHS
async def test_a_tracking_link_and_the_pages_without_a_login_pass_wcag_21_aa(
    viewport: dict[str, int], alice: Any, staff: Any, start_server: Any, new_context: Any
) -> None:
    order = await asyncio.to_thread(lived_in_order, alice, staff)
    path = await asyncio.to_thread(tracking.tracking_path, order)
    server = await asyncio.to_thread(start_server, env=SUPPORT)
    for locale in ("en-GB", "de-DE"):
        page = await new_page(new_context, viewport=viewport, locale=locale)
        await open_page(page, server.http + path)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        await expect(page.locator("#freshness")).not_to_be_empty()
        await check(page)

    await open_page(page, f"{server.http}/t/not-a-valid-token", status=404)
    await check(page)
    await open_page(page, f"{server.http}/no-such-page/", status=404)
    await check(page)

    # The 500 page needs a server error to be seen; the browser gets the template Django's handler renders (no
    # request context), served at the site's own address so its stylesheet loads from the real server.
    error_page = await asyncio.to_thread(render_to_string, "500.html")

    async def serve_error_page(route: Route) -> None:
        await route.fulfill(status=500, content_type="text/html; charset=utf-8", body=error_page)

    await page.route(f"{server.http}/server-error-preview/", serve_error_page)
    await open_page(page, f"{server.http}/server-error-preview/", status=500)
    await expect(page.get_by_role("heading", name="Something went wrong")).to_be_visible()
    await check(page)


async def test_the_check_fails_on_a_serious_violation_and_names_the_rule_the_element_and_the_fix(
    start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    page = await new_page(new_context, viewport=DESKTOP)
    await open_page(page, f"{server.http}/accounts/login/")
    # What a careless edit could do: the password field loses its label, the brand link its words.
    await page.evaluate("""() => { document.querySelector('label[for="id_password"]').remove();
                                   document.querySelector('.brand').textContent = ''; }""")
    with pytest.raises(AssertionError) as failure:
        await assert_accessible(page)
    report = str(failure.value)
    assert f"on {server.http}/accounts/login/" in report
    assert "- label (critical): Form elements must have labels" in report
    assert "    #id_password: Fix any of the following:" in report
    assert "- link-name (serious): Links must have discernible text" in report
    assert "    .brand:" in report


async def test_the_focus_check_fails_on_an_element_without_a_focus_ring(start_server: Any, new_context: Any) -> None:
    server = await asyncio.to_thread(start_server)
    page = await new_page(new_context, viewport=DESKTOP)
    await open_page(page, f"{server.http}/accounts/login/")
    stops = await assert_focus_visible(page)
    assert stops[:4] == ["a.skip-link", "a.brand", "select#language-choice", "button.link-button"], stops
    assert "input#id_username" in stops and "button.button" in stops
    await page.evaluate("() => { document.querySelector('.brand').style.outline = 'none'; }")
    with pytest.raises(AssertionError, match=r"no visible focus on .*\n  a.brand 'Order tracking': outline none"):
        await assert_focus_visible(page)


async def test_the_reflow_check_names_what_is_too_wide(start_server: Any, new_context: Any) -> None:
    server = await asyncio.to_thread(start_server)
    page = await new_page(new_context, viewport=PHONE)
    await open_page(page, f"{server.http}/accounts/login/")
    await check(page)
    await page.evaluate("""() => { const wide = document.createElement("p"); wide.id = "too-wide";
                                   wide.style.width = "600px"; wide.textContent = "wide";
                                   document.querySelector("main").append(wide); }""")
    too_wide = r"scrolls sideways at .*'width': 320.*too wide: \['p#too-wide \(600 px\)'\]"
    with pytest.raises(AssertionError, match=too_wide):
        await check(page)
