"""The command lines of the platform's processes, shared by `run_platform`, the tests and compose.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

# The programs of the interpreter's own environment, so a venv works without being on PATH. In the image
# the venv is on PATH and compose.yaml names the bare programs; tests/deploy compares the two.
BIN = Path(sys.executable).parent


def web_command(*, host: str = "127.0.0.1", port: int = 8000) -> list[str]:
    return [str(BIN / "daphne"), "--bind", host, "--port", str(port), "--proxy-headers", "config.asgi:application"]


def uvicorn_command(*, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> list[str]:
    """The alternative server: one port, `workers` processes (each its own channel-layer connection)."""
    return [str(BIN / "uvicorn"), "config.asgi:application", "--host", host, "--port", str(port),
            "--workers", str(workers), "--proxy-headers", "--no-access-log"]


def worker_command(*, concurrency: int = 2, hostname: str = "worker@%h") -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", hostname]


def beat_command() -> list[str]:
    return [str(BIN / "celery"), "--app", "worker", "beat", "--loglevel", "INFO",
            "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
