"""Browser fixtures: Debian's chromium driven by Playwright, against real uvicorn and celery processes.

The process fixtures are the end-to-end suite's own (imported, so tests/e2e keeps them); static files are
collected once so whitenoise serves the pages' CSS and JS exactly as in production.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import PASSWORD
from tests.e2e.conftest import platform_env, start_process, start_server, start_worker  # noqa: F401
from tests.e2e.processes import ROOT
from tests.twofactor import code_after, code_for_username, key_of_secret

CHROMIUM = "/usr/bin/chromium"
# Several engineers' suites share two cores: give waits room. The one timed promise (2 s) sets its own.
expect.set_options(timeout=10_000)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def collected_static() -> None:
    """whitenoise serves STATIC_ROOT (DEBUG off), so the pages' assets must be collected there first."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                   cwd=ROOT, env={**os.environ, "QUIET_EMBEDDED_WARNING": "1"}, check=True, timeout=120)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Playwright's async API: its sync API keeps an event loop running, which Django's ORM refuses."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/ensure-test-deps does).")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """Browser contexts (separate cookie jars: one per person); all closed at teardown."""
    contexts: list[BrowserContext] = []

    async def make(**options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


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
