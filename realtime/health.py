"""The probes: `/livez` (the process answers, no I/O) and `/readyz` = `/healthz` (the database, Redis and a
channel-layer round trip, checked concurrently, each bounded, the answer kept for a second)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse

from config.redis import PROFILES, redis_client

logger = logging.getLogger(__name__)

# Each check's bound; they run side by side, so /readyz answers within about this long whatever is down, well
# under a probe's timeout (compose and the Kubernetes example in docs/operations.md give 3 s or more).
CHECK_TIMEOUT_SECONDS = PROFILES["health"].timeout
# One check per process per this long, however many callers: a flood of probes costs what one probe does.
CACHE_SECONDS = 1.0
# A check stuck past its bound keeps its thread: one thread per check, so a stuck database never takes the
# Redis check's thread, nor any thread the rest of the process uses.
DB_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-db")
REDIS_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-redis")


def check_db() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()  # a pooled connection goes back to its pool


@lru_cache(maxsize=1)
def check_client() -> redis.Redis | None:
    """The process's one Redis client for the check (a connection pool, reused; one attempt, each step bounded by
    CHECK_TIMEOUT_SECONDS: config/redis.py's "health"), or None without Redis."""
    return redis_client("health")


def check_redis() -> None:
    client = check_client()
    if client is not None:
        client.ping()


async def check_channel_layer() -> None:
    layer = get_channel_layer()
    # The process's own channel prefix: channels_redis lets one coroutine at a time pop the process's queue and
    # hands out what it pops; a channel under another prefix starves while any open socket holds that turn.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("unexpected message")


CHECKS: dict[str, Callable[[], Awaitable[None]]] = {
    "db": sync_to_async(check_db, thread_sensitive=False, executor=DB_THREAD),
    "redis": sync_to_async(check_redis, thread_sensitive=False, executor=REDIS_THREAD),
    "channel_layer": check_channel_layer,
}


async def run_check(name: str) -> str:
    try:
        await asyncio.wait_for(CHECKS[name](), CHECK_TIMEOUT_SECONDS)
        return "ok"
    except Exception as exc:  # noqa: BLE001  (a health check reports any failure by name)
        logger.warning("readyz: %s failed: %r", name, exc)
        return f"error: {type(exc).__name__}"


class Readiness:
    """The last answer and when it was made; callers within CACHE_SECONDS share it, and callers while a check
    runs wait for that one check rather than start another."""

    def __init__(self) -> None:
        self.results: dict[str, str] | None = None
        self.checked_at = 0.0
        self.running: asyncio.Task[dict[str, str]] | None = None

    async def results_now(self) -> dict[str, str]:
        if self.results is not None and time.monotonic() - self.checked_at < CACHE_SECONDS:
            return self.results
        loop = asyncio.get_running_loop()
        if self.running is None or self.running.done() or self.running.get_loop() is not loop:
            self.running = loop.create_task(self._check())
        # shield: a caller that goes away does not cancel the check the others wait for.
        return await asyncio.shield(self.running)

    async def _check(self) -> dict[str, str]:
        outcomes = await asyncio.gather(*(run_check(name) for name in CHECKS))
        self.results, self.checked_at = dict(zip(CHECKS, outcomes, strict=True)), time.monotonic()
        return self.results


READINESS = Readiness()


async def readyz(request: HttpRequest) -> JsonResponse:
    results = await READINESS.results_now()
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(results, status=200 if healthy else 503)


# /healthz is the older name of the ready check, and stays it (docs/protocol.md).
healthz = readyz


def livez(request: HttpRequest) -> JsonResponse:
    """The process is up and its event loop answers: no database, no Redis, nothing that a dependency's blip
    could fail, so a liveness probe never restarts a healthy process."""
    return JsonResponse({"status": "ok"})
