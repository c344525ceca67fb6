"""Browser fixtures: Debian's chromium driven by Playwright, against real uvicorn and celery processes.

The process fixtures are the end-to-end suite's own (imported, so tests/e2e keeps them); static files are
collected once so whitenoise serves the pages' CSS and JS exactly as in production.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from tests.e2e.processes import ROOT

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
