"""Django settings module for the seed baseline (channels + RedisChannelLayer on env REDIS_URL)."""

from __future__ import annotations

import os
import tempfile

from bench.baselines.seed import conf
from bench.baselines.seed.conf import CHANNEL_PREFIX, REDIS_URL

SECRET_KEY = conf.SECRET_KEY  # also the JWT signing key, as in the seed

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
# The seed's plain host entry breaks under redis-py 8, whose new defaults are socket_timeout=5 s (channels_redis's
# BZPOPMIN waits 5 s too, so the shared receive read times out and a consumer dies with 1011 every ~5 s idle:
# channels_redis#422, redis-py#4091) and max_connections=100 (the non-blocking pool raises MaxConnectionsError,
# i.e. HTTP 500 handshakes, once ~100 group_add calls are in flight). Restore redis-py 7's defaults unless
# SEED_AS_WRITTEN=1 asks for the seed's literal config.
_HOST: str | dict[str, object] = REDIS_URL
if os.environ.get("SEED_AS_WRITTEN") != "1":
    _HOST = {"address": REDIS_URL, "socket_timeout": None, "max_connections": 2**31}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [_HOST], "prefix": CHANNEL_PREFIX},
    }
}
