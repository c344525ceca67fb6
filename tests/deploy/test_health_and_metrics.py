"""/healthz with Redis stopped, and the Prometheus metrics of real web and worker processes in multiprocess mode."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from accounts import tokens
from orders import services
from orders.models import Order
from tests.e2e.processes import RedisServer, free_port

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


async def test_healthz_answers_503_naming_redis_and_the_channel_layer_when_redis_stops(
    start_server: Any, private_redis: RedisServer
) -> None:
    server = await asyncio.to_thread(start_server, env={"REDIS_URL": private_redis.url})
    status, body, _ = await asyncio.to_thread(get, f"{server.http}/healthz")
    assert (status, json.loads(body)) == (200, {"db": "ok", "redis": "ok", "channel_layer": "ok"})

    private_redis.stop()
    status, body, _ = await asyncio.to_thread(get, f"{server.http}/healthz")
    report = json.loads(body)
    assert status == 503
    assert report["db"] == "ok"
    assert report["redis"].startswith("error: ") and report["channel_layer"].startswith("error: ")


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
