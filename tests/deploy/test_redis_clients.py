"""config/redis.py, the one Redis client factory: each purpose reaches REDIS_URL (or its own URL, or the master the
sentinels name) with its own bounds, and the embedded mode gets none."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from accounts.state import RedisAuthState, auth_state
from config.redis import PROFILES, async_redis_client, redis_client
from realtime import presence
from tests.e2e.holds import SilentSmtpServer
from tests.e2e.processes import Process, RedisServer, SentinelServer

MASTER = "factory-master"


def key() -> str:
    return f"test-factory-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("purpose", list(PROFILES))
def test_each_purpose_reaches_redis_url_with_its_own_timeouts(purpose: Any, settings: Any) -> None:
    client = redis_client(purpose)
    assert client is not None
    name = key()
    client.set(name, "v", ex=60)
    assert redis.Redis.from_url(settings.REDIS_URL).get(name) == b"v"
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (PROFILES[purpose].timeout,) * 2


def test_presence_answers_strings_the_others_bytes() -> None:
    name = key()
    presence_client, auth_client = redis_client("presence"), redis_client("auth")
    assert presence_client is not None and auth_client is not None
    presence_client.set(name, "v", ex=60)
    assert (presence_client.get(name), auth_client.get(name)) == ("v", b"v")


async def test_the_async_client_reaches_the_same_server(settings: Any) -> None:
    client = async_redis_client("presence")
    assert client is not None
    name = key()
    await client.set(name, "v", ex=60)
    assert redis.Redis.from_url(settings.REDIS_URL).get(name) == b"v"
    await client.aclose()


def test_a_purpose_url_wins_over_redis_url(private_redis: RedisServer) -> None:
    client = redis_client("presence", url=private_redis.url)
    assert client is not None
    client.set("only-here", "v")
    assert redis.Redis.from_url(private_redis.url).get("only-here") == b"v"


def test_the_embedded_mode_has_no_client(settings: Any) -> None:
    settings.REDIS_URL, settings.REDIS_SENTINELS = "", []
    assert redis_client("auth") is None and async_redis_client("presence") is None


def test_the_health_client_gives_up_after_one_unanswered_attempt(settings: Any) -> None:
    """A Redis that accepts and never answers: the ready check fails within its bound, and never tries again."""
    with SilentSmtpServer() as silent:
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.port}/0"
        client = redis_client("health")
        assert client is not None
        with pytest.raises(redis.TimeoutError):
            client.ping()
        assert silent.accepted == 1


def test_the_auth_client_times_out_on_a_redis_that_never_answers(settings: Any) -> None:
    with SilentSmtpServer() as silent:
        settings.REDIS_URL = f"redis://127.0.0.1:{silent.port}/0"
        client = redis_client("auth")
        assert client is not None
        with pytest.raises(redis.TimeoutError):
            client.get("anything")


@pytest.fixture
def through_sentinel(private_redis: RedisServer, start_process: Callable[..., Process], tmp_path: Path,
                     settings: Any) -> RedisServer:
    """Settings that reach Redis only through a sentinel watching private_redis."""
    sentinel = start_process(SentinelServer(private_redis, tmp_path, MASTER)).wait_ready()
    settings.REDIS_URL, settings.PRESENCE_REDIS_URL = "", ""
    settings.REDIS_SENTINELS, settings.REDIS_SENTINEL_MASTER = [("127.0.0.1", sentinel.port)], MASTER
    return private_redis


def test_every_purpose_finds_the_master_through_the_sentinel(through_sentinel: RedisServer) -> None:
    master = redis.Redis.from_url(through_sentinel.url)
    for purpose in PROFILES:
        client = redis_client(purpose)
        assert client is not None
        client.set(f"via-sentinel-{purpose}", "v")
        assert master.get(f"via-sentinel-{purpose}") == b"v"
        assert client.connection_pool.connection_kwargs["socket_timeout"] == PROFILES[purpose].timeout


async def test_the_async_client_finds_the_master_through_the_sentinel(through_sentinel: RedisServer) -> None:
    client = async_redis_client("presence")
    assert client is not None
    await client.set("via-sentinel-async", "v")
    assert await asyncio.to_thread(redis.Redis.from_url(through_sentinel.url).get, "via-sentinel-async") == b"v"
    await client.aclose()


def test_auth_state_and_presence_live_on_the_sentinels_master(through_sentinel: RedisServer, settings: Any) -> None:
    master = redis.Redis.from_url(through_sentinel.url, decode_responses=True)
    state = auth_state()
    assert isinstance(state, RedisAuthState)
    assert state.hit("login:alice", 60) == (1, 60)
    assert master.get(f"{settings.AUTH_STATE_PREFIX}:count:login:alice") == "1"
    store = presence.store()
    assert isinstance(store, presence.RedisStore)
    store.run("order:1", "join", "1:channel", presence.clock(), "{}")
    assert master.zrange(f"{settings.PRESENCE_KEY_PREFIX}:order:1", 0, -1) == ["1:channel"]
