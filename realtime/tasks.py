"""Realtime's Celery task: the presence sweep."""

from __future__ import annotations

from celery import shared_task

from realtime import presence


# Named as when it lived in orders/tasks.py: the beat schedule and the queue router know it by that name.
@shared_task(name="orders.tasks.prune_presence")
def prune_presence() -> int:
    """Forget connections silent for PRESENCE_MISSED_BEATS beats (their server died); staff hear who left."""
    return presence.prune()
