"""Project configuration: settings, URL and ASGI routing. Loads the Celery app so tasks bind to it."""

from worker.celery import app as celery_app

__all__ = ["celery_app"]
