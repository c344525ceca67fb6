"""Browser helpers: log in through the site's forms as a person would, second factor included; the accessibility
checks every page's test can call (axe-core's WCAG 2.1 AA rules, a visible focus at every Tab stop)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
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


# axe-core from npm (tests/browser/axe/, installed by scripts/ensure-test-deps's `npm ci`), never fetched at test time.
AXE_SOURCE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 level A and AA, nothing else (no best-practice rules, no AAA).
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING_IMPACTS = ("serious", "critical")
RUN_AXE = """(tags) => axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})"""


@functools.cache
def axe_source() -> str:
    if not AXE_SOURCE.exists():
        pytest.fail(f"{AXE_SOURCE} is missing: run scripts/ensure-test-deps (npm ci in tests/browser/axe/).")
    return AXE_SOURCE.read_text(encoding="utf-8")


def accessibility_report(url: str, violations: list[dict[str, Any]]) -> str:
    """One line per failing element: rule, impact, the element's selector and what to fix, and the rule's help."""
    lines = [f"{len(violations)} WCAG 2.1 AA violation(s) on {url}:"]
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


async def assert_accessible(page: Page) -> None:
    """Run axe-core's WCAG 2.1 A/AA rules on the page as it is now and fail on any serious or critical
    violation, with a readable report. Call it after the page has settled (e.g. its indicator says Live).

    The source goes in through page.evaluate (the DevTools protocol's own evaluation), which the site's strict
    Content-Security-Policy does not apply to: a <script> tag with inline content would be refused by
    `script-src 'self'` and would count as a violation in test_content_security_policy.py's watch."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    results = await page.evaluate(RUN_AXE, WCAG_21_AA)
    blocking = [violation for violation in results["violations"] if violation["impact"] in BLOCKING_IMPACTS]
    assert not blocking, accessibility_report(page.url, blocking)


# The focused element's outline and a selector-like name for the report; null at the body or once focus comes
# back to an element already seen (the walk went round).
FOCUSED = """() => { const e = document.activeElement;
  window.focusSeen = window.focusSeen || new WeakSet();
  if (!e || e === document.body || window.focusSeen.has(e)) return null;
  window.focusSeen.add(e);
  const style = getComputedStyle(e);
  const classes = typeof e.className === "string" && e.className
    ? "." + e.className.trim().split(/\\s+/).join(".") : "";
  return {name: e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + classes,
          text: (e.innerText || e.value || "").trim().slice(0, 40), visible: e.matches(":focus-visible"),
          style: style.outlineStyle, width: parseFloat(style.outlineWidth)}; }"""


async def assert_focus_visible(page: Page, *, max_stops: int = 60) -> list[str]:
    """Tab through the page as a keyboard user would (up to `max_stops` stops) and fail if a focused element
    shows no focus ring (WCAG 2.4.7), which axe cannot see. Answers the stops in order, for the caller's checks."""
    # From the top: focus on the body itself (for a moment focusable) makes the next Tab the page's first stop.
    await page.evaluate("""() => { window.focusSeen = new WeakSet(); document.body.tabIndex = -1;
                                   document.body.focus(); document.body.removeAttribute("tabindex"); }""")
    stops: list[str] = []
    unseen: list[str] = []
    for _ in range(max_stops):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        if focused is None:
            break
        stops.append(focused["name"])
        if not (focused["visible"] and focused["style"] not in ("none", "hidden") and focused["width"] >= 2):
            unseen.append(f"  {focused['name']} {focused['text']!r}: outline {focused['style']} {focused['width']}px")
    await page.evaluate("() => document.activeElement?.blur()")
    assert not unseen, f"no visible focus on {page.url}:\n" + "\n".join(unseen)
    return stops
