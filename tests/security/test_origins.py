"""Cross-site WebSocket hijacking, against real uvicorn in the embedded mode and in production: a session-cookie
socket needs an allowed origin (scheme, host and port); a token socket may send no Origin; a foreign Origin is
refused whatever the credentials, with an HTTP 403 before the handshake."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from accounts import tokens
from tests.deploy.test_settings import example_env, run_python, settings_of
from tests.e2e.processes import ROOT, Process, Server, free_port
from tests.realtime.sockets import session_cookie
from worker.processes import web_command

pytestmark = pytest.mark.e2e


@dataclass
class Site:
    """A running server and a victim's credentials on it: a session cookie and an access token."""

    server: Server
    session_key: str
    token: str

    def url(self, host: str = "127.0.0.1") -> str:
        return f"ws://{host}:{self.server.port}/ws/notifications/"


EMBEDDED_USER = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from accounts import tokens
user = get_user_model().objects.create_user("victim", password="a-long-enough-password-1")
client = Client()
client.force_login(user)
print(client.cookies["sessionid"].value, tokens.issue_access_token(user))
"""


@pytest.fixture(params=["embedded", "embedded, ALLOWED_HOSTS=*", "production"])
def site(request: Any, transactional_db: None, tmp_path: Path, start_process: Callable[..., Process]) -> Site:
    if request.param == "production":
        server = request.getfixturevalue("start_server")()  # WS_ALLOWED_ORIGINS: its own origins (own_origins)
        alice = request.getfixturevalue("alice")
        return Site(server, session_cookie(alice)[1].decode().split("=", 1)[1], tokens.issue_access_token(alice))
    # The embedded default as `make run` has it: SQLite, no Redis, no origin setting at all; or opened to any Host
    # (to reach a laptop from the LAN), which switched the old origin check off entirely.
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CELERY_BROKER_URL", "ALLOWED_HOSTS")}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), QUIET_EMBEDDED_WARNING="1")
    if request.param.endswith("ALLOWED_HOSTS=*"):
        env["ALLOWED_HOSTS"] = "*"
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    made = subprocess.run([sys.executable, "-c", EMBEDDED_USER], cwd=ROOT, env=env, check=True, capture_output=True,
                          text=True, timeout=60)
    session_key, token = made.stdout.split()
    port = free_port()
    server = start_process(Server(f"embedded-{port}", web_command(port=port), env, port))
    return Site(server.wait_ready(), session_key, token)


async def opens(url: str, *, origin: str | None, cookie: str | None = None, token: str | None = None) -> int:
    """101 if the socket opens and answers a ping as an authenticated one, else the handshake's HTTP status."""
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else None
    try:
        async with connect(url, origin=origin, additional_headers=headers,
                           subprotocols=["bearer", token] if token else None) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_a_page_of_another_origin_cannot_use_the_visitors_session_cookie(site: Site) -> None:
    port = site.server.port
    own = f"http://127.0.0.1:{port}"
    assert await opens(site.url(), origin=own, cookie=site.session_key) == 101, "our own page is served"
    for foreign in ("http://evil.example", f"http://evil.example:{port}", f"http://127.0.0.1:{port + 1}",
                    f"https://127.0.0.1:{port}", "null", f"http://127.0.0.1.evil.example:{port}"):
        assert await opens(site.url(), origin=foreign, cookie=site.session_key) == 403, foreign


async def test_a_session_cookie_socket_without_an_origin_is_refused(site: Site) -> None:
    # Browsers always send Origin; a cookie without one is not a page of ours (and under ALLOWED_HOSTS=* the old
    # check let it through).
    assert await opens(site.url(), origin=None, cookie=site.session_key) == 403


async def test_a_page_on_localhost_is_its_own_origin_not_127_0_0_1s(site: Site) -> None:
    port = site.server.port
    assert await opens(site.url("localhost"), origin=f"http://localhost:{port}", cookie=site.session_key) == 101


async def test_token_sockets_may_send_no_origin_but_never_a_foreign_one(site: Site) -> None:
    port = site.server.port
    assert await opens(site.url(), origin=None, token=site.token) == 101, "native and server clients send none"
    assert await opens(site.url(), origin=f"http://127.0.0.1:{port}", token=site.token) == 101
    for foreign in ("http://evil.example", f"http://127.0.0.1:{port + 1}", "null"):
        assert await opens(site.url(), origin=foreign, token=site.token) == 403, foreign
    # The token decides, not a cookie beside it: a bad token without Origin is closed 4001, the session unused.
    async with connect(site.url(), origin=None, additional_headers={"Cookie": f"sessionid={site.session_key}"},
                       subprotocols=["bearer", "not-a-token"]) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001


# --- The setting ------------------------------------------------------------------------------------------------

def test_the_allowed_origins_default_to_site_urls_origin_and_the_embedded_mode_adds_its_own() -> None:
    values = settings_of(example_env(SITE_URL="https://Orders.example.com:443/shop/"), "WS_ALLOWED_ORIGINS",
                         "WS_ALLOW_OWN_ORIGIN")
    assert values == {"WS_ALLOWED_ORIGINS": ["https://orders.example.com"], "WS_ALLOW_OWN_ORIGIN": False}
    explicit = settings_of(example_env(WS_ALLOWED_ORIGINS="https://orders.example.com, http://localhost:3000"),
                           "WS_ALLOWED_ORIGINS")
    assert explicit == {"WS_ALLOWED_ORIGINS": ["https://orders.example.com", "http://localhost:3000"]}
    embedded = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                "DJANGO_SETTINGS_MODULE": "config.settings", "QUIET_EMBEDDED_WARNING": "1",
                "SQLITE_PATH": "/tmp/edge-origins-never-created.sqlite3", "SECRET_KEY": "x" * 60}
    assert settings_of(embedded, "WS_ALLOWED_ORIGINS", "WS_ALLOW_OWN_ORIGIN") == {
        "WS_ALLOWED_ORIGINS": [], "WS_ALLOW_OWN_ORIGIN": True}


@pytest.mark.parametrize("value", ["*", "orders.example.com", "https://orders.example.com/ws/", "https://*.example.com",
                                   "ftp://orders.example.com", "https://orders.example.com:99999", "null"])
def test_an_allowed_origin_that_is_not_a_full_origin_refuses_to_start(value: str) -> None:
    result = run_python("import django; django.setup()", example_env(WS_ALLOWED_ORIGINS=value))
    assert result.returncode != 0
    assert "WS_ALLOWED_ORIGINS must list full origins" in result.stderr and repr(value) in result.stderr


def test_production_without_any_allowed_origin_says_browsers_sockets_will_be_refused() -> None:
    env = example_env()
    env.pop("SITE_URL")
    result = run_python("import django; django.setup()", env)
    assert result.returncode == 0, result.stderr
    assert "Neither SITE_URL nor WS_ALLOWED_ORIGINS is set" in result.stderr
