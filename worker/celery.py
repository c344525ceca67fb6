"""The Celery application: configured from Django settings (CELERY_*), tasks found in installed apps."""

import logging
import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("order_tracking")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(task: Task | None = None, **kwargs: Any) -> None:
    """Around each task, what Django does around each request: give the connection back to the process's pool
    (settings.CELERY_DB_REUSE_MAX stops Celery closing the whole pool every time).
    Eager tasks run inside their caller's transaction, which must stay open."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close_if_unusable_or_obsolete

    close_if_unusable_or_obsolete()


@worker_process_init.connect
def connect_early(**kwargs: Any) -> None:
    """A new pool process connects to PostgreSQL and the channel layer before its first task, not during it.

    Best effort and quick (Celery allows a few seconds here): what fails is retried by the first task anyway.
    """
    from django.db import DatabaseError, connection
    from redis.exceptions import RedisError

    from realtime import push

    try:
        connection.ensure_connection()
        push.warm_up()
    except (DatabaseError, RedisError, OSError, TimeoutError) as exc:
        logger.warning("Worker process starts cold: %s", exc)
