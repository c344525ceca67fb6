"""Staff's second factor in chromium against a real uvicorn: a first login sets up the authenticator app from the
page (QR code and key) under the strict CSP, later logins ask for its code, and replayed or wrong codes are
refused on the page."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.async_api import Page, expect

from tests.browser.test_content_security_policy import WATCH_VIOLATIONS
from tests.helpers import PASSWORD
from tests.twofactor import code_after, code_for_username, key_of_secret

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("collected_static")]


async def type_password(page: Page, username: str) -> None:
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/accounts/login/code/**")


async def type_code(page: Page, code: str) -> None:
    await page.get_by_label("6-digit code").fill(code)
    await page.get_by_role("button", name="Log in").click()


def wait_out_back_off(username: str, timeout: float = 10) -> None:
    """django-otp's device waits a second after a wrong code; a person would wait too."""
    deadline = time.monotonic() + timeout
    while not TOTPDevice.objects.get(user__username=username).verify_is_allowed()[0]:
        assert time.monotonic() < deadline, "the device's back-off did not end"
        time.sleep(0.1)


async def test_staff_set_up_their_app_on_the_first_login_and_log_in_with_its_codes_afterwards(
    staff: Any, start_server: Any, new_context: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    context = await new_context()
    await context.add_init_script(WATCH_VIOLATIONS)
    page = await context.new_page()
    await page.goto(f"{server.http}/staff/")
    await page.wait_for_url("**/accounts/login/?next=/staff/")
    await type_password(page, staff.username)

    await expect(page.get_by_role("heading", name="Set up two-factor login")).to_be_visible()
    await expect(page.locator(".qr-code svg")).to_be_visible()
    assert await page.evaluate("window.cspViolations") == [], "the QR code is not inline script or style"
    key = key_of_secret(await page.locator("#totp-secret").inner_text())
    first_code, step = code_after(key)
    await type_code(page, first_code)
    await page.wait_for_url(f"{server.http}/staff/")
    await expect(page.locator("#connection")).to_have_text("Live")
    admin = await context.new_page()
    await admin.goto(f"{server.http}/admin/")
    await expect(admin.locator("#site-name")).to_be_visible()  # the same verified session opens the admin

    await page.get_by_role("button", name="Log out").click()
    await page.goto(f"{server.http}/staff/")
    await type_password(page, staff.username)
    await expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    await expect(page.locator("#totp-secret")).to_have_count(0)
    await type_code(page, first_code)
    await expect(page.get_by_role("alert")).to_contain_text("That code was already used")
    await asyncio.to_thread(wait_out_back_off, staff.username)
    right = int(await asyncio.to_thread(code_for_username, staff.username))
    await type_code(page, f"{(right + 1) % 1_000_000:06d}")
    await expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    await asyncio.to_thread(wait_out_back_off, staff.username)
    await type_code(page, code_after(key, step)[0])
    await page.wait_for_url(f"{server.http}/staff/")
    await expect(page.locator("#connection")).to_have_text("Live")
