"""The command lines of the platform's processes, shared by `run_platform`, the tests and compose.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

# The programs of the interpreter's own environment, so a venv works without being on PATH. In the image
# the venv is on PATH and compose.yaml names the bare programs; tests/deploy compares the two.
BIN = Path(sys.executable).parent


def web_command(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> list[str]:
    """The web server: uvicorn (uvloop, httptools, sans-I/O websockets), `workers` processes on one port.

    It is the default because it delivers a fan-out several times faster than daphne (docs/performance.md).
    --proxy-headers trusts X-Forwarded-For from FORWARDED_ALLOW_IPS (default 127.0.0.1; compose sets nginx's).
    On SIGTERM sockets are closed with 1012 (service restart), so clients reconnect with after_seq.
    """
    return [str(BIN / "uvicorn"), "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--ws", "websockets-sansio", "--proxy-headers", "--no-access-log",
            "--timeout-graceful-shutdown", "20"]


def daphne_command(*, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    """The alternative server: daphne, one process (docs/deployment.md)."""
    return [str(BIN / "daphne"), "--bind", host, "--port", str(port), "--proxy-headers", "config.asgi:application"]


def worker_command(*, concurrency: int = 2, hostname: str = "worker@%h") -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", hostname]


def beat_command() -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
