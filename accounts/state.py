"""Short-lived security state every server process shares: login-failure counters and WebSocket connection
slots — in Redis, or in this process's memory in the embedded (one-process) mode.

Only what can be lost: an empty Redis forgets some counted failures and held slots, both rebuilt within
minutes. What must survive (refresh-token families) is in the database (accounts.models)."""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from typing import Protocol

import redis
from django.conf import settings

from config.redis import redis_client


class Unavailable(Exception):
    """The store did not answer: the token endpoint's login refuses (503); the rest carries on without it."""


class AuthState(Protocol):
    def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one event in a fixed window; the count so far and the seconds until the window ends."""

    def forgive(self, key: str) -> None:
        """Take back one counted event (an attempt that turned out to succeed)."""

    def slot_take(self, key: str, member: str, limit: int, ttl: int) -> bool:
        """Hold one of `limit` slots (kept for `ttl` seconds unless refreshed); False when all are held."""

    def slot_release(self, key: str, member: str) -> None: ...


def _key(*parts: str) -> str:
    # Read per call: tests give each test its own prefix, like the channel layer's.
    return ":".join((settings.AUTH_STATE_PREFIX, *parts))


# Each script runs atomically in Redis, so two processes racing on one counter or one slot set agree.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}
"""
_FORGIVE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n
"""
_SLOT_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisAuthState:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._hit = self.client.register_script(_HIT)
        self._forgive = self.client.register_script(_FORGIVE)
        self._slot_take = self.client.register_script(_SLOT_TAKE)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        try:
            count, ttl = self._hit(keys=[_key("count", key)], args=[window])
        except redis.RedisError as exc:
            raise Unavailable(str(exc)) from exc
        return int(count), max(int(ttl), 1)

    def forgive(self, key: str) -> None:
        try:
            self._forgive(keys=[_key("count", key)])
        except redis.RedisError as exc:
            raise Unavailable(str(exc)) from exc

    def slot_take(self, key: str, member: str, limit: int, ttl: int) -> bool:
        now = time.time()
        try:
            taken = self._slot_take(keys=[_key("slots", key)], args=[member, limit, now, now + ttl, ttl])
        except redis.RedisError as exc:
            raise Unavailable(str(exc)) from exc
        return bool(taken)

    def slot_release(self, key: str, member: str) -> None:
        try:
            self.client.zrem(_key("slots", key), member)
        except redis.RedisError as exc:
            raise Unavailable(str(exc)) from exc


class MemoryAuthState:
    """The same answers for the embedded mode, where one process is the whole platform."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, tuple[object, float]] = {}

    def _get(self, key: str) -> object | None:
        value, expires_at = self._values.get(key, (None, 0.0))
        return value if expires_at > time.monotonic() else None

    def _set(self, key: str, value: object, ttl: float) -> None:
        self._values[key] = (value, time.monotonic() + ttl)

    def _ttl(self, key: str) -> int:
        return max(int(self._values.get(key, (None, 0.0))[1] - time.monotonic() + 0.999), 0)

    def hit(self, key: str, window: int) -> tuple[int, int]:
        with self._lock:
            key = _key("count", key)
            count = self._get(key)
            if count is None:
                self._set(key, 1, window)
                return 1, window
            self._values[key] = (int(count) + 1, self._values[key][1])  # type: ignore[call-overload]
            return int(count) + 1, max(self._ttl(key), 1)  # type: ignore[call-overload]

    def forgive(self, key: str) -> None:
        with self._lock:
            key = _key("count", key)
            count = self._get(key)
            if count:
                self._values[key] = (int(count) - 1, self._values[key][1])  # type: ignore[call-overload]

    def slot_take(self, key: str, member: str, limit: int, ttl: int) -> bool:
        with self._lock:
            key = _key("slots", key)
            now = time.monotonic()
            slots: dict[str, float] = {m: t for m, t in (self._get(key) or {}).items() if t > now}  # type: ignore[attr-defined]
            if member not in slots and len(slots) >= limit:
                return False
            slots[member] = now + ttl
            self._set(key, slots, ttl)
            return True

    def slot_release(self, key: str, member: str) -> None:
        with self._lock:
            slots = self._get(_key("slots", key))
            if isinstance(slots, dict):
                slots.pop(member, None)


@lru_cache(maxsize=4)
def _store_for(url: str, sentinels: tuple[tuple[str, int], ...]) -> AuthState:
    # Keyed by the settings it is made from, so a test (or a process) that changes them gets a store of its own.
    client = redis_client("auth")
    return RedisAuthState(client) if client is not None else MemoryAuthState()


def auth_state() -> AuthState:
    """Redis when REDIS_URL or REDIS_SENTINELS is set (every process sees the same state), else this
    process's memory (the embedded mode is one process)."""
    sentinels = tuple((host, int(port)) for host, port in settings.REDIS_SENTINELS)
    return _store_for(settings.REDIS_URL, sentinels)
