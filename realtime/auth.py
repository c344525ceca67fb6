"""WebSocket JWT authentication: `Sec-WebSocket-Protocol: bearer, <jwt>`, or the seed's `?token=<jwt>` where
WS_ALLOW_QUERY_TOKEN allows it (the embedded default; off in production because proxies log URLs); else the
session cookie, looked up off the database thread."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, get_user
from channels.db import DatabaseSyncToAsync, database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from accounts.tokens import InvalidToken, user_for_token

logger = logging.getLogger(__name__)

BEARER_SUBPROTOCOL = "bearer"


# Offered as credentials but never valid: a disabled ?token= still makes the socket anonymous (4001),
# so a client relying on it finds out at once instead of silently falling back to a cookie.
REFUSED = ""


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The JWT the client offered, if any: the subprotocol form wins over the query string."""
    subprotocols: list[str] = scope.get("subprotocols") or []
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    if tokens:
        return tokens[0] if settings.WS_ALLOW_QUERY_TOKEN else REFUSED
    return None


@database_sync_to_async
def authenticate_token(token: str) -> tuple[Any, dict[str, Any] | None]:
    if token == REFUSED:
        logger.info("WebSocket ?token= refused: WS_ALLOW_QUERY_TOKEN is off")
        return AnonymousUser(), None
    try:
        return user_for_token(token)
    except InvalidToken as exc:
        # Log why, never the token itself.
        logger.info("WebSocket token refused: %s", exc)
        return AnonymousUser(), None


# A session socket's session and user are read on threads of their own, never on the one thread that runs every
# consumer's database calls (asgiref's thread-sensitive executor): handshakes with made-up session keys, each an
# indexed miss, then cannot queue ahead of admitted sockets' replays, chat and re-checks (realtime/gate.py bounds
# how many arrive). Each call gives its connection back, as database_sync_to_async does.
SESSION_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ws-session")
get_session_user = DatabaseSyncToAsync(get_user.func, thread_sensitive=False, executor=SESSION_THREADS)


class SessionAuthMiddleware(AuthMiddleware):
    """channels' AuthMiddleware, its lookup on SESSION_THREADS."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await get_session_user(scope)  # noqa: SLF001 - as channels does itself


class JWTAuthMiddleware:
    """Sets scope["user"] from a JWT when the client sent one; otherwise from the session cookie (channels'
    AuthMiddlewareStack).

    A client that offered credentials and got them wrong is anonymous (and is closed with 4001),
    even if it also carries a session cookie: explicit credentials decide. So a token socket never loads a
    session, which saves it a thread hop at connect and the session objects for as long as it is open.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.session_auth = CookieMiddleware(SessionMiddleware(SessionAuthMiddleware(inner)))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = token_from_scope(scope)
        if token is None:
            return await self.session_auth(scope, receive, send)
        user, claims = await authenticate_token(token)
        return await self.inner(dict(scope, user=user, token_claims=claims), receive, send)
