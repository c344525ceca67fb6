"""The WebSocket handshake gate: per-process handshake rate limits, the Origin rule, and no work at all for a
socket that offers no credentials. It runs before authentication (config/asgi.py)."""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.http import parse_cookie
from django.http.request import split_domain_port, validate_host

from config.origins import canonical_origin
from realtime import metrics
from realtime.auth import token_from_scope

logger = logging.getLogger(__name__)

# The protocol's "not authenticated", with the consumers' reason (realtime/consumers.py).
CLOSE_UNAUTHENTICATED, NOT_AUTHENTICATED = 4001, "not authenticated"
# Addresses whose buckets are kept; past this, full (idle) buckets are forgotten, and if most are not idle the
# map is emptied: a flood from that many addresses is held by the total limit, and a map that grew with the
# attacker's address count would be a leak of its own.
MAX_TRACKED_ADDRESSES = 10_000
SESSION_KEY_CHARS = frozenset(VALID_KEY_CHARS)


class TokenBucket:
    """`rate` tokens a second, up to `burst`; each admitted handshake takes one."""

    __slots__ = ("tokens", "at")

    def __init__(self, burst: float, now: float) -> None:
        self.tokens = float(burst)
        self.at = now

    def level(self, rate: float, burst: float, now: float) -> float:
        return min(float(burst), self.tokens + (now - self.at) * rate)

    def take(self, rate: float, burst: float, now: float) -> bool:
        self.tokens, self.at = self.level(rate, burst, now), now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class HandshakeLimiter:
    """Handshakes this process admits per client address and in all: memory only, no I/O, a few dict operations.

    Per process on purpose: it bounds what one server does whatever runs in front of it (or nothing does), and
    nginx's `limit_req` bounds each address across all of them (deploy/app-locations.inc).
    """

    def __init__(self) -> None:
        self.total: TokenBucket | None = None
        self.by_address: dict[str, TokenBucket] = {}

    def refusal(self, address: str, now: float | None = None) -> str | None:
        """None to admit the handshake, else why not (`rate_per_ip` or `rate_total`)."""
        now = time.monotonic() if now is None else now
        rate, burst = settings.WS_HANDSHAKES_PER_SECOND_PER_IP, settings.WS_HANDSHAKE_BURST_PER_IP
        bucket = self.by_address.get(address)
        if bucket is None:
            if len(self.by_address) >= MAX_TRACKED_ADDRESSES:
                self._forget_idle(rate, burst, now)
            bucket = self.by_address[address] = TokenBucket(burst, now)
        if not bucket.take(rate, burst, now):
            return "rate_per_ip"
        total_rate, total_burst = settings.WS_HANDSHAKES_PER_SECOND, settings.WS_HANDSHAKE_BURST
        if self.total is None:
            self.total = TokenBucket(total_burst, now)
        if not self.total.take(total_rate, total_burst, now):
            return "rate_total"
        return None

    def _forget_idle(self, rate: float, burst: float, now: float) -> None:
        # A full bucket admits exactly what a new one would: forgetting it changes nothing.
        self.by_address = {address: bucket for address, bucket in self.by_address.items()
                           if bucket.level(rate, burst, now) < burst}
        if len(self.by_address) > MAX_TRACKED_ADDRESSES // 2:
            # Each clean-up frees at least half, so it costs O(1) per handshake however the flood is spread.
            self.by_address.clear()


def client_address(scope: dict[str, Any]) -> str:
    """The client's IP address as the server saw it (after a trusted proxy's X-Forwarded-For), normalised; any
    value that is not an address is one `invalid` key, never an attacker-chosen one."""
    client = scope.get("client")
    if not client:
        return "unknown"
    try:
        return str(ipaddress.ip_address(client[0]))
    except ValueError:
        return "invalid"


def header(scope: dict[str, Any], name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def own_origin(scope: dict[str, Any]) -> str | None:
    """The origin of the socket's own URL (`http://` + its Host), if ALLOWED_HOSTS accepts that host."""
    host = header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    return canonical_origin(("https://" if scope.get("scheme") == "wss" else "http://") + host)


def origin_allowed(scope: dict[str, Any], *, by_token: bool) -> bool:
    """A foreign Origin is refused whatever the credentials. No Origin at all is what native, mobile and server
    clients send; such a socket may authenticate by a token, never by the session cookie (a browser always
    sends Origin, so a cookie socket without one is not a page of ours)."""
    sent = header(scope, b"origin")
    if sent is None:
        return by_token
    origin = canonical_origin(sent)  # None for "null" (sandboxed frames, file://) and anything malformed
    if origin is None:
        return False
    if origin in settings.WS_ALLOWED_ORIGINS:
        return True
    return settings.WS_ALLOW_OWN_ORIGIN and origin == own_origin(scope)


def session_key_from_scope(scope: dict[str, Any]) -> str | None:
    """The session cookie, if it has the shape of a Django session key (32 of VALID_KEY_CHARS); anything else can
    name no session, so it is not looked up."""
    cookie = header(scope, b"cookie")
    if cookie is None:
        return None
    key = parse_cookie(cookie).get(settings.SESSION_COOKIE_NAME)
    if key is None or len(key) != 32 or not SESSION_KEY_CHARS.issuperset(key):
        return None
    return key


async def deny(scope: dict[str, Any], receive: Any, send: Any, *, status: int, reason: str) -> None:
    """Refuse during the handshake: an HTTP answer with `status` where the server lets the app give one
    (uvicorn's `websocket.http.response`), else the server's own 403."""
    await receive()  # websocket.connect
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close"})
        return
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 429:
        headers.append((b"retry-after", b"1"))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": reason.encode()})


async def refuse_without_credentials(receive: Any, send: Any) -> None:
    """Accept and close with 4001, as a consumer would for an anonymous socket, but with no consumer, no channel
    and no database: the client still learns it must log in (a refused handshake shows only as a failure)."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED, "reason": NOT_AUTHENTICATED})


class HandshakeGate:
    """Every WebSocket handshake passes here first, in this order: the rate limits (cheapest, and they count
    every attempt), the Origin rule, then "offers some credential"; only then authentication and a consumer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limiter = HandshakeLimiter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        refusal = self.limiter.refusal(client_address(scope))
        if refusal is not None:
            metrics.handshake_refused(refusal)
            return await deny(scope, receive, send, status=429, reason="too many handshakes")
        by_token = token_from_scope(scope) is not None
        if not origin_allowed(scope, by_token=by_token):
            metrics.handshake_refused("origin")
            logger.info("WebSocket refused: origin %r not allowed", header(scope, b"origin"))
            return await deny(scope, receive, send, status=403, reason="origin not allowed")
        if not by_token and session_key_from_scope(scope) is None:
            metrics.handshake_refused("no_credentials")
            return await refuse_without_credentials(receive, send)
        return await self.inner(scope, receive, send)
