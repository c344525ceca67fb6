"""A tiny HTTP session that logs into the Django admin and submits its forms as a browser would (CSRF and all)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from html.parser import HTMLParser

from tests.twofactor import code_after, key_of_secret


class FormParser(HTMLParser):
    """Collects the fields of the page's form with id `form_id` (or the first form) as a browser would send them."""

    def __init__(self, form_id: str | None = None) -> None:
        super().__init__()
        self.form_id = form_id
        self.in_form = False
        self.done = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_value: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done and (self.form_id is None or a.get("id") == self.form_id):
            self.in_form = True
        if not self.in_form:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and a.get("name"):
            self._select, self._select_value, self._select_chosen = a["name"], None, False
        elif tag == "option" and self._select is not None:
            # A browser sends the selected option, or the first one when none is marked selected.
            if "selected" in a:
                self._select_value, self._select_chosen = a.get("value", ""), True
            elif self._select_value is None and not self._select_chosen:
                self._select_value = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True
        elif tag == "select" and self._select is not None:
            self.fields.append((self._select, self._select_value or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.lstrip("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data


class BrowserSession:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        # The "authenticator app": the key of the set-up page on a first staff login, and the last step used.
        self.app_key: bytes | None = None
        self.app_step = -1

    def get(self, path: str) -> tuple[int, str]:
        with self.opener.open(self.base_url + path, timeout=10) as response:
            return response.status, response.read().decode()

    def post_form(self, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, str]:
        data = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(self.base_url + path, data=data, headers={"Referer": self.base_url + path})
        with self.opener.open(request, timeout=10) as response:
            return response.status, response.geturl(), response.read().decode()

    def form_fields(self, path: str, form_id: str | None = None) -> list[tuple[str, str]]:
        _status, html = self.get(path)
        parser = FormParser(form_id)
        parser.feed(html)
        return parser.fields

    def admin_login(self, username: str, password: str) -> None:
        """The admin's login link: the site's login page, then for staff the code page, where a first login sets
        up the authenticator app from the key shown (and later logins must be given `code`, see log_in)."""
        self.log_in(username, password, next_path="/admin/")

    def log_in(self, username: str, password: str, *, next_path: str = "/", code: str | None = None) -> str:
        """Log in on the site's pages; answers the final URL. Staff type `code`, or on their first login the code
        of the key the set-up page shows (as an authenticator app would compute it)."""
        path = "/accounts/login/?" + urllib.parse.urlencode({"next": next_path})
        fields = dict(self.form_fields(path, "login-form"))  # not the header's language switch
        fields.update(username=username, password=password)
        _status, url, body = self.post_form(path, list(fields.items()))
        if "/accounts/login/code/" in url:
            shown = re.search(r'id="totp-secret"[^>]*>([^<]+)<', body)
            if code is None and shown is None:
                raise AssertionError(f"{username} has an authenticator app: pass its code")
            parser = FormParser("code-form")
            parser.feed(body)
            fields = dict(parser.fields)
            if code is None:
                self.app_key = key_of_secret(shown.group(1))
                code, self.app_step = code_after(self.app_key)
            fields["code"] = code
            _status, url, body = self.post_form(url.removeprefix(self.base_url), list(fields.items()))
        if "/accounts/login/" in url:
            raise AssertionError(f"login failed for {username}")
        return url

    def next_code(self) -> str:
        """The app's next code (a later login, the token endpoint's "otp")."""
        assert self.app_key is not None, "no authenticator app set up in this session"
        code, self.app_step = code_after(self.app_key, self.app_step)
        return code

    def admin_change_order(self, order_id: int, **changes: str) -> tuple[str, str]:
        """Submit the order's admin change form with `changes`; returns (final URL, page)."""
        path = f"/admin/orders/order/{order_id}/change/"
        fields = [(name, changes.get(name, value)) for name, value in self.form_fields(path, "order_form")]
        _status, url, body = self.post_form(path, fields)
        return url, body
