"""The probes (/livez, /readyz = /healthz) with Redis and PostgreSQL down or hanging, and the Prometheus metrics
of real web and worker processes in multiprocess mode."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from accounts import tokens
from orders import services
from orders.models import Order
from realtime.health import CACHE_SECONDS
from tests.e2e.processes import RedisServer, Server, free_port
from worker.processes import web_command

pytestmark = pytest.mark.e2e


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), {k.lower(): v for k, v in error.headers.items()}


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text, _ = get(url)
    assert status == 200, text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


HEALTHY = {"db": "ok", "redis": "ok", "channel_layer": "ok"}
# /readyz's checks run side by side, each bounded at 1 s (realtime/health.py); the rest is a loaded machine.
READY_BOUND_SECONDS = 2.5


def timed_get(url: str) -> tuple[int, dict[str, str], float]:
    started = time.monotonic()
    status, body, _ = get(url)
    return status, json.loads(body), time.monotonic() - started


async def ready_again(url: str, timeout: float = 30) -> tuple[int, dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = await asyncio.to_thread(get, url)
        if status == 200 or time.monotonic() > deadline:
            return status, json.loads(body)
        await asyncio.sleep(0.2)


async def test_readyz_and_healthz_answer_503_naming_redis_within_a_bound_and_200_once_it_is_back(
    start_server: Any, start_process: Any, private_redis: RedisServer
) -> None:
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    for path in ("/readyz", "/healthz"):
        status, body, _ = await asyncio.to_thread(get, f"{server.http}{path}")
        assert (status, json.loads(body)) == (200, HEALTHY), path

    private_redis.stop()
    await asyncio.sleep(CACHE_SECONDS + 0.1)  # past the cached answer
    status, report, took = await asyncio.to_thread(timed_get, f"{server.http}/readyz")
    assert status == 503 and took < READY_BOUND_SECONDS, (report, took)
    assert report["db"] == "ok"
    assert report["redis"].startswith("error: ") and report["channel_layer"].startswith("error: ")
    status, same, _ = await asyncio.to_thread(timed_get, f"{server.http}/healthz")
    assert (status, same.keys()) == (503, report.keys()), "/healthz is the ready check under its older name"

    start_process(RedisServer(port=private_redis.port)).wait_ready()
    assert await ready_again(f"{server.http}/readyz") == (200, HEALTHY)


async def test_readyz_answers_within_its_bound_while_redis_hangs(start_server: Any, private_redis: RedisServer) -> None:
    # A stopped (SIGSTOP) Redis accepts connections and never answers: only the checks' own bounds end the wait.
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    assert (await asyncio.to_thread(get, f"{server.http}/readyz"))[0] == 200
    assert private_redis.popen is not None
    os.kill(private_redis.popen.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(CACHE_SECONDS + 0.1)
        for _ in range(3):
            status, report, took = await asyncio.to_thread(timed_get, f"{server.http}/readyz")
            assert status == 503 and took < READY_BOUND_SECONDS, (report, took)
            assert report["redis"] == "error: TimeoutError" and report["db"] == "ok", report
        status, _, took = await asyncio.to_thread(timed_get, f"{server.http}/livez")
        assert status == 200 and took < 1.0
    finally:
        os.kill(private_redis.popen.pid, signal.SIGCONT)
    assert await ready_again(f"{server.http}/readyz") == (200, HEALTHY)


async def test_livez_answers_while_redis_and_postgresql_are_both_down(
    platform_env: dict[str, str], start_process: Any, private_redis: RedisServer
) -> None:
    port = free_port()
    # Nothing listens on the database's port: PostgreSQL is down from the start.
    env = {**platform_env, "REDIS_URL": private_redis.url,
           "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/none"}
    server = start_process(Server(f"uvicorn-{port}", web_command(port=port), env, port))
    await asyncio.to_thread(server.wait_http_ok, f"{server.http}/livez", 30)
    private_redis.stop()
    for _ in range(3):
        status, body, took = await asyncio.to_thread(timed_get, f"{server.http}/livez")
        assert (status, body) == (200, {"status": "ok"}) and took < 1.0
    status, report, took = await asyncio.to_thread(timed_get, f"{server.http}/readyz")
    assert status == 503 and took < READY_BOUND_SECONDS, (report, took)
    assert all(value.startswith("error: ") for value in report.values()), report


def pings(redis_server: RedisServer) -> int:
    stats = redis.Redis.from_url(redis_server.url).info("commandstats")
    return int(stats.get("cmdstat_ping", {}).get("calls", 0))


async def test_readyz_checks_once_per_second_however_many_callers(
    start_server: Any, private_redis: RedisServer
) -> None:
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    assert (await asyncio.to_thread(get, f"{server.http}/readyz"))[0] == 200
    await asyncio.sleep(CACHE_SECONDS + 0.1)
    before = pings(private_redis)
    started = time.monotonic()
    answers = await asyncio.gather(*(asyncio.to_thread(get, f"{server.http}/readyz") for _ in range(40)))
    elapsed = time.monotonic() - started
    assert [status for status, _, _ in answers] == [200] * 40
    checks = pings(private_redis) - before
    # One check per started second of the burst (the answer is kept for 1 s), never one per caller.
    assert 1 <= checks <= 1 + int(elapsed), (checks, elapsed)


async def test_web_and_worker_metrics_count_sockets_frames_events_latency_and_task_outcomes(
    alice: Any, alice_order: Order, start_server: Any, start_worker: Any, tmp_path: Path
) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "worker").mkdir()
    exporter_port = free_port()
    server = await asyncio.to_thread(start_server, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "web")})
    await asyncio.to_thread(start_worker, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "worker"),
                                               "CELERY_METRICS_PORT": str(exporter_port),
                                               "CELERY_METRICS_ADDR": "127.0.0.1"})
    token = tokens.issue_access_token(alice)
    socket_url = f"{server.ws}/ws/orders/{alice_order.pk}/"

    async with connect(socket_url, subprotocols=["bearer", token], origin=server.http) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
        for status in ("confirmed", "preparing"):
            await asyncio.to_thread(services.change_status, order=alice_order, to=status, actor=None)
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert frame["status"] == status
        web = await asyncio.to_thread(samples, f"{server.http}/metrics")
        assert web[("orders_ws_connections", (("endpoint", "order"),))] == 1
        assert web[("orders_ws_frames_sent_total", (("endpoint", "order"),))] == 2  # pong is a reply, not a push
        assert web[("orders_event_delivery_seconds_count", ())] == 2
        assert web[("orders_event_delivery_seconds_bucket", (("le", "+Inf"),))] == 2

    # A task finishes (and counts its outcome) a moment after its frame reached the client.
    worker_url = f"http://127.0.0.1:{exporter_port}/metrics"
    succeeded = ("orders_celery_tasks_total", (("outcome", "succeeded"), ("task", "orders.tasks.send_order_update")))
    worker = await settled(worker_url, succeeded, 2)
    assert worker[succeeded] == 2
    assert worker[("orders_events_published_total", ())] == 2

    web = await settled(f"{server.http}/metrics", ("orders_ws_connections", (("endpoint", "order"),)), 0)
    assert web[("orders_ws_connections", (("endpoint", "order"),))] == 0


async def settled(url: str, key: tuple[str, tuple[tuple[str, str], ...]], value: float) -> dict[Any, float]:
    """The samples once `key` reached `value`, or the last ones after 5 s (the assertion then shows why)."""
    for _ in range(50):
        found = await asyncio.to_thread(samples, url)
        if found.get(key) == value:
            break
        await asyncio.sleep(0.1)
    return found


async def test_json_logs_carry_the_request_id_the_proxy_sent(start_server: Any) -> None:
    server = await asyncio.to_thread(start_server, env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
    status, _, headers = await asyncio.to_thread(
        get, f"{server.http}/api/orders/999999/", {"X-Request-ID": "req-from-nginx-42"})
    assert status == 401
    assert headers["x-request-id"] == "req-from-nginx-42"
    status, _, headers = await asyncio.to_thread(get, f"{server.http}/api/orders/999999/")
    assert len(headers["x-request-id"]) == 32, "without a proxy id the server makes one"

    for _ in range(50):
        lines = [json.loads(line) for line in server.log.splitlines() if line.startswith("{")]
        tagged = [line for line in lines if line.get("request_id") == "req-from-nginx-42"]
        if tagged:
            break
        await asyncio.sleep(0.1)
    assert tagged, server.log[-2000:]
    assert {"time", "level", "logger", "message"} <= set(tagged[0])
