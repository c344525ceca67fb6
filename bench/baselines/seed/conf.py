"""Django-free constants shared by the seed baseline's server, worker and trigger side."""

from __future__ import annotations

import os

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
REDIS_URL: str = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
# >= 32 bytes so PyJWT does not warn about a short HMAC key.
SECRET_KEY: str = os.environ.get("SEED_SECRET_KEY", "bench-seed-baseline-insecure-secret-key-0123456789")
CHANNEL_PREFIX = "benchseed"  # channels_redis key prefix (keeps our keys apart in the DB)
CELERY_QUEUE = "bench_seed"
TASK_NAME = "bench_seed.send_order_update"
WS_PATH = "/ws/notifications/"
