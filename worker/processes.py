"""The command lines of the platform's processes, shared by `run_platform`, the tests and compose.yaml."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from worker.queues import queue_name

# The programs of the interpreter's own environment, so a venv works without being on PATH. In the image
# the venv is on PATH and compose.yaml names the bare programs; tests/deploy compares the two.
BIN = Path(sys.executable).parent


def ws_max_message_bytes() -> int:
    """The servers' WebSocket message limit: the app's WS_MAX_FRAME_BYTES, so a larger message (deflated, it may
    cost a thousandth of that on the wire) is refused by the server (close 1009) before it is ever read in whole."""
    from django.conf import settings

    return settings.WS_MAX_FRAME_BYTES


def web_command(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> list[str]:
    """The web server: uvicorn (uvloop, httptools, sans-I/O websockets), `workers` processes on one port.

    It is the default because it delivers a fan-out several times faster than daphne (docs/performance.md).
    --proxy-headers trusts X-Forwarded-For from FORWARDED_ALLOW_IPS only (default 127.0.0.1; compose sets the
    subnet only nginx shares with web). On SIGTERM sockets are closed with 1012 (service restart), so clients
    reconnect with after_seq. No permessage-deflate, though browsers offer it: frames are ~250 bytes, and its state
    cost ~40 KiB per socket (95 → 54 KiB per idle connection, docs/performance.md).
    """
    return [str(BIN / "uvicorn"), "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--ws", "websockets-sansio", "--ws-max-size", str(ws_max_message_bytes()),
            "--ws-per-message-deflate", "false",
            "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "20"]


# daphne's (autobahn's) message limit bounds what it sends too, and a frame to a client may be larger than any it
# may receive (a chat message of 2,000 escaped emoji, a list of stuck orders): it stays at daphne's 1 MiB.
DAPHNE_MESSAGE_BYTES = 1024 * 1024


def daphne_command(*, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    """The alternative server: daphne, one process (docs/deployment.md). It believes the first X-Forwarded-For
    entry from any peer, so it must sit behind a proxy that overwrites the header (deploy/app-locations.inc).

    Its frame limit (incoming frames only) is the app's; a message may still come in frames up to
    DAPHNE_MESSAGE_BYTES, at its full size on the wire (daphne offers no compression), and the app closes it 4009.
    Its access log, printed outside Python's logging (so unredacted: tracking links carry a token in the path), is
    off, as uvicorn's is; nginx logs each request.
    """
    return [str(BIN / "daphne"), "--bind", host, "--port", str(port), "--websocket-max-frame-size",
            str(ws_max_message_bytes()), "--websocket-max-message-size", str(DAPHNE_MESSAGE_BYTES),
            "--proxy-headers", "--access-log", "/dev/null", "config.asgi:application"]


def worker_command(*, concurrency: int = 2, hostname: str = "worker@%h", pool: str | None = None,
                   queues: Sequence[str] = ()) -> list[str]:
    """A celery worker: all queues (settings.CELERY_TASK_QUEUES) unless given some of worker/queues.py's QUEUES,
    e.g. `queues=["realtime"]` for a worker that only pushes (docs/deployment.md, "Split workers").

    `pool` (prefork, threads or solo) overrides CELERY_WORKER_POOL; each is bounded as docs/reliability.md says.
    """
    # No heartbeat, gossip or mingle: nothing here reads peers' state (the health check asks the worker), and the
    # heartbeat's publish retried forever inside the worker's event loop while the broker was down, so the worker
    # could not even notice the broker was gone (docs/reliability.md).
    command = [str(BIN / "celery"), "--app", "worker", "worker", "--loglevel", "INFO",
               "--concurrency", str(concurrency), "--hostname", hostname,
               "--without-heartbeat", "--without-gossip", "--without-mingle"]
    if pool is not None:
        command += ["--pool", pool]
    if queues:
        command += ["--queues", ",".join(queue_name(queue) for queue in queues)]
    return command


def worker_health_command(destination: str) -> list[str]:
    """The worker's health check (worker/health.py): exit 0 only if the worker named `destination` (its
    --hostname) answers over the broker that it consumes its queues. A worker alive in a warm shutdown fails it."""
    return [sys.executable, "-m", "worker.health", destination]


def beat_command() -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
