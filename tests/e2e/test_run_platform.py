"""`manage.py run_platform` (what `make run` starts) works in both modes, end to end over real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.e2e.browser_session import BrowserSession
from tests.e2e.processes import ROOT, Server, free_port, own_origins
from tests.e2e.resuming_client import in_thread

pytestmark = pytest.mark.e2e


def api(base: str, path: str, body: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers), timeout=10) as r:
        return json.loads(r.read())


# One step forward along the state machine, for whichever demo order is still open.
NEXT = {"pending": "confirmed", "confirmed": "preparing", "preparing": "shipped", "shipped": "out_for_delivery",
        "out_for_delivery": "delivered"}


async def change_reaches_customer_socket(server: Server, *, staff_two_factor: bool) -> dict[str, Any]:
    """Log in as the demo customer and staff, open alice's stream, move one of her orders a step on via the API.

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
        order = next(order for order in orders if order["status"] in NEXT)
        await asyncio.to_thread(api, server.http, f"/api/orders/{order['id']}/status/",
                                {"status": NEXT[order["status"]]}, staff)
        # The demo data's own creation events may still be arriving first: wait for ours.
        async with asyncio.timeout(15):
            while True:
                frame = json.loads(await ws.recv())
                if (frame["order_id"], frame["status"]) == (order["id"], NEXT[order["status"]]):
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
    await asyncio.to_thread(server.wait_for_log, "Started web (pid")
    assert re.search(r"Started web \(pid \d+\), worker \(pid \d+\), beat \(pid \d+\)", server.log)
    await asyncio.to_thread(server.wait_for_log, "beat: Starting...")
    await change_reaches_customer_socket(server, staff_two_factor=True)
    assert "Embedded mode" not in server.log


def child_pid(log: str, name: str) -> int:
    """The pid run_platform last reported for a child ("Started web (pid 1), …" or "Restarted worker (pid 2, …")."""
    return int(re.findall(rf"\b{name} \(pid (\d+)", log)[-1])


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def gone(pid: int) -> bool:
    """The process exited and was reaped (a zombie still has /proc/<pid>, in state Z)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


async def change_reaches_alice(server: Server) -> None:
    """Move one of alice's demo orders a step on (through the service, in this process: staff's token login needs
    a second factor here) and wait for the frame on her stream, through run_platform's worker and web server."""
    from django.contrib.auth import get_user_model

    from orders import services
    from orders.models import Order

    alice = (await asyncio.to_thread(api, server.http, "/api/auth/token/",
                                     {"username": "alice", "password": "demo-pass-123"}))["access"]
    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", alice], origin=server.http) as ws:
        # A socket is accepted before it joins its groups; the pong comes after (frames are handled in order), so
        # a web server just restarted, slow on its first connection, cannot miss the change.
        await ws.send(json.dumps({"type": "ping"}))
        async with asyncio.timeout(30):
            while json.loads(await ws.recv()).get("type") != "pong":
                pass
        order = await in_thread(lambda: Order.objects.filter(customer__username="alice", status__in=NEXT).first())
        staff = await in_thread(get_user_model().objects.get, username="staff")
        to = NEXT[order.status]
        await in_thread(services.change_status, order=order, to=to, actor=staff)
        async with asyncio.timeout(30):
            while True:
                frame = json.loads(await ws.recv())
                if (frame.get("order_id"), frame.get("status")) == (order.pk, to):
                    return


async def test_production_mode_restarts_a_child_that_dies_and_sigterm_stops_them_all(
    platform_env: dict[str, str], start_process: Any
) -> None:
    await asyncio.to_thread(manage, platform_env, "seed_demo", "--in-production")
    port = free_port()
    server = Server("run-supervised", [sys.executable, "manage.py", "run_platform", "--port", str(port)],
                    {**platform_env, **own_origins(port)}, port)
    start_process(server)
    await asyncio.to_thread(server.wait_ready)
    await asyncio.to_thread(server.wait_for_log, " ready.")  # the worker's
    worker_pid, web_pid = child_pid(server.log, "worker"), child_pid(server.log, "web")

    # The worker dies (OOM killer, a crash): run_platform starts another, and pushes flow again.
    os.kill(worker_pid, signal.SIGKILL)
    await asyncio.to_thread(server.wait_for_log, f"worker (pid {worker_pid}) exited with -9; restarting it in 1 s.")
    await asyncio.to_thread(server.wait_for_log, "Restarted worker (pid")
    await asyncio.to_thread(wait_until, lambda: server.log.count(" ready.") == 2, "the new worker is ready")
    await change_reaches_alice(server)

    # So does the web server, on the same port.
    os.kill(web_pid, signal.SIGKILL)
    await asyncio.to_thread(server.wait_for_log, f"web (pid {web_pid}) exited with -9; restarting it in 1 s.")
    await asyncio.to_thread(server.wait_for_log, "Restarted web (pid")
    await asyncio.to_thread(server.wait_ready)
    await change_reaches_alice(server)

    children = [child_pid(server.log, name) for name in ("web", "worker", "beat")]
    assert server.popen is not None
    server.popen.send_signal(signal.SIGTERM)  # the supervisor only: it stops its children itself
    assert await asyncio.to_thread(server.popen.wait, 60) == 0
    assert all(gone(pid) for pid in children), [(pid, gone(pid)) for pid in children]
