"""Languages: the customer's pages in English or German (Accept-Language or the visitor's choice), the words the
pages' JavaScript shows, and the committed German catalogue (its .mo compiled from its .po)."""

from __future__ import annotations

import ast
import gettext
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from integrations import tracking
from orders.models import Order
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "de" / "LC_MESSAGES"


def customer_client(user: Any, **headers: str) -> Client:
    client = Client(**headers)
    force_login_verified(client, user)
    return client


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page carries its data"
    return json.loads(match.group(1))


def test_order_page_is_german_for_a_browser_that_asks_for_german(alice: Any, alice_order: Order) -> None:
    html = customer_client(alice, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5").get(
        f"/orders/{alice_order.pk}/").content.decode()
    assert '<html lang="de">' in html
    assert f"Bestellung {alice_order.number}" in html and "Statusverlauf" in html and "Eingegangen" in html
    assert "Status history" not in html
    data = page_data(html)
    assert data["labels"]["shipped"] == "Versandt" and data["labels"]["out_for_delivery"] == "In Zustellung"
    assert data["text"]["live"] == "Live" and data["text"]["reconnecting"] == "Verbinde erneut…"
    assert data["text"]["fresh"] == "Aktuell · geprüft {ago}"


def test_order_page_is_english_without_a_preference(alice: Any, alice_order: Order) -> None:
    html = customer_client(alice).get(f"/orders/{alice_order.pk}/").content.decode()
    assert '<html lang="en">' in html and f"Order {alice_order.number}" in html and "Status history" in html
    assert page_data(html)["labels"]["shipped"] == "Shipped"


def test_the_language_switch_overrides_accept_language(alice: Any, alice_order: Order) -> None:
    client = customer_client(alice, HTTP_ACCEPT_LANGUAGE="de")
    page = f"/orders/{alice_order.pk}/"
    html = client.get(page).content.decode()
    assert 'action="/i18n/setlang/"' in html and '<option value="en" lang="en">English</option>' in html
    response = client.post("/i18n/setlang/", {"language": "en", "next": page})
    assert response.status_code == 302 and response.url == page
    html = client.get(page).content.decode()
    assert '<html lang="en">' in html and "Status history" in html
    assert '<option value="en" lang="en" selected>English</option>' in html


def test_the_language_switch_refuses_a_next_url_off_the_site(alice: Any) -> None:
    response = customer_client(alice).post("/i18n/setlang/", {"language": "de", "next": "https://evil.example/"})
    assert response.status_code == 302 and not response.url.startswith("https://evil.example")


def test_my_orders_and_the_guest_tracking_page_are_german_too(alice: Any, alice_order: Order) -> None:
    german = {"HTTP_ACCEPT_LANGUAGE": "de"}
    mine = customer_client(alice, **german).get("/orders/").content.decode()
    assert "Meine Bestellungen" in mine and "1 Artikel" in mine and "Eingegangen" in mine
    assert page_data(mine)["text"]["offline"] == "Offline"
    guest = Client(**german).get(tracking.tracking_path(alice_order)).content.decode()
    assert f"Bestellung {alice_order.number}" in guest and "Chat" not in guest
    assert page_data(guest)["labels"]["delivered"] == "Zugestellt"
    invalid = Client(**german).get("/t/not-a-token")
    assert invalid.status_code == 404 and "Dieser Sendungslink ist nicht gültig" in invalid.content.decode()


def test_error_pages_and_the_logged_out_page_follow_the_language(alice: Any) -> None:
    client = customer_client(alice, HTTP_ACCEPT_LANGUAGE="de")
    missing = client.get("/orders/999999/")
    assert missing.status_code == 404 and "Seite nicht gefunden" in missing.content.decode()
    out = client.post("/accounts/logout/", follow=True).content.decode()
    assert "Sie sind abgemeldet" in out


def test_the_order_page_has_a_help_line_with_the_support_address(
    alice: Any, alice_order: Order, settings: Any
) -> None:
    settings.SUPPORT_EMAIL = "help@shop.example"
    html = customer_client(alice).get(f"/orders/{alice_order.pk}/").content.decode()
    assert 'Questions about this order? Write to <a href="mailto:help@shop.example">help@shop.example</a>.' in html
    guest = Client().get(tracking.tracking_path(alice_order)).content.decode()
    assert 'href="mailto:help@shop.example"' in guest


def po_entries(path: Path) -> dict[str, tuple[str | None, str]]:
    """msgid -> (msgid_plural or None, msgstr or the singular's msgstr[0]) of a .po file, the header left out."""
    entries: dict[str, tuple[str | None, str]] = {}
    key = ""
    current: dict[str, str] = {}
    for line in [*path.read_text().splitlines(), ""]:
        if not line.strip():
            if current.get("msgid"):
                entries[current["msgid"]] = (current.get("msgid_plural"),
                                             current.get("msgstr", current.get("msgstr[0]", "")))
            current = {}
        elif not line.startswith("#"):
            match = re.match(r'^(msgid|msgid_plural|msgstr|msgstr\[\d\]) (".*")$', line)
            if match:
                key = match.group(1)
                current[key] = ast.literal_eval(match.group(2))
            else:
                current[key] += ast.literal_eval(line)
    return entries


def test_every_german_message_is_translated_and_the_committed_mo_matches_the_po() -> None:
    entries = po_entries(CATALOGUE / "django.po")
    assert len(entries) > 50
    assert [msgid for msgid, (_plural, msgstr) in entries.items() if not msgstr] == []
    with (CATALOGUE / "django.mo").open("rb") as file:
        compiled = gettext.GNUTranslations(file)
    # After editing the .po run `manage.py compilemessages`: a stale .mo fails here (docs/pages.md).
    stale = {msgid: msgstr for msgid, (plural, msgstr) in entries.items()
             if (compiled.ngettext(msgid, plural, 1) if plural else compiled.gettext(msgid)) != msgstr}
    assert stale == {}
    catalog: dict[Any, str] = compiled._catalog
    compiled_ids = {key[0] if isinstance(key, tuple) else key for key in catalog} - {""}
    assert compiled_ids == set(entries), "the .mo has exactly the .po's messages"
