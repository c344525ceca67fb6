"""`manage.py run_platform` (what `make run` starts) works in both modes, end to end over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.browser_session import BrowserSession
from tests.e2e.processes import ROOT, Server, free_port, own_origins

pytestmark = pytest.mark.e2e


def api(base: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers), timeout=10) as r:
        return json.loads(r.read())


async def change_reaches_customer_socket(server: Server, *, staff_two_factor: bool) -> dict[str, Any]:
    """Log in as the demo customer and staff, open alice's stream, confirm her pending order via the API.

    With `staff_two_factor` (production), staff first set up their authenticator app on the site's login page,
    then send its code to the token endpoint."""
    alice = (await asyncio.to_thread(api, server.http, "/api/auth/token/",
                                     {"username": "alice", "password": "demo-pass-123"}))["access"]
    staff_login = {"username": "staff", "password": "demo-pass-123"}
    if staff_two_factor:
        site = BrowserSession(server.http)
        await asyncio.to_thread(site.log_in, "staff", "demo-pass-123", next_path="/staff/")
        staff_login["otp"] = site.next_code()
    staff = (await asyncio.to_thread(api, server.http, "/api/auth/token/", staff_login))["access"]
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", alice], origin=server.http) as ws:
        orders = (await asyncio.to_thread(api, server.http, "/api/orders/", token=alice))["orders"]
        pending = next(order for order in orders if order["status"] == "pending")
        await asyncio.to_thread(api, server.http, f"/api/orders/{pending['id']}/status/", {"status": "confirmed"},
                                staff)
        # The demo data's own creation events may still be arriving first: wait for ours.
        async with asyncio.timeout(5):
            while True:
                frame = json.loads(await ws.recv())
                if (frame["order_id"], frame["status"]) == (pending["id"], "confirmed"):
                    return frame


def manage(env: dict[str, str], *args: str) -> None:
    import subprocess

    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=120)


async def test_embedded_mode_runs_in_one_process_without_redis_or_postgres(tmp_path: Path,
                                                                            start_process: Any) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "CELERY_BROKER_URL")}
    env["SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    await asyncio.to_thread(manage, env, "migrate", "--noinput")
    await asyncio.to_thread(manage, env, "seed_demo")
    port = free_port()
    server = Server("run-embedded", [sys.executable, "manage.py", "run_platform", "--port", str(port)], env, port)
    start_process(server)
    await asyncio.to_thread(server.wait_ready)
    await change_reaches_customer_socket(server, staff_two_factor=False)
    assert "Embedded mode" in server.log
    assert "celery" not in server.log.lower().split("started", 1)[-1].split("\n", 1)[0]


async def test_production_mode_starts_web_worker_and_beat(platform_env: dict[str, str], start_process: Any) -> None:
    await asyncio.to_thread(manage, platform_env, "seed_demo", "--in-production")
    port = free_port()
    server = Server("run-production", [sys.executable, "manage.py", "run_platform", "--port", str(port)],
                    {**platform_env, **own_origins(port)}, port)
    start_process(server)
    await asyncio.to_thread(server.wait_ready)
    await asyncio.to_thread(server.wait_for_log, "Started web, worker, beat")
    await asyncio.to_thread(server.wait_for_log, "beat: Starting...")
    await change_reaches_customer_socket(server, staff_two_factor=True)
    assert "Embedded mode" not in server.log


