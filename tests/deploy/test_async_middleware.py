"""The HTTP stack under ASGI (config/middleware.py, config/asgi_handler.py): async end to end, behaving as Django's own.

Django's AsyncClient drives the same async handler uvicorn calls (load_middleware(is_async=True))."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any

import pytest
from django.conf import settings
from django.test import AsyncClient
from django.utils.module_loading import import_string

from accounts.tokens import issue_access_token
from config.middleware import OnTheLoop
from tests.helpers import PASSWORD, make_order, make_user

# Django's deploy checks find these by their dotted paths, so they stay Django's classes (and hop per method).
DJANGO_NAMED = {
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
}


def test_every_middleware_can_run_async_and_the_others_run_their_hooks_on_the_loop() -> None:
    for path in settings.MIDDLEWARE:
        middleware = import_string(path)
        assert getattr(middleware, "async_capable", False), f"{path} would put a sync section in the ASGI stack"
        if path.startswith("django."):
            assert path in DJANGO_NAMED, f"{path}: use its config.middleware subclass"
        elif hasattr(middleware, "process_request") or hasattr(middleware, "process_response"):
            assert issubclass(middleware, OnTheLoop), f"{path} hops to a thread per method"


@pytest.mark.django_db(transaction=True)
async def test_an_api_get_over_asgi_answers_with_the_stacks_headers() -> None:
    from asgiref.sync import sync_to_async

    alice = await sync_to_async(make_user)("alice")
    order = await sync_to_async(make_order)(alice)
    token = await sync_to_async(issue_access_token)(alice)
    response = await AsyncClient().get(f"/api/orders/{order.pk}/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["id"] == order.pk
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Language"]  # LocaleMiddleware ran
    assert "sessionid" not in response.cookies  # nothing touched the session


@pytest.mark.django_db(transaction=True)
async def test_a_session_login_over_asgi_is_saved_and_carries_the_next_request(fast_password_hashing: Any) -> None:
    from asgiref.sync import sync_to_async

    await sync_to_async(make_user)("alice")
    client = AsyncClient()
    login = await client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert login.status_code == 302, login.content[:500]
    assert settings.SESSION_COOKIE_NAME in login.cookies  # the session was saved (the one step on a thread)
    page = await client.get("/orders/")
    assert page.status_code == 200
    assert b"alice" in page.content


async def test_static_files_over_asgi_are_served_whole_as_an_async_stream() -> None:
    expected = (settings.STATIC_ROOT / "css" / "site.css").read_bytes()
    client = AsyncClient()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django warns when it has to consume a sync iterator in a thread
        response = await client.get("/static/css/site.css")
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/css")
        assert b"".join([chunk async for chunk in response.streaming_content]) == expected
        head = await client.head("/static/css/site.css")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(expected))
    missing = await client.get("/static/css/no-such-file.css")
    assert missing.status_code == 404


async def asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET through an ASGI application as uvicorn calls it; its status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), *headers], "client": ("127.0.0.1", 5555),
             "server": ("127.0.0.1", 8000)}
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the handler cancels this when the response is out
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.django_db(transaction=True)
async def test_requests_borrow_long_lived_threads_instead_of_starting_one_each() -> None:
    from asgiref.sync import sync_to_async

    from config.asgi_handler import ReusedThreadsASGIHandler

    alice = await sync_to_async(make_user)("alice")
    order = await sync_to_async(make_order)(alice)
    auth = [(b"authorization", f"Bearer {await sync_to_async(issue_access_token)(alice)}".encode())]
    handler = ReusedThreadsASGIHandler()
    path = f"/api/orders/{order.pk}/"
    assert await asgi_get(handler, path, auth) == 200
    threads = threading.active_count()
    for _ in range(10):
        assert await asgi_get(handler, path, auth) == 200  # the sync view and response.close on a thread
    assert len(handler.idle_executors) == 1, "one request at a time: one thread, reused"
    assert threading.active_count() == threads, "no thread started (or left behind) per request"
    statuses = await asyncio.gather(*[asgi_get(handler, path, auth) for _ in range(3)])
    assert statuses == [200, 200, 200]
    assert len(handler.idle_executors) == 3, "three at once: three threads, all given back"
