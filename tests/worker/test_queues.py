"""Each task goes to its queue (realtime, email, webhooks, periodic), under the deployment's prefix; workers consume all
of them unless told which."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings

from worker.celery import app
from worker.processes import worker_command
from worker.queues import QUEUES, TASKS_BY_QUEUE


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_pushes_email_and_periodic_work_each_go_to_their_own_queue() -> None:
    assert QUEUES == ("realtime", "email", "webhooks", "periodic")
    assert queue_of("orders.tasks.send_order_update") == "realtime"
    assert queue_of("orders.tasks.email_order_update") == "email"
    assert queue_of("integrations.tasks.deliver_webhook") == "webhooks"
    for name in ("orders.tasks.republish_unpublished_events", "orders.tasks.alert_stuck_orders",
                 "orders.tasks.prune_presence", "integrations.tasks.send_due_webhooks"):
        assert queue_of(name) == "periodic"


def test_every_task_of_ours_has_a_queue_chosen_for_it() -> None:
    app.loader.import_default_modules()  # what a worker imports: every app's tasks.py (autodiscover)
    ours = {name for name in app.tasks if not name.startswith("celery.")}
    routed = {task for tasks in TASKS_BY_QUEUE.values() for task in tasks}
    assert ours == routed, "route each task in worker/queues.py: an unrouted one lands on the default queue"


def test_the_prefix_applies_to_what_is_enqueued_and_to_what_a_worker_is_told_to_consume(settings: Any) -> None:
    settings.CELERY_QUEUE_PREFIX = "staging-"
    assert queue_of("orders.tasks.send_order_update") == "staging-realtime"
    assert worker_command(queues=["realtime", "email"])[-2:] == ["--queues", "staging-realtime,staging-email"]


def test_a_worker_consumes_every_queue_by_default_and_a_subset_when_asked() -> None:
    assert "--queues" not in worker_command()
    assert set(app.amqp.queues.consume_from) == {settings.CELERY_QUEUE_PREFIX + queue for queue in QUEUES}
    assert worker_command(queues=["realtime"])[-2:] == ["--queues", "realtime"]
    with pytest.raises(ValueError, match="unknown queue 'webhook'"):
        worker_command(queues=["webhook"])
