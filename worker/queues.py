"""The Celery queues (realtime, email, webhooks, periodic) and the router that sends each task to its queue."""

from __future__ import annotations

from typing import Any

from django.conf import settings

# A push never waits behind an e-mail or a sweep: each kind of work has a queue, and a deployment can give
# `realtime` workers of its own (docs/deployment.md, "Split workers"). A new queue is one line here (webhooks:
# "webhooks": [its delivery task]); worker_command() and the settings' CELERY_TASK_QUEUES follow from it.
TASKS_BY_QUEUE: dict[str, list[str]] = {
    "realtime": ["orders.tasks.send_order_update"],
    "email": ["orders.tasks.email_order_update", "orders.tasks.email_if_unseen", "orders.tasks.email_at_risk_notice"],
    "webhooks": ["integrations.tasks.deliver_webhook"],
    "periodic": [
        "orders.tasks.republish_unpublished_events",
        "orders.tasks.alert_stuck_orders",
        "orders.tasks.check_orders_at_risk",
        "orders.tasks.prune_presence",
        "integrations.tasks.send_due_webhooks",
    ],
}
QUEUES = tuple(TASKS_BY_QUEUE)
QUEUE_OF_TASK = {task: queue for queue, tasks in TASKS_BY_QUEUE.items() for task in tasks}
# Where a task nobody routed goes: work that no client waits for.
DEFAULT_QUEUE = "periodic"


def queue_name(queue: str) -> str:
    """The broker's name of one of QUEUES: CELERY_QUEUE_PREFIX keeps deployments (or test runs) that share a
    Redis apart. Read at each call, so a test can change the prefix of its own process."""
    if queue not in TASKS_BY_QUEUE:
        raise ValueError(f"unknown queue {queue!r}: one of {', '.join(QUEUES)}")
    return settings.CELERY_QUEUE_PREFIX + queue


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> dict[str, str]:
    """Celery's router (CELERY_TASK_ROUTES): every task, enqueued by any process, goes to its queue."""
    return {"queue": queue_name(QUEUE_OF_TASK.get(name, DEFAULT_QUEUE))}
