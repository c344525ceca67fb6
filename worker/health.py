"""The worker's health check: `python -m worker.health worker@host` exits 0 only if that worker takes tasks now.

`celery inspect ping` is not enough: a worker in a warm shutdown (SIGTERM, waiting for a task that does not
end) still answers it while it consumes nothing. The `consuming` command below is answered by the worker's own
consumer over the broker, so no answer also means the worker cannot reach Redis.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import inspect_command


@inspect_command()
def consuming(state: Any) -> dict[str, Any]:
    """Whether this worker takes tasks: not shutting down, and consuming from its task queues."""
    # Celery's own test (state.maybe_shutdown): set and not False. A warm shutdown sets should_stop to 0 (EX_OK).
    stopping = any(flag is not None and flag is not False
                   for flag in (worker_state.should_stop, worker_state.should_terminate))
    task_consumer = state.consumer.task_consumer
    queues = sorted(queue.name for queue in task_consumer.queues) if task_consumer is not None else []
    return {"ok": bool(queues) and not stopping, "queues": queues, "stopping": stopping}


def check(destination: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    """Ask one worker (its --hostname, e.g. worker@web-1) whether it consumes; the verdict and what it said."""
    from worker.celery import app

    replies = app.control.broadcast("consuming", destination=[destination], reply=True, timeout=timeout)
    answer = next((reply[destination] for reply in replies or [] if destination in reply), None)
    if answer is None:
        return False, f"{destination}: no answer within {timeout:.0f} s (down, or cut off from the broker)"
    return bool(answer.get("ok")), f"{destination}: {answer}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.health", description=__doc__)
    parser.add_argument("destination", help="the worker's --hostname, e.g. worker@$HOSTNAME")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    options = parser.parse_args(argv)
    healthy, detail = check(options.destination, timeout=options.timeout)
    print(detail)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
