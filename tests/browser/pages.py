"""Browser helpers: log in through the site's forms as a person would, second factor included."""

from __future__ import annotations

import asyncio

from playwright.async_api import BrowserContext, Page

from tests.helpers import PASSWORD
from tests.twofactor import code_after, code_for_username, key_of_secret


async def log_in(context: BrowserContext, base_url: str, username: str, *, start: str = "/accounts/login/") -> Page:
    """Log in through the site's login form, as a person would; staff then type their authenticator app's code
    (setting the app up from the page on their first login). Returns the page it lands on."""
    page = await context.new_page()
    await page.goto(base_url + start)
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(lambda url: "/accounts/login/" not in url or "/accounts/login/code/" in url)
    if "/accounts/login/code/" in page.url:
        await enter_code(page, username)
    return page


async def enter_code(page: Page, username: str) -> None:
    """The code page: on a first login, add the key shown there to the "app" (compute its code); later, the code
    of the app set up before."""
    shown_secret = page.locator("#totp-secret")
    if await shown_secret.count():
        code, _step = code_after(key_of_secret(await shown_secret.inner_text()))
    else:
        code = await asyncio.to_thread(code_for_username, username)
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(lambda url: "/accounts/login/" not in url)


async def admin_log_in(context: BrowserContext, base_url: str, username: str) -> Page:
    """The admin's login link, which logs in on the site's pages and comes back to the admin."""
    page = await log_in(context, base_url, username, start="/admin/login/")
    await page.wait_for_url(lambda url: "/admin/" in url)
    return page
