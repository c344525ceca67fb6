"""Fixtures that start real uvicorn (or daphne), celery worker and beat processes on real Redis and the test
PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from django.db import connection

from tests.e2e.processes import Process, RedisServer, Server, free_port, lost_its_port, own_origins
from worker.processes import beat_command, daphne_command, web_command, worker_command

pytestmark = pytest.mark.e2e


@pytest.fixture
def platform_env(transactional_db: None, settings: Any) -> dict[str, str]:
    """Environment for child processes: the test database, the test Redis, a private layer prefix and queues.

    The test process uses the same prefixes (worker/queues.py reads CELERY_QUEUE_PREFIX at each enqueue), so what
    it enqueues reaches this test's workers and no other test's.
    """
    db = connection.settings_dict
    user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    database_url = f"postgres://{user}@{host}:{port}/{db['NAME']}"
    run_id = uuid.uuid4().hex[:8]
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    settings.CELERY_QUEUE_PREFIX = f"e2e-{run_id}-"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATABASE_POOL": "true",  # the production default, whatever the test process uses
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CHANNEL_LAYER_PREFIX": prefix,
        # The test process reads presence under its per-test prefix; the children must write there too.
        "PRESENCE_KEY_PREFIX": settings.PRESENCE_KEY_PREFIX,
        "AUTH_STATE_PREFIX": settings.AUTH_STATE_PREFIX,
        "CELERY_QUEUE_PREFIX": settings.CELERY_QUEUE_PREFIX,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "OUTBOX_REPUBLISH_AFTER_SECONDS": "2",
        # Every client of these tests connects from 127.0.0.1, hundreds at once in the load and fault tests: room
        # for them (tests/security/test_handshake_flood.py runs the production limits).
        "WS_HANDSHAKE_BURST_PER_IP": "1000000",
        "WS_HANDSHAKE_BURST": "1000000",
        "PYTHONUNBUFFERED": "1",
    }
    return env


@pytest.fixture
def start_process() -> Iterator[Callable[..., Process]]:
    """Start any Process; every one started is stopped at teardown, whatever the test did."""
    started: list[Process] = []

    def start(process: Process) -> Process:
        started.append(process)
        return process.start()

    yield start
    for process in reversed(started):
        process.stop()


@pytest.fixture
def start_server(platform_env: dict[str, str], start_process: Callable[..., Process]) -> Callable[..., Server]:
    def start(*, port: int | None = None, server: str = "uvicorn", env: dict[str, str] | None = None) -> Server:
        for attempt in range(3):
            chosen = port or free_port()
            command = web_command(port=chosen) if server == "uvicorn" else daphne_command(port=chosen)
            process = Server(f"{server}-{chosen}", command, {**platform_env, **own_origins(chosen), **(env or {})},
                             chosen)
            start_process(process)
            try:
                return process.wait_ready()
            except RuntimeError:
                if port is not None or attempt == 2 or not lost_its_port(process):
                    raise
        raise AssertionError("unreachable")

    return start


@pytest.fixture
def start_worker(platform_env: dict[str, str], start_process: Callable[..., Process]) -> Callable[..., Process]:
    def start(*, name: str | None = None, env: dict[str, str] | None = None, pool: str | None = None,
              queues: Sequence[str] = (), concurrency: int = 2) -> Process:
        name = name or f"worker-{uuid.uuid4().hex[:6]}"
        command = worker_command(hostname=f"{name}@%h", pool=pool, queues=queues, concurrency=concurrency)
        process = Process(name, command, {**platform_env, **(env or {})})
        start_process(process)
        process.wait_for_log("ready.", timeout=60)
        return process

    return start


@pytest.fixture
def private_redis(start_process: Callable[..., Process]) -> RedisServer:
    """A redis-server of this test's own, never the machine's shared one, so it may be stopped."""
    for attempt in range(3):
        redis_server = RedisServer()
        start_process(redis_server)
        try:
            return redis_server.wait_ready()
        except RuntimeError:
            if attempt == 2 or not lost_its_port(redis_server):
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def start_beat(platform_env: dict[str, str], start_process: Callable[..., Process]) -> Callable[..., Process]:
    """celery beat with django-celery-beat's DatabaseScheduler, the outbox sweep every `sweep_every` seconds.

    The periodic tasks are worker/schedule.py's (synced after migrate and after each test's flush); the sweep is
    re-timed here, as ops would in the admin.
    """

    def start(*, sweep_every: int = 1, env: dict[str, str] | None = None) -> Process:
        schedule_periodic_tasks(sweep_every=sweep_every)
        name = f"beat-{uuid.uuid4().hex[:6]}"
        process = Process(name, beat_command(), {**platform_env, **(env or {})})
        start_process(process)
        process.wait_for_log("beat: Starting", timeout=60)
        return process

    return start


def schedule_periodic_tasks(*, sweep_every: int) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from worker.schedule import sync_schedule

    sync_schedule()
    every, _ = IntervalSchedule.objects.get_or_create(every=sweep_every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="orders.tasks.republish_unpublished_events").update(interval=every)
