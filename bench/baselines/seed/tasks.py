"""Celery app (broker = REDIS_URL) and the seed's send_order_update task pushing via group_send."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.seed.settings")

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from celery import Celery, shared_task  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402

from bench.baselines.seed.conf import CELERY_QUEUE, REDIS_URL, TASK_NAME  # noqa: E402

app = Celery("bench_seed", broker=REDIS_URL)
app.conf.update(
    task_default_queue=CELERY_QUEUE,
    broker_connection_retry_on_startup=True,
)

channel_layer = get_channel_layer()


def notify_user(user_id: int, payload: dict[str, Any]) -> None:
    async_to_sync(channel_layer.group_send)(
        f"user_{user_id}",
        {
            "type": "user_notification",
            "payload": payload,
        },
    )


@shared_task(name=TASK_NAME)
def send_order_update(user_id: int, order_id: int, status: str, seq: int, sent_at: float) -> None:
    # The seed loads Order from the DB; here the change arrives as task args (no model needed).
    notify_user(
        user_id,
        {
            "event": "order_updated",
            "status": status,
            "order_id": order_id,
            "seq": seq,
            "sent_at": sent_at,
        },
    )
