"""The one place the platform's own Redis clients are made: one server or the master the sentinels name, and each
purpose's timeouts in one table. (The channel layer and the Celery broker make their own connections from
settings: CHANNEL_LAYER_HOST and CELERY_BROKER_*.)"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from django.conf import settings
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.retry import Retry

Purpose = Literal["presence", "auth", "health"]

# What each connection tells the server (CLIENT SETINFO), worked out once: left to redis-py, every new connection
# read the package's metadata from disk (~1 ms of CPU each, bench/; a thousand sockets closing at once open a
# thousand layer connections for their group_discards).
DRIVER_INFO = DriverInfo(name="redis-py", lib_version=redis.__version__)


@dataclass(frozen=True)
class Profile:
    """How one purpose talks to Redis: the bound on each connect and each reply (sentinels' too), and whether a
    failed command is tried again (redis-py's default retries) or fails at once."""

    timeout: float
    retry: bool = True
    decode_responses: bool = False


PROFILES: dict[Purpose, Profile] = {
    # Presence: the consumers' joins, leaves and heartbeats, and the reads of Celery tasks and the admin.
    "presence": Profile(timeout=5, decode_responses=True),
    # Login throttles and socket slots: a login waits on them, so an unreachable Redis answers 503 quickly.
    "auth": Profile(timeout=2),
    # /readyz's check (realtime/health.py waits as long for each check): one attempt, a retry would only stretch it.
    "health": Profile(timeout=1.0, retry=False),
}


def _options(profile: Profile) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": profile.timeout, "socket_connect_timeout": profile.timeout,
                               "decode_responses": profile.decode_responses, "driver_info": DRIVER_INFO}
    if not profile.retry:
        options["retry"] = Retry(NoBackoff(), 0)
    return options


def _sentinel_kwargs(profile: Profile) -> dict[str, Any]:
    password = settings.REDIS_SENTINEL_PASSWORD
    return {"socket_timeout": profile.timeout, "socket_connect_timeout": profile.timeout,
            **({"password": password} if password else {})}


def _make(purpose: Purpose, url: str, redis_class: Any, sentinel_class: Any) -> Any:
    profile = PROFILES[purpose]
    if url:
        return redis_class.from_url(url, **_options(profile))
    if settings.REDIS_SENTINELS:
        # Follow the master the sentinels name, and the new one after a failover, as the channel layer and broker do.
        sentinel = sentinel_class(list(settings.REDIS_SENTINELS), sentinel_kwargs=_sentinel_kwargs(profile))
        return sentinel.master_for(settings.REDIS_SENTINEL_MASTER, db=settings.REDIS_SENTINEL_DB,
                                   password=settings.REDIS_PASSWORD or None, **_options(profile))
    if settings.REDIS_URL:
        return redis_class.from_url(settings.REDIS_URL, **_options(profile))
    return None


def redis_client(purpose: Purpose, *, url: str = "") -> redis.Redis | None:
    """A new client (with its own connection pool: keep it) for `purpose`, or None without Redis (embedded mode).

    `url` names a server of the purpose's own (PRESENCE_REDIS_URL); without it, the sentinels' master when
    REDIS_SENTINELS is set, else REDIS_URL.
    """
    client: redis.Redis | None = _make(purpose, url, redis.Redis, redis.sentinel.Sentinel)
    return client


def async_redis_client(purpose: Purpose, *, url: str = "") -> redis.asyncio.Redis | None:
    """The asyncio twin of redis_client(). Its connections belong to the event loop that first uses them: keep one
    client per loop."""
    client: redis.asyncio.Redis | None = _make(purpose, url, redis.asyncio.Redis, redis.asyncio.sentinel.Sentinel)
    return client
