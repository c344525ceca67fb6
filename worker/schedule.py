"""The beat schedule: every periodic task, by the name ops see in the admin, and its interval; synced into
django-celery-beat's tables after every `migrate` (worker/apps.py), where beat's DatabaseScheduler reads it.

The sync is idempotent. It creates a missing task, and applies this module's task and interval to a row whenever
this module changes them; in between, ops may pause a task or re-time it in the admin, and that stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone


@dataclass(frozen=True)
class PeriodicJob:
    name: str  # the PeriodicTask's unique name: the row's key, and what ops know it by
    task: str  # the Celery task's name (a string: the task may move between modules, its name does not)
    every: int
    period: str  # django-celery-beat's IntervalSchedule period: "seconds", "minutes", "hours", "days"


SCHEDULE: tuple[PeriodicJob, ...] = (
    # The outbox sweep: re-sends events whose push failed or never ran (docs/reliability.md).
    PeriodicJob("Re-publish unpublished order events", "orders.tasks.republish_unpublished_events", 10, "seconds"),
    PeriodicJob("Alert staff about stuck orders", "orders.tasks.alert_stuck_orders", 15, "minutes"),
    # Orders that will probably miss their promise: flagged, given a new ETA, their customers told (operations.md).
    PeriodicJob("Flag orders at risk of missing their promise", "orders.tasks.check_orders_at_risk",
                settings.AT_RISK_CHECK_INTERVAL_SECONDS, "seconds"),
    PeriodicJob("Prune silent presence connections", "orders.tasks.prune_presence", 30, "seconds"),
    # Due webhook deliveries (retries, lost hand-offs, lapsed leases) and failing endpoints (docs/reliability.md).
    PeriodicJob("Send due webhook deliveries", "integrations.tasks.send_due_webhooks", 5, "seconds"),
)

# The first line of a synced row's description records what this module said when it last wrote the row.
SYNCED_FROM = "Defined in worker/schedule.py:"
HELP = ("Pause it here. An interval changed here stays until worker/schedule.py changes this task's, which the next "
        "`migrate` applies.")
# The rows orders' migrations 0002 and 0003 wrote before this module existed (no description) held these values;
# a row still named so is adopted as the module's own while the module keeps them, so an interval ops set stays.
LEGACY = {
    "Re-publish unpublished order events": ("orders.tasks.republish_unpublished_events", 10, "seconds"),
    "Alert staff about stuck orders": ("orders.tasks.alert_stuck_orders", 15, "minutes"),
    "Prune silent presence connections": ("orders.tasks.prune_presence", 30, "seconds"),
}


def synced_line(job: PeriodicJob) -> str:
    return f"{SYNCED_FROM} {job.task} every {job.every} {job.period}."


def sync_schedule(*, apps: Apps = global_apps, using: str = DEFAULT_DB_ALIAS,
                  schedule: tuple[PeriodicJob, ...] = SCHEDULE) -> list[str]:
    """Write `schedule` into django-celery-beat's tables; answers the names of the rows it created or changed.

    `apps` is the migration state's registry when called after `migrate` (its models match the tables just
    migrated), the project's otherwise.
    """
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    changes_model = apps.get_model("django_celery_beat", "PeriodicTasks")
    written: list[str] = []
    with transaction.atomic(using=using):
        for job in schedule:
            row = task_model.objects.using(using).filter(name=job.name).first()
            recorded = row.description.partition("\n")[0] if row is not None else ""
            if row is not None and recorded == synced_line(job):
                continue  # unchanged here since the last sync: whatever ops set in the admin stays
            interval = (interval_model.objects.using(using).filter(every=job.every, period=job.period).first()
                        or interval_model.objects.using(using).create(every=job.every, period=job.period))
            description = f"{synced_line(job)}\n{HELP}"
            if row is None:
                task_model.objects.using(using).create(name=job.name, task=job.task, interval=interval,
                                                       description=description)
            elif not recorded and LEGACY.get(job.name) == (job.task, job.every, job.period):
                row.description = description  # a legacy row of the same values: adopt it, keep what ops set
                row.save(update_fields=["description"])
            else:
                row.task, row.interval, row.description = job.task, interval, description
                row.save(update_fields=["task", "interval", "description"])
            written.append(job.name)
        names = {job.name for job in schedule}
        retired = task_model.objects.using(using).filter(description__startswith=SYNCED_FROM).exclude(name__in=names)
        written += list(retired.values_list("name", flat=True))
        retired.delete()
        if written:
            # What django-celery-beat's own save signals do (they do not fire for migration-state models): a
            # running beat re-reads its schedule.
            changes_model.objects.using(using).update_or_create(ident=1, defaults={"last_update": timezone.now()})
    return written
