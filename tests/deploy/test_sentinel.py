"""The Redis Sentinel path for real: a private redis-server, a sentinel watching it, and the platform's
channel layer, health check and Celery broker finding the master through the sentinel only."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from realtime.health import CACHE_SECONDS
from tests.e2e.processes import Process, RedisServer, SentinelServer, Server, free_port
from worker.processes import web_command

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
MASTER = "orders-master"


@pytest.fixture
def sentinel_env(private_redis: RedisServer, start_process: Callable[..., Process], platform_env: dict[str, str],
                 tmp_path: Path) -> dict[str, str]:
    sentinel = start_process(SentinelServer(private_redis, tmp_path, MASTER)).wait_ready()
    env = {**platform_env, "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}", "REDIS_SENTINEL_MASTER": MASTER}
    env.pop("REDIS_URL")
    return env


async def test_server_reaches_redis_and_channel_layer_through_the_sentinel(
    sentinel_env: dict[str, str], start_process: Callable[..., Process], private_redis: RedisServer
) -> None:
    port = free_port()
    server = start_process(Server(f"web-{port}", web_command(port=port), sentinel_env, port))
    await asyncio.to_thread(server.wait_ready)  # /healthz answers 200 only when db, redis and layer are ok

    private_redis.stop()
    await asyncio.sleep(CACHE_SECONDS + 0.1)  # past the answer each process keeps for a second
    status, body = await asyncio.to_thread(_get, f"{server.http}/healthz")
    assert status == 503
    assert body["redis"].startswith("error") and body["channel_layer"].startswith("error")
    assert body["db"] == "ok"


def _get(url: str) -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_celery_broker_publishes_to_the_master_the_sentinel_names(
    sentinel_env: dict[str, str], private_redis: RedisServer
) -> None:
    code = ("import django; django.setup()\n"
            "from orders.tasks import send_order_update\n"
            "send_order_update.apply_async(args=[0], queue='sentinel-probe')\n")
    result = subprocess.run([sys.executable, "-c", code], env=sentinel_env, cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    master = redis.Redis.from_url(private_redis.url)
    assert master.llen("sentinel-probe") == 1
    assert json.loads(master.lindex("sentinel-probe", 0))["headers"]["task"] == "orders.tasks.send_order_update"
