"""Login throttling: failed logins (API token, site and admin login forms: every `authenticate()`) and failed
refreshes are counted per username and per client IP; over either limit no password is checked at all —
the token endpoint answers 429 with Retry-After, the login forms refuse the credentials."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from orders.authstate import Unavailable, auth_state

logger = logging.getLogger(__name__)


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


class LoginThrottleBackend:
    """First in AUTHENTICATION_BACKENDS: a throttled attempt stops `authenticate()` before any password check.

    Raising PermissionDenied makes Django skip the remaining backends and report a failed login. It has no
    `get_user`, on purpose: it never logs anyone in, so Django (and `Client.force_login`) never picks it as a
    session's backend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **credentials: Any) -> None:
        if request is not None and isinstance(username, str):
            try:
                check(request, username=username)
            except Throttled:
                raise PermissionDenied("too many failed logins") from None
            except Unavailable as exc:
                # The login forms stay usable without Redis (the token endpoint answers 503 itself).
                logger.warning("Login throttle not checked, auth state unavailable: %s", exc)
        return None


@receiver(user_login_failed, dispatch_uid="orders.throttling.count_failed_login")
def count_failed_login(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                       **kwargs: Any) -> None:
    """Every failed `authenticate()` counts, whichever form or endpoint called it."""
    username = credentials.get("username")
    if request is not None and isinstance(username, str):
        try:
            record_failure(request, username=username)
        except Unavailable as exc:
            logger.warning("Failed login not counted, auth state unavailable: %s", exc)
