"""The command lines of the platform's processes, shared by `run_platform`, the tests and compose.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

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
    reconnect with after_seq.
    """
    return [str(BIN / "uvicorn"), "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--ws", "websockets-sansio", "--ws-max-size", str(ws_max_message_bytes()),
            "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "20"]


# daphne's (autobahn's) message limit bounds what it sends too, and a frame to a client may be larger than any it
# may receive (a chat message of 2,000 escaped emoji, a list of stuck orders): it stays at daphne's 1 MiB.
DAPHNE_MESSAGE_BYTES = 1024 * 1024


def daphne_command(*, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    """The alternative server: daphne, one process (docs/deployment.md). It believes the first X-Forwarded-For
    entry from any peer, so it must sit behind a proxy that overwrites the header (deploy/app-locations.inc).

    Its frame limit (incoming frames only) is the app's; a message may still come in frames up to
    DAPHNE_MESSAGE_BYTES, at its full size on the wire (daphne offers no compression), and the app closes it 4009.
    """
    return [str(BIN / "daphne"), "--bind", host, "--port", str(port), "--websocket-max-frame-size",
            str(ws_max_message_bytes()), "--websocket-max-message-size", str(DAPHNE_MESSAGE_BYTES),
            "--proxy-headers", "config.asgi:application"]


def worker_command(*, concurrency: int = 2, hostname: str = "worker@%h") -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", hostname]


def beat_command() -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
