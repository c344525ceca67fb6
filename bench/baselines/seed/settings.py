"""Django settings module for the seed baseline (channels + RedisChannelLayer on env REDIS_URL)."""

from __future__ import annotations

import os
import tempfile

from bench.baselines.seed.conf import CHANNEL_PREFIX, REDIS_URL, SECRET_KEY

DEBUG = False
ALLOWED_HOSTS = ["*"]  # AllowedHostsOriginValidator: "*" also admits clients that send no Origin
INSTALLED_APPS = [
    "channels",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
ROOT_URLCONF = "bench.baselines.seed.urls"
ASGI_APPLICATION = "bench.baselines.seed.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # Never queried (no session cookie, user comes from the token); only needed so auth/sessions load.
        "NAME": os.environ.get("SEED_DB_PATH", os.path.join(tempfile.gettempdir(), "bench_seed.sqlite3")),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_PREFIX},
    }
}
