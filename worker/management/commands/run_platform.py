"""Runs the whole platform in the foreground: uvicorn, plus a Celery worker and beat when Redis is configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from worker.processes import beat_command, web_command, worker_command

# A child that dies is started again after 1, 2, 4 … 30 s; one that ran this long before dying starts over at 1 s.
FIRST_RESTART_DELAY_SECONDS = 1.0
MAX_RESTART_DELAY_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0
# A celery worker's warm shutdown waits for its running tasks, each bounded (docs/reliability.md).
STOP_TIMEOUT_SECONDS = 30.0


@dataclass
class Child:
    """One supervised process: its command, the running Popen, and when it may be started again."""

    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay: float = FIRST_RESTART_DELAY_SECONDS
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started_at = time.monotonic()
        self.restart_at = None


class Command(BaseCommand):
    help = ("Start uvicorn (and, in production mode, a celery worker and celery beat), restart any that dies; "
            "Ctrl-C or SIGTERM stops them all.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        children = [Child("web", web_command(host=host, port=port))]
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            children += [Child("worker", worker_command()), Child("beat", beat_command())]
        else:
            self.stdout.write("Embedded mode: one process, eager Celery, no beat (periodic tasks need Redis).")
        for child in children:
            child.start()
        started = ", ".join(f"{child.name} (pid {child.process.pid})" for child in children if child.process)
        self.stdout.write(f"Started {started}; open http://{host}:{port}/  (Ctrl-C stops)")
        self.stdout.flush()

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            while True:
                for child in children:
                    self.supervise(child)
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_all(children)
        sys.exit(0)

    def supervise(self, child: Child) -> None:
        """Restart a child that exited, after a delay that doubles while it keeps dying young."""
        now = time.monotonic()
        if child.restart_at is None:
            if child.process is None or child.process.poll() is None:
                return
            if now - child.started_at >= STABLE_AFTER_SECONDS:
                child.restart_delay = FIRST_RESTART_DELAY_SECONDS
            child.restart_at = now + child.restart_delay
            self.stderr.write(f"{child.name} (pid {child.process.pid}) exited with {child.process.returncode}; "
                              f"restarting it in {child.restart_delay:.0f} s.")
            child.restart_delay = min(child.restart_delay * 2, MAX_RESTART_DELAY_SECONDS)
        elif now >= child.restart_at:
            child.start()
            child.restarts += 1
            assert child.process is not None
            self.stdout.write(f"Restarted {child.name} (pid {child.process.pid}, restart {child.restarts}).")
            self.stdout.flush()

    def stop_all(self, children: list[Child]) -> None:
        running = [child.process for child in children if child.process and child.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
