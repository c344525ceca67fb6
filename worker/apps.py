"""The worker app: its Celery metrics and the beat schedule's sync after `migrate`."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db.models.signals import post_migrate


def sync_schedule_after_migrate(*, using: str, apps: Apps = global_apps, **kwargs: Any) -> None:
    """Write worker/schedule.py into django-celery-beat's tables once its tables exist in the migrated state
    (`apps`; `flush`, which empties the tables between transactional tests, sends no state: the project's)."""
    from worker.schedule import sync_schedule

    try:
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:  # a partial migrate that left django-celery-beat unmigrated: nothing to write into yet
        return
    sync_schedule(apps=apps, using=using)


class WorkerConfig(AppConfig):
    name = "worker"

    def ready(self) -> None:
        from worker import metrics

        assert metrics  # imported to connect its Celery signal receivers
        # Django sends post_migrate once per app with models (and after each test flush); django-celery-beat's
        # turn runs the sync once per migrate, after its own tables are migrated.
        assert self.apps is not None  # set by the registry before ready()
        post_migrate.connect(sync_schedule_after_migrate, sender=self.apps.get_app_config("django_celery_beat"),
                             dispatch_uid="worker.sync_schedule")
