"""The stage breakdown of one change: when each part of its trip happened, from `change_status` being called to
the frame reaching the client, so each millisecond has a name. All times are time.time() on one machine.

- called, `at`, commit, published: this process (bench/ours.py's change path; the event's created_at; Celery's
  before_task_publish, sent by the first on_commit callback, i.e. right after COMMIT returned; after_task_publish).
- task start, group_send done, task end: the worker (bench/worker_hooks.py, a Redis hash per event).
- frame written: the server (bench/asgi.py, the time its `send` of the frame returned).
- frame received: the client (bench.loadgen's sample of the frame).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from celery.signals import after_task_publish, before_task_publish

TASK = "orders.tasks.send_order_update"

# (key, what happened), in the order of the trip.
STAGES = [
    ("called", "change_status called (bench process)"),
    ("at", "event row stamped: the frame's `at` (OrderEvent.created_at)"),
    ("commit", "transaction committed (first on_commit callback runs)"),
    ("published", "push task published to the broker"),
    ("task_start", "worker: task started (task_prerun)"),
    ("group_send_done", "worker: group_sends done (publish_event returned)"),
    ("task_end", "worker: task done (task_postrun)"),
    ("frame_written", "server: frame written to the socket"),
    ("frame_received", "client: frame received"),
]


class PublishMarks:
    """Celery's publish signals in this process, by event id: when each push task was handed to the broker."""

    def __init__(self) -> None:
        self.before: dict[int, float] = {}
        self.after: dict[int, float] = {}
        before_task_publish.connect(self._before, weak=False)
        after_task_publish.connect(self._after, weak=False)

    @staticmethod
    def _event_id(body: Any) -> int | None:
        args = body[0] if isinstance(body, tuple | list) and body and isinstance(body[0], list | tuple) else None
        return int(args[0]) if args else None

    def _before(self, sender: Any = None, body: Any = None, **kwargs: Any) -> None:
        if sender == TASK and (event_id := self._event_id(body)) is not None:
            self.before[event_id] = time.time()

    def _after(self, sender: Any = None, body: Any = None, **kwargs: Any) -> None:
        if sender == TASK and (event_id := self._event_id(body)) is not None:
            self.after[event_id] = time.time()


def worker_marks(redis_url: str, prefix: str, event_ids: Iterable[int]) -> dict[int, dict[str, float]]:
    client = redis.Redis.from_url(redis_url)
    try:
        out = {}
        for event_id in event_ids:
            raw = client.hgetall(f"{prefix}{event_id}")
            out[event_id] = {k.decode(): float(v) for k, v in raw.items()}
        return out
    finally:
        client.close()


def breakdown(per_event: Sequence[dict[str, float]]) -> list[dict[str, Any]]:
    """Per stage, in the order they happened (by median time since `called`; the server may write the frame
    before the worker's last group_send returns): how many events have it, the median time since `called`, and
    the median step from the stage before it (both ms). Stages a run did not see are left out."""
    labels = dict(STAGES)
    since: dict[str, float] = {}
    for key, _label in STAGES:
        have = [(e[key] - e["called"]) * 1000 for e in per_event if key in e and "called" in e]
        if have:
            since[key] = statistics.median(have)
    rows = []
    previous: str | None = None
    for key in sorted(since, key=lambda k: (since[k], [s for s, _ in STAGES].index(k))):
        steps = [(e[key] - e[previous]) * 1000 for e in per_event if previous and key in e and previous in e]
        rows.append({"stage": key, "label": labels[key], "events": sum(key in e for e in per_event),
                     "since_called_ms": round(since[key], 3),
                     "step_ms": round(statistics.median(steps), 3) if steps else None})
        previous = key
    return rows


def stages_table(rows: Sequence[dict[str, Any]], changes: int) -> str:
    head = ["stage", "events", "median since called (ms)", "median step (ms)"]
    lines = [head] + [[r["label"], str(r["events"]), f"{r['since_called_ms']:.2f}",
                       "-" if r["step_ms"] is None else f"{r['step_ms']:.2f}"] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return f"Stages of one change (ours, {changes} changes to one watcher, medians):\n" + "\n".join(text)
