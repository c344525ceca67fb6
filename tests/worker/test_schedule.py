"""The beat schedule (worker/schedule.py) in django-celery-beat's tables: written by `migrate`, once however often
it runs, a changed interval applied, and what ops set in the admin kept until the module changes it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import DatabaseScheduler

from tests.twofactor import force_login_verified
from worker.celery import app as celery_app
from worker.schedule import SCHEDULE, SYNCED_FROM, PeriodicJob, sync_schedule

pytestmark = pytest.mark.django_db

SWEEP = "Re-publish unpublished order events"


def rows() -> dict[str, tuple[str, int, str]]:
    return {task.name: (task.task, task.interval.every, task.interval.period)
            for task in PeriodicTask.objects.select_related("interval")}


def with_job(name: str, **changes: Any) -> tuple[PeriodicJob, ...]:
    return tuple(dataclasses.replace(job, **changes) if job.name == name else job for job in SCHEDULE)


def test_migrate_writes_every_periodic_task_of_the_schedule() -> None:
    PeriodicTask.objects.all().delete()
    call_command("migrate", verbosity=0, interactive=False)
    assert rows() == {
        "Re-publish unpublished order events": ("orders.tasks.republish_unpublished_events", 10, "seconds"),
        "Alert staff about stuck orders": ("orders.tasks.alert_stuck_orders", 15, "minutes"),
        "Flag orders at risk of missing their promise": ("orders.tasks.check_orders_at_risk", 300, "seconds"),
        "Prune silent presence connections": ("orders.tasks.prune_presence", 30, "seconds"),
        "Send due webhook deliveries": ("integrations.tasks.send_due_webhooks", 5, "seconds"),
    }
    first = dict(PeriodicTask.objects.values_list("name", "pk"))
    call_command("migrate", verbosity=0, interactive=False)
    assert dict(PeriodicTask.objects.values_list("name", "pk")) == first, "a second migrate must change nothing"


def test_syncing_twice_writes_each_task_once() -> None:
    PeriodicTask.objects.all().delete()
    assert sorted(sync_schedule()) == sorted(job.name for job in SCHEDULE)
    assert sync_schedule() == []
    assert PeriodicTask.objects.count() == len(SCHEDULE)
    assert all(task.description.startswith(SYNCED_FROM) for task in PeriodicTask.objects.all())


def test_an_interval_changed_in_the_module_is_applied_and_beat_told() -> None:
    sync_schedule()
    before = PeriodicTasks.last_change()
    assert sync_schedule(schedule=with_job(SWEEP, every=20)) == [SWEEP]
    assert rows()[SWEEP] == ("orders.tasks.republish_unpublished_events", 20, "seconds")
    assert PeriodicTasks.last_change() > before, "a running beat re-reads its schedule when this changes"
    assert sync_schedule(schedule=with_job(SWEEP, every=20)) == []


def test_an_interval_ops_set_in_the_admin_stays_until_the_module_changes_it() -> None:
    sync_schedule()
    sweep = PeriodicTask.objects.get(name=SWEEP)
    sweep.interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    sweep.enabled = False
    sweep.save()
    assert sync_schedule() == []
    assert rows()[SWEEP][1:] == (1, "minutes")
    sync_schedule(schedule=with_job(SWEEP, every=5))
    sweep.refresh_from_db()
    assert (sweep.interval.every, sweep.interval.period) == (5, "seconds")
    assert sweep.enabled is False, "a paused task stays paused whatever the module says"


def test_rows_the_old_migrations_wrote_are_adopted_with_what_ops_set() -> None:
    sync_schedule()
    sweep = PeriodicTask.objects.get(name=SWEEP)
    sweep.interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    sweep.description = ""  # as orders' migration 0002 wrote it
    sweep.save()
    assert sync_schedule() == [SWEEP]
    sweep.refresh_from_db()
    assert (sweep.interval.every, sweep.description.startswith(SYNCED_FROM)) == (1, True)


def test_an_old_row_takes_the_module_interval_once_the_module_changed_it() -> None:
    sync_schedule()
    PeriodicTask.objects.filter(name=SWEEP).update(description="")
    sync_schedule(schedule=with_job(SWEEP, every=20))
    assert rows()[SWEEP][1] == 20


def test_a_task_dropped_from_the_module_goes_and_ops_own_tasks_stay() -> None:
    sync_schedule()
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(name="Ops' own report", task="orders.tasks.alert_stuck_orders", interval=every_hour)
    assert sync_schedule(schedule=tuple(job for job in SCHEDULE if job.name != SWEEP)) == [SWEEP]
    assert set(rows()) == {job.name for job in SCHEDULE if job.name != SWEEP} | {"Ops' own report"}


def test_beat_database_scheduler_reads_the_synced_schedule() -> None:
    sync_schedule()
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    schedule = DatabaseScheduler(app=celery_app, lazy=True).all_as_schedule()
    assert {entry.task for entry in schedule.values()} >= {job.task for job in SCHEDULE}


def test_ops_see_the_outbox_sweep_and_its_edit_form_in_the_admin(staff: Any) -> None:
    sync_schedule()
    sweep = PeriodicTask.objects.get(task="orders.tasks.republish_unpublished_events")
    client = Client()
    force_login_verified(client, staff)
    listing = client.get("/admin/django_celery_beat/periodictask/")
    assert listing.status_code == 200
    assert SWEEP in listing.content.decode()
    assert client.get(f"/admin/django_celery_beat/periodictask/{sweep.pk}/change/").status_code == 200


def test_every_scheduled_task_runs_on_the_periodic_queue() -> None:
    from worker.queues import QUEUE_OF_TASK

    assert {job.task: QUEUE_OF_TASK.get(job.task) for job in SCHEDULE} == {job.task: "periodic" for job in SCHEDULE}
