"""The Celery app, its beat schedule and worker entry points (`celery --app worker worker|beat`)."""

from worker.celery import app

__all__ = ["app"]
