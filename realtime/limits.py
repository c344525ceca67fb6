"""What an open socket must keep earning: a connection slot of its user (capped across all server processes),
credentials that are still good (user active, session or token family not revoked), and its frame budget."""

from __future__ import annotations

import logging
import time
from importlib import import_module
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import DatabaseError
from django.utils.crypto import constant_time_compare

from accounts import tokens, twofactor
from accounts.state import Unavailable, auth_state

logger = logging.getLogger(__name__)

TOO_MANY_CONNECTIONS = "too many connections"


def _slot_key(user_id: int) -> str:
    return f"ws:user:{user_id}"


def _slot_ttl() -> int:
    # A process that dies without closing its sockets frees their slots after a few missed re-checks.
    return 3 * max(settings.WS_REAUTH_INTERVAL_SECONDS, 1)


def take_connection_slot(user_id: int, channel_name: str) -> bool:
    """Hold (or keep holding) one of the user's WS_MAX_CONNECTIONS_PER_USER slots."""
    try:
        return auth_state().slot_take(_slot_key(user_id), channel_name, settings.WS_MAX_CONNECTIONS_PER_USER,
                                      _slot_ttl())
    except Unavailable as exc:
        # The cap protects capacity, not data: without Redis, serve rather than refuse everyone.
        logger.warning("Connection cap not enforced, auth state unavailable: %s", exc)
        return True


def release_connection_slot(user_id: int, channel_name: str) -> None:
    try:
        auth_state().slot_release(_slot_key(user_id), channel_name)
    except Unavailable as exc:
        logger.warning("Connection slot not released (it expires by itself): %s", exc)


# Redis only, no ORM: off the thread that serialises database calls, so a burst of handshakes does not queue.
take_connection_slot_async = sync_to_async(take_connection_slot, thread_sensitive=False)
release_connection_slot_async = sync_to_async(release_connection_slot, thread_sensitive=False)


def still_authorized(scope: dict[str, Any]) -> bool:
    """Whether the socket's user is still active and its token family or login session still exists.

    Only a positive answer that the credentials are gone closes the socket. If the database does not answer,
    the socket was authenticated and stays open until the next re-check asks again.
    """
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return False
    try:
        if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
            return False
        claims = scope.get("token_claims")
        if claims:
            return tokens.family_alive(claims)
        return _session_still_valid(scope, user)
    except DatabaseError as exc:
        logger.warning("Credentials not re-checked, database unavailable: %s", exc)
        return True


def _session_still_valid(scope: dict[str, Any], user: Any) -> bool:
    """Logged out elsewhere, or the password changed: the session no longer names this user; or it is a staff
    session without the second factor."""
    session = scope.get("session")
    if session is None or session.session_key is None:
        return False
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
    if str(fresh.get(SESSION_KEY)) != str(user.pk) or not fresh.get(BACKEND_SESSION_KEY):
        return False
    session_hash = fresh.get(HASH_SESSION_KEY)
    current = get_user_model().objects.get(pk=user.pk)
    if not (session_hash and constant_time_compare(session_hash, current.get_session_auth_hash())):
        return False
    # A staff session that never passed the second factor (from before it, or from a time it was off).
    return twofactor.session_passes(fresh, current)


class FrameBudget:
    """One socket's token bucket: `per_second` client frames a second on average, bursts up to `burst`."""

    def __init__(self, *, per_second: float, burst: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self.allowance = burst
        self.updated_at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.allowance = min(self.burst, self.allowance + (now - self.updated_at) * self.per_second)
        self.updated_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True
