"""The `consuming` answer behind the worker's health check (worker/health.py), for each state a worker is in.
The end-to-end check against a real worker is tests/e2e/test_worker_outages.py."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker import state as worker_state
from kombu import Queue

from worker.health import consuming


def control_state(*queue_names: str) -> Any:
    """What Celery hands a remote-control command: the worker's consumer, here with its task consumer's queues."""
    task_consumer = SimpleNamespace(queues=[Queue(name) for name in queue_names]) if queue_names else None
    return SimpleNamespace(consumer=SimpleNamespace(task_consumer=task_consumer))


@pytest.fixture(autouse=True)
def running_worker() -> Iterator[None]:
    worker_state.should_stop = worker_state.should_terminate = None
    yield
    worker_state.should_stop = worker_state.should_terminate = None


def test_a_worker_consuming_its_queues_is_healthy() -> None:
    assert consuming(control_state("realtime", "email")) == {"ok": True, "queues": ["email", "realtime"],
                                                             "stopping": False}


@pytest.mark.parametrize("flag", ["should_stop", "should_terminate"])
def test_a_worker_in_a_warm_or_cold_shutdown_is_not(flag: str) -> None:
    setattr(worker_state, flag, 0)  # SIGTERM's warm shutdown sets should_stop to EX_OK, which is 0
    assert consuming(control_state("realtime")) == {"ok": False, "queues": ["realtime"], "stopping": True}


def test_a_worker_without_a_task_consumer_is_not() -> None:
    assert consuming(control_state())["ok"] is False
