"""The Celery worker's Prometheus metrics: task outcomes, and the small HTTP exporter a worker serves them on.

Connected by worker/apps.py in every process (an eager task in the embedded mode counts too). In multiprocess
mode (PROMETHEUS_MULTIPROC_DIR) the exporter sums the files of the worker's pool children with its own; the
registry is the web processes' one (realtime/metrics.py), so counters the tasks touch there (events published)
are served here as well (docs/operations.md, "Metrics").
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals as celery_signals
from prometheus_client import Counter, multiprocess, start_http_server

from realtime.metrics import MULTIPROCESS, registry

logger = logging.getLogger(__name__)

CELERY_TASKS = Counter("orders_celery_tasks_total", "Celery task outcomes.", ["task", "outcome"])


def _count_task(outcome: str) -> Any:
    def receiver(sender: Any = None, **kwargs: Any) -> None:
        message = kwargs.get("message")  # task_rejected's sender is the consumer; the name is in the message
        name = (getattr(sender, "name", None) or getattr(kwargs.get("request"), "task", None)
                or (message.headers.get("task") if message is not None else None) or "unknown")
        CELERY_TASKS.labels(name, outcome).inc()

    return receiver


_TASK_RECEIVERS = {
    outcome: _count_task(outcome) for outcome in ("succeeded", "failed", "retried", "rejected", "revoked")
}
celery_signals.task_success.connect(_TASK_RECEIVERS["succeeded"], weak=False)
celery_signals.task_failure.connect(_TASK_RECEIVERS["failed"], weak=False)
celery_signals.task_retry.connect(_TASK_RECEIVERS["retried"], weak=False)
celery_signals.task_rejected.connect(_TASK_RECEIVERS["rejected"], weak=False)
celery_signals.task_revoked.connect(_TASK_RECEIVERS["revoked"], weak=False)


@celery_signals.worker_ready.connect(weak=False)
def start_worker_exporter(sender: Any = None, **kwargs: Any) -> None:
    """Serve the worker's metrics (its pool children's too, in multiprocess mode) on CELERY_METRICS_PORT."""
    port = os.environ.get("CELERY_METRICS_PORT")
    if not port:
        return
    if not MULTIPROCESS:
        logger.warning("CELERY_METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: prefork children's task "
                       "counts will be missing from the worker's metrics.")
    start_http_server(int(port), addr=os.environ.get("CELERY_METRICS_ADDR", "0.0.0.0"), registry=registry())
    logger.info("Worker metrics on :%s/metrics", port)


@celery_signals.worker_process_shutdown.connect(weak=False)
def forget_dead_child(pid: int | None = None, **kwargs: Any) -> None:
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid or os.getpid())
