"""Runs the whole platform in the foreground: uvicorn, plus a Celery worker and beat when Redis is configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from worker.processes import beat_command, web_command, worker_command


class Command(BaseCommand):
    help = "Start uvicorn (and, in production mode, a celery worker and celery beat); Ctrl-C stops them all."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        commands = {"web": web_command(host=host, port=port)}
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            commands["worker"] = worker_command()
            commands["beat"] = beat_command()
        else:
            self.stdout.write("Embedded mode: one process, eager Celery, no beat (periodic tasks need Redis).")
        processes = {name: subprocess.Popen(command) for name, command in commands.items()}
        self.stdout.write(f"Started {', '.join(processes)}; open http://{host}:{port}/  (Ctrl-C stops)")

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while True:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with {process.returncode}; stopping the rest.")
                        exit_code = process.returncode or 1
                        raise KeyboardInterrupt
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        sys.exit(exit_code)
