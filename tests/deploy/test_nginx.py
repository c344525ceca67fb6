"""deploy/nginx.conf for real: nginx in front of a real uvicorn, HTTP and a WebSocket through it.

Only the addresses change (loopback ports instead of compose's `web:8000` and port 80); every location and
header is the file's own.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from accounts import tokens
from orders import services
from orders.models import Order
from tests.e2e.processes import Nginx, Process, Server, free_port, own_origins

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


@pytest.fixture
def nginx(start_server: Callable[..., Server], start_process: Callable[..., Process], tmp_path: Path) -> Nginx:
    edge_port = free_port()
    server = start_server(env=own_origins(edge_port))
    return start_process(Nginx(server.port, tmp_path, port=edge_port)).wait_ready()


def test_nginx_config_passes_nginx_own_syntax_check(nginx: Nginx) -> None:
    import subprocess

    result = subprocess.run(["nginx", "-t", "-p", str(nginx.access_log.parent), "-c",
                             str(nginx.access_log.parent / "nginx.conf")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/healthz", "/metrics"])
def test_nginx_answers_404_for_every_probe_which_the_web_process_itself_answers(nginx: Nginx, path: str) -> None:
    # By address, inside the network, each answers (so the 404s below are nginx's, not a missing route).
    assert get(f"{nginx.upstream}{path}")[0] == 200
    for variant in (path, f"{path}?verbose=1", f"/{path}", f"/x/..{path}", path.replace("z", "%7A").replace(
            "s", "%73")):
        for method in ("GET", "HEAD"):
            status, _, body = get(f"{nginx.http}{variant}", method=method)
            assert status == 404, (variant, method, status)
            assert '"db"' not in body and "orders_" not in body


def test_http_through_nginx_carries_one_request_id(nginx: Nginx) -> None:
    status, headers, _ = get(f"{nginx.http}/api/orders/")
    assert status == 401
    request_id = headers["x-request-id"]
    assert len(request_id) == 32, "nginx's $request_id reaches the app, which echoes it"
    for _ in range(50):  # nginx writes the access-log line just after the response has gone out
        logged = [json.loads(line) for line in nginx.access_log.read_text().splitlines()]
        if any(entry["request_id"] == request_id and entry["uri"] == "/api/orders/" for entry in logged):
            break
        time.sleep(0.1)
    assert any(entry["request_id"] == request_id and entry["uri"] == "/api/orders/" for entry in logged), logged


async def test_websocket_through_nginx_gets_the_status_event(
    nginx: Nginx, alice: Any, alice_order: Order, start_worker: Callable[..., Process]
) -> None:
    await asyncio.to_thread(start_worker)
    token = tokens.issue_access_token(alice)
    ws_url = nginx.http.replace("http://", "ws://") + f"/ws/orders/{alice_order.pk}/"
    async with connect(ws_url, subprotocols=["bearer", token], origin=nginx.http) as ws:
        assert ws.subprotocol == "bearer", "the subprotocol answer must survive the proxy"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
        await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=None)
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (frame["type"], frame["order_id"], frame["status"]) == ("order.status", alice_order.pk, "confirmed")


def test_nginx_logs_tracking_links_without_their_token(nginx: Nginx, alice_order: Order) -> None:
    from integrations import tracking

    token = tracking.tracking_token(alice_order)
    assert get(f"{nginx.http}/t/{token}")[0] == 200
    for _ in range(50):  # nginx writes the access-log line just after the response has gone out
        logged = [json.loads(line) for line in nginx.access_log.read_text().splitlines()]
        if any(entry["uri"] == "/t/[redacted]" for entry in logged):
            break
        time.sleep(0.1)
    assert any(entry["uri"] == "/t/[redacted]" for entry in logged), logged
    assert token.rsplit(".", 1)[1] not in nginx.access_log.read_text()
