"""Login throttling: login attempts (API token, site and admin login forms: every `authenticate()`) and refreshes
are counted per username and per client IP before they are checked, and successes are given back; over either
limit no password is checked at all — the token endpoint answers 429 with Retry-After, the login forms say so."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.state import Unavailable, auth_state

logger = logging.getLogger(__name__)


class Throttled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after}s")
        self.retry_after = retry_after


def client_ip(request: HttpRequest) -> str:
    """The client's address, normalised; anything that is not an IP address is the one key `invalid`.

    daphne --proxy-headers / uvicorn --proxy-headers put the proxy's X-Forwarded-For here, and nginx overwrites
    that header with the address it saw (docs/security.md). Validating still matters: a server reached without
    that proxy takes whatever a client wrote, and counters and log lines must never be named by it.
    """
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR") or ""))
    except ValueError:
        return "invalid"


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


def take(request: HttpRequest, *, username: str | None = None) -> None:
    """Count this attempt now, before any password check, and raise Throttled once it is over a limit.

    Counting first, atomically in the store, is what bounds concurrent guesses: checking and counting after the
    password check let 16 simultaneous guesses all be checked against a limit of 5. A success gives it back.
    """
    store = auth_state()
    for key, limit in _limits(request, username):
        count, seconds_left = store.hit(key, settings.LOGIN_THROTTLE_WINDOW_SECONDS)
        if count > limit:
            raise Throttled(seconds_left)


def succeeded(request: HttpRequest, *, username: str | None = None) -> None:
    """The attempt counted by take() succeeded: it is not a failure."""
    store = auth_state()
    for key, _limit in _limits(request, username):
        store.forgive(key)


class LoginThrottleBackend:
    """First in AUTHENTICATION_BACKENDS: every `authenticate()` (token endpoint, site and admin login forms) takes
    its attempt here, and a throttled one stops before any password check.

    Raising PermissionDenied makes Django skip the remaining backends and report a failed login; the request is
    marked, so the login forms say "throttled" rather than "wrong password". It has no `get_user`, on purpose: it
    never logs anyone in, so Django (and `Client.force_login`) never picks it as a session's backend.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **credentials: Any) -> None:
        if request is not None and isinstance(username, str):
            try:
                take(request, username=username)
            except Throttled as exc:
                request.login_refused = exc  # type: ignore[attr-defined]
                raise PermissionDenied("too many failed logins") from None
            except Unavailable as exc:
                # The login forms stay usable without Redis; the token endpoint refuses (503) on seeing this.
                request.login_refused = exc  # type: ignore[attr-defined]
                logger.warning("Login throttle not checked, auth state unavailable: %s", exc)
        return None


def refusal(request: HttpRequest) -> Throttled | Unavailable | None:
    """Why the throttle refused (or could not check) the last `authenticate()` of this request, if it did."""
    return getattr(request, "login_refused", None)


@receiver(user_logged_in, dispatch_uid="accounts.throttling.forgive_successful_login")
def forgive_successful_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    """A form login that succeeded gives back the attempt the backend counted (the API calls succeeded())."""
    if request is not None:
        try:
            succeeded(request, username=user.get_username())
        except Unavailable as exc:
            logger.warning("Successful login not forgiven, auth state unavailable: %s", exc)
