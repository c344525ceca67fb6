"""Stage timestamps from the bench's Celery worker, without touching the app: `celery worker --include
bench.worker_hooks` (bench/ours.py) imports this before the pool forks, so every child has these receivers.

For each push task (orders.tasks.send_order_update) it stores, once the task is done, when the task started,
when its group_sends were done (realtime.push.publish_event returned) and when the task ended, in a Redis hash
per event (BENCH_STAGES_PREFIX + event id) that the bench reads (bench/stages.py). The write happens after the
task, so it is not part of the change's path.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery.signals import task_postrun, task_prerun

from realtime import push

TASK = "orders.tasks.send_order_update"
PREFIX = os.environ.get("BENCH_STAGES_PREFIX", "benchstages:")
EXPIRE_SECONDS = 900

_marks: dict[str, float] = {}
_client: redis.Redis | None = None
_publish_event = push.publish_event


def _timed_publish_event(event: Any) -> None:
    _publish_event(event)
    _marks["group_send_done"] = time.time()


# orders.tasks calls push.publish_event through the module, so the wrapper is what the task runs.
push.publish_event = _timed_publish_event


@task_prerun.connect
def _task_started(sender: Any = None, **kwargs: Any) -> None:
    if getattr(sender, "name", None) == TASK:
        _marks.clear()
        _marks["task_start"] = time.time()


@task_postrun.connect
def _task_done(sender: Any = None, args: Any = None, **kwargs: Any) -> None:
    global _client
    if getattr(sender, "name", None) != TASK or not args or "task_start" not in _marks:
        return
    _marks["task_end"] = time.time()
    if _client is None:
        from django.conf import settings

        _client = redis.Redis.from_url(settings.REDIS_URL)
    key = f"{PREFIX}{args[0]}"
    with _client.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=_marks)
        pipe.expire(key, EXPIRE_SECONDS)
        pipe.execute()
    _marks.clear()
