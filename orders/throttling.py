"""Login throttling: failed token and refresh attempts counted per username and per client IP; over either
limit the endpoint answers 429 with Retry-After before it checks any password."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.http import HttpRequest

from orders.authstate import auth_state


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after}s")
        self.retry_after = retry_after


def client_ip(request: HttpRequest) -> str:
    # daphne --proxy-headers / uvicorn --proxy-headers put the proxy's X-Forwarded-For here, so the
    # server must only be reachable through that proxy (docs/security.md).
    return request.META.get("REMOTE_ADDR") or "unknown"


def _username_key(username: str) -> str:
    # Hashed: counters must not become a list of the usernames people tried.
    return "login:user:" + hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


def _ip_key(request: HttpRequest) -> str:
    return "login:ip:" + client_ip(request)


def _limits(request: HttpRequest, username: str | None) -> list[tuple[str, int]]:
    limits = [(_ip_key(request), settings.LOGIN_FAILURES_PER_IP)]
    if username is not None:
        limits.append((_username_key(username), settings.LOGIN_FAILURES_PER_USERNAME))
    return limits


def check(request: HttpRequest, *, username: str | None = None) -> None:
    """Raise Throttled when this IP, or attempts on this username, already failed too often."""
    store = auth_state()
    for key, limit in _limits(request, username):
        count, seconds_left = store.peek(key)
        if count >= limit:
            raise Throttled(max(seconds_left, 1))


def record_failure(request: HttpRequest, *, username: str | None = None) -> None:
    store = auth_state()
    for key, _limit in _limits(request, username):
        store.hit(key, settings.LOGIN_THROTTLE_WINDOW_SECONDS)
