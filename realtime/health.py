"""`/healthz`: the database, Redis and a channel-layer round trip, each reported by name."""

from __future__ import annotations

import asyncio
import logging

import redis
import redis.sentinel
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0


def check_db() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    timeouts = {"socket_timeout": CHECK_TIMEOUT_SECONDS, "socket_connect_timeout": CHECK_TIMEOUT_SECONDS}
    if settings.REDIS_SENTINELS:
        sentinel_kwargs = {**timeouts, **(settings.REDIS_SENTINEL_HOST["sentinel_kwargs"] or {})}
        sentinel = redis.sentinel.Sentinel(settings.REDIS_SENTINELS, sentinel_kwargs=sentinel_kwargs)
        password = settings.REDIS_PASSWORD or None
        client = sentinel.master_for(settings.REDIS_SENTINEL_MASTER, password=password, **timeouts)
    elif settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, **timeouts)
    else:
        return
    try:
        client.ping()
    finally:
        client.close()


async def check_channel_layer() -> None:
    layer = get_channel_layer()
    # The process's own channel prefix: channels_redis lets one coroutine at a time pop the process's queue and
    # hands out what it pops; a channel under another prefix starves while any open socket holds that turn.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "healthz.ping"})
    message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_SECONDS)
    if message.get("type") != "healthz.ping":
        raise RuntimeError("unexpected message")


async def healthz(request: HttpRequest) -> JsonResponse:
    from asgiref.sync import sync_to_async

    results: dict[str, str] = {}
    for name, check in (("db", sync_to_async(check_db)), ("redis", sync_to_async(check_redis)),
                        ("channel_layer", check_channel_layer)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS + 1)
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001  (a health check reports any failure by name)
            logger.warning("healthz: %s failed: %s", name, exc)
            results[name] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse(results, status=200 if healthy else 503)
