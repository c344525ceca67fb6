"""The Celery application: configured from Django settings (CELERY_*), tasks found in installed apps."""

import logging
import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready

from worker import broker

broker.install()  # before any broker connection exists (worker/broker.py)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("order_tracking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task: Task[Any, Any] | None = None, **kwargs: Any) -> None:
    """Around each task, what Django does around each request: give the connection back to the process's pool
    (settings.CELERY_DB_REUSE_MAX stops Celery closing the whole pool every time).
    Eager tasks run inside their caller's transaction, which must stay open."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close_if_unusable_or_obsolete

    close_if_unusable_or_obsolete()


@worker_process_init.connect
def connect_early(**kwargs: Any) -> None:
    """A new pool process (prefork's children; solo's is the worker itself) opens its channel-layer connection
    before its first task, not during it.

    Not the database: right after this signal Celery's Django fixup closes the file descriptor of every open
    database connection, taking them for ones inherited across fork. Under solo, which sends this signal in the
    worker's own process, a pooled connection opened here went back to the pool with its socket closed; the next
    socket (Redis) reused the fd number, and the next task's pool check sent its query to Redis and waited forever
    (issue 12, point 2). The first task opens the pool instead (one connect, a few ms).
    """
    warm_up_channel_layer()


@worker_ready.connect
def connect_early_in_threads_pool(sender: Any = None, **kwargs: Any) -> None:
    """The threads pool sends no worker_process_init: its tasks run in the worker's own process, warmed here."""
    from celery.concurrency.thread import TaskPool as ThreadsPool

    if isinstance(getattr(sender, "pool", None), ThreadsPool):
        warm_up_channel_layer()


def warm_up_channel_layer() -> None:
    """Best effort and quick (Celery allows a few seconds at process init): a failure is retried by the first task."""
    from redis.exceptions import RedisError

    from realtime import push

    try:
        push.warm_up()
    except (RedisError, OSError, TimeoutError) as exc:
        logger.warning("Worker process starts cold: %s", exc)
