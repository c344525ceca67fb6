"""The published JS client (clients/js/) under Node's own test runner against a real uvicorn and celery worker.

The Node tests (clients/js/test/) drive the platform through a small control server of this test on loopback:
they ask for a customer with an order and a token, status changes (orders.services.change_status, as staff),
a server killed and restarted on its port, frozen and thawed, or a second server with other settings.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.db import connections
from django.test import Client, override_settings

from accounts import tokens
from orders import services
from orders.models import Order
from realtime.views import DOCUMENT_PATH
from tests.e2e.processes import Server
from tests.helpers import make_order, make_user

pytestmark = pytest.mark.e2e

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"
NODE_TIMEOUT = 150


class Platform:
    """What the Node tests may ask for, one request at a time (the control server has one thread)."""

    def __init__(self, staff: Any, start_server: Callable[..., Server]) -> None:
        self.staff = staff
        self.start_server = start_server
        self.server = start_server()
        self.users: dict[str, Any] = {}

    def customer(self, body: dict[str, Any]) -> dict[str, Any]:
        user = make_user(f"js-{uuid.uuid4().hex[:8]}")
        self.users[user.username] = user
        return {"user": user.username, "token": tokens.issue_access_token(user), **self.order({"user": user.username})}

    def order(self, body: dict[str, Any]) -> dict[str, Any]:
        order = make_order(self.users[body["user"]])
        return {"order_id": order.pk, "seq": order.seq}

    def token(self, body: dict[str, Any]) -> dict[str, Any]:
        """An access token, living `lifetime` seconds when asked (the socket closes 4001 `token expired` then)."""
        lifetime = settings.JWT_ACCESS_LIFETIME
        if "lifetime" in body:
            lifetime = timedelta(seconds=body["lifetime"])
        with override_settings(JWT_ACCESS_LIFETIME=lifetime):
            return {"token": tokens.issue_access_token(self.users[body["user"]])}

    def session(self, body: dict[str, Any]) -> dict[str, Any]:
        """A logged-in browser's cookie, and the Origin of a page of the server (WS_ALLOWED_ORIGINS)."""
        browser = Client()
        browser.force_login(self.users[body["user"]])
        return {"cookie": f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}",
                "origin": self.server.http}

    def change(self, body: dict[str, Any]) -> dict[str, Any]:
        event = services.change_status(order=Order.objects.get(pk=body["order_id"]), to=body["to"], actor=self.staff)
        return {"seq": event.seq}

    def seen(self, body: dict[str, Any]) -> dict[str, Any]:
        """The order's delivery receipt as stored (the seen seq its customer's pages acknowledged)."""
        return {"seq": Order.objects.values_list("seen_seq", flat=True).get(pk=body["order_id"])}

    def kill(self, body: dict[str, Any]) -> dict[str, Any]:
        self.server.kill(signal.SIGKILL)
        return {}

    def restart(self, body: dict[str, Any]) -> dict[str, Any]:
        self.server = self.start_server(port=self.server.port)
        return {}

    def freeze(self, body: dict[str, Any]) -> dict[str, Any]:
        self.server.send_signal(signal.SIGSTOP)
        return {}

    def thaw(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.server.alive:
            self.server.send_signal(signal.SIGCONT)
        return {}

    def other_server(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ws": self.start_server(env=body["env"]).ws}


@pytest.fixture
def control(staff: Any, start_server: Callable[..., Server], start_worker: Callable[..., Any]) -> Iterator[
        tuple[Platform, str]]:
    platform = Platform(staff, start_server)
    start_worker()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            action = getattr(platform, self.path.strip("/").replace("-", "_"), None)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)) or b"{}")
            try:
                status, answer = (200, action(body)) if action else (404, {"detail": "no such action"})
            except Exception as error:  # noqa: BLE001 (any failure goes back to the Node test, which fails)
                status, answer = 500, {"detail": repr(error)}
            finally:
                connections.close_all()  # this thread's connection must not outlive the test's database
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield platform, f"http://127.0.0.1:{http.server_address[1]}"
    http.shutdown()
    http.server_close()
    platform.thaw({})  # a failed test may leave the server stopped, and a stopped process ignores SIGTERM


def test_the_js_client_under_nodes_test_runner(control: tuple[Platform, str]) -> None:
    platform, control_url = control
    node = shutil.which("node")
    assert node, "Node.js is needed: run `make test` (scripts/ensure-test-deps)."
    assert (CLIENT / "node_modules" / "ws").is_dir(), "run `make test` (scripts/ensure-test-deps runs npm ci)"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(CLIENT / "test" / "client.test.js"),
         str(CLIENT / "test" / "resume.test.js"), str(CLIENT / "test" / "seen.test.js")],
        env={"PATH": str(Path(node).parent), "CONTROL_URL": control_url, "WS_URL": platform.server.ws},
        capture_output=True, text=True, timeout=NODE_TIMEOUT, cwd=CLIENT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ℹ fail 0" in output and "ℹ pass 0" not in output, output
    assert "ℹ skipped 0" in output and "ℹ todo 0" in output and "ℹ cancelled 0" in output, output


def test_the_type_declarations_compile() -> None:
    node = shutil.which("node")
    assert node
    tsc = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"
    result = subprocess.run([node, str(tsc), "--noEmit", "-p", str(CLIENT)], capture_output=True, text=True,
                            timeout=120, cwd=CLIENT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_declared_frames_are_the_asyncapi_documents() -> None:
    """Every message of realtime/asyncapi.yaml is a type in src/index.d.ts with each of its required fields, and
    the status and error-code unions are the document's enums."""
    declarations = (CLIENT / "src" / "index.d.ts").read_text()
    document = yaml.safe_load(DOCUMENT_PATH.read_text())
    for message in document["components"]["messages"].values():
        payload = message["payload"]
        # The declaration of this frame: the braces around its `type: "<name>"` line.
        found = re.search(r'\{[^{}]*type: "' + re.escape(message["name"]) + r'";[^{}]*(\{[^{}]*\}[^{}]*)*\}',
                          declarations)
        assert found, f"no declared frame for {message['name']}"
        for field in payload["required"]:
            assert re.search(rf"\b{field}\??:", found.group(0)), f"{message['name']} lacks {field}"
    schemas = document["components"]["schemas"]
    for alias, schema in (("Status", "status"), ("ErrorCode", "errorCode")):
        union = re.search(rf"export type {alias} =([^;]*);", declarations)
        assert union
        assert re.findall(r'"([a-z_]+)"', union.group(1)) == schemas[schema]["enum"]
