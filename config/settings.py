"""Settings for the order-tracking platform, read from the environment in one flat file.

With no DATABASE_URL / REDIS_URL the platform runs in the embedded default (SQLite, in-memory channel
layer, eager Celery, one process). Production values come only from the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.origins import canonical_origin, origin_of_url
from config.redaction import install_log_redaction
from config.redis import DRIVER_INFO
from worker.queues import DEFAULT_QUEUE, QUEUES

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_host_ports(name: str) -> list[tuple[str, int]]:
    """"host:port,host:port" as a list of (host, port)."""
    result = []
    for item in env_list(name):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ImproperlyConfigured(f"{name} must be a comma-separated list of host:port, got {item!r}")
        result.append((host, int(port)))
    return result


def env_secret(name: str, default: str = "") -> str:
    """Read NAME, or the contents of the file named by NAME_FILE (Docker/Kubernetes secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def embedded_secret_key(path: Path) -> str:
    """The embedded mode's key: generated once, kept in a file only its owner reads (0600)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(64)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this start made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def weak_secret(value: str) -> bool:
    """Django's own test (check --deploy, security.W009), plus the placeholder words of our examples."""
    return len(value) < 50 or len(set(value)) < 5 or any(
        word in value.lower() for word in ("change-me", "changeme", "insecure"))


def loopback_only(hosts: list[str]) -> bool:
    return bool(hosts) and all(host in ("localhost", "127.0.0.1", "[::1]", "::1") for host in hosts)


DEBUG = env_bool("DEBUG", False)

# Production is "DATABASE_URL and REDIS_URL (or REDIS_SENTINELS) are set"; neither is the embedded default.
# The _FILE forms keep their passwords out of the environment (Docker/Kubernetes secrets).
DATABASE_URL = env_secret("DATABASE_URL")
REDIS_URL = env_secret("REDIS_URL")

# Redis Sentinel instead of one Redis server: "host:port,host:port" of the sentinels and the master's name.
# The channel layer, the Celery broker and /healthz then find the master through the sentinels and follow
# it on failover; REDIS_URL may stay unset (docs/deployment.md, "Redis Sentinel").
REDIS_SENTINELS = env_host_ports("REDIS_SENTINELS")
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_DB = env_int("REDIS_SENTINEL_DB", 0)
REDIS_PASSWORD = env_secret("REDIS_PASSWORD")  # the master's (and replicas') password, if any
REDIS_SENTINEL_PASSWORD = env_secret("REDIS_SENTINEL_PASSWORD")  # the sentinels' own, if any

EMBEDDED = not DATABASE_URL and not (REDIS_URL or REDIS_SENTINELS)
if not EMBEDDED and not (DATABASE_URL and (REDIS_URL or REDIS_SENTINELS)):
    # Half a production configuration must not quietly run the embedded mode on real data.
    raise ImproperlyConfigured(
        "Production needs both DATABASE_URL and REDIS_URL (or REDIS_SENTINELS), but "
        + ("REDIS_URL (or REDIS_SENTINELS) is not set." if DATABASE_URL else "DATABASE_URL is not set.")
        + " Unset both for the embedded mode (SQLite, one process)."
    )

# ALLOW_UNSAFE_SETTINGS=true turns production's refusals below into warnings: for a lab, never for real data.
ALLOW_UNSAFE_SETTINGS = env_bool("ALLOW_UNSAFE_SETTINGS", False)
_unsafe: list[str] = []

SQLITE_PATH = env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
SECRET_KEY = env_secret("SECRET_KEY")
if EMBEDDED and not SECRET_KEY:
    # A random key made on first start and kept beside the SQLite database, never derived from public facts.
    SECRET_KEY = embedded_secret_key(Path(SQLITE_PATH).with_name(".embedded-secret-key"))
elif not EMBEDDED and not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is required when DATABASE_URL and REDIS_URL are set (or set SECRET_KEY_FILE)."
    )
elif not EMBEDDED and weak_secret(SECRET_KEY):
    _unsafe.append("SECRET_KEY must be at least 50 random characters (python -c \"import secrets; "
                   "print(secrets.token_urlsafe(64))\")")
if not EMBEDDED and DEBUG:
    _unsafe.append("DEBUG=true shows settings and tracebacks to every visitor")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Behind TLS -----------------------------------------------------------------------------------
# HTTPS=true: the site is served over TLS (at nginx, see deploy/). Cookies are then secure, HSTS is sent and
# plain HTTP is redirected. /healthz and /metrics are answered before the redirect (config/probes.py).
HTTPS = env_bool("HTTPS", False)
# "HTTP_X_FORWARDED_PROTO,https": trust the proxy's header for "is this request secure?". Only set it when
# the proxy is the only way in and always sets (overwrites) that header.
_proxy_ssl_header = env_list("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be HEADER,value, e.g. HTTP_X_FORWARDED_PROTO,https")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) if _proxy_ssl_header else None
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if not EMBEDDED and "*" in ALLOWED_HOSTS:
    _unsafe.append("ALLOWED_HOSTS=* accepts any Host header; name the site's hosts")
if not EMBEDDED and not HTTPS and not loopback_only(ALLOWED_HOSTS):
    # Plain HTTP sends session cookies and tokens in clear; only a site that answers on loopback alone may.
    _unsafe.append("HTTPS=false for a site reachable beyond localhost; put TLS in front (docs/deployment.md)")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin, whose site logs in through the site's login pages (their second factor for staff).
    "accounts.apps.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    # django-ninja, the JSON API (config/api.py); listed so its docs page uses its own static files, no CDN.
    "ninja",
    "accounts",
    "orders",
    "realtime",
    # The Celery app's Django side: the beat schedule's sync after migrate, Celery metrics, run_platform.
    "worker.apps.WorkerConfig",
    "integrations",
]

MIDDLEWARE = [
    "config.probes.ProbeMiddleware",
    # config.middleware: Django's and WhiteNoise's middleware as subclasses that run on the event loop under ASGI
    # (no thread hop per method); under WSGI they are Django's own. Security, CSRF and X-Frame-Options stay
    # Django's classes: `check --deploy` looks for them by these dotted paths (they still hop, 6 per request).
    "django.middleware.security.SecurityMiddleware",
    "config.headers.SecurityHeadersMiddleware",
    "config.middleware.StaticFiles",
    "config.middleware.Session",
    # The language: the visitor's choice (set_language's cookie), else Accept-Language, else LANGUAGE_CODE.
    "config.middleware.Locale",
    "config.middleware.Common",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.Authentication",
    "accounts.middleware.StaffSecondFactorMiddleware",
    "config.middleware.Messages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if DATABASE_URL:
    # Under ASGI each HTTP request runs its sync code on a thread of its own, so a persistent connection
    # (CONN_MAX_AGE) stays open with its dead thread until the garbage collector finds it; under load PostgreSQL
    # ran out of connections. Django's docs say to use a pool instead: each process borrows from its own
    # psycopg pool (checked on every borrow) and gives the connection back at the end of a request, a consumer's
    # database call or a Celery task.
    # DATABASE_POOL=false keeps one persistent connection per thread instead: for a process whose threads do
    # not give connections back (the test process runs ORM calls on plain threads; make test sets it).
    if env_bool("DATABASE_POOL", True):
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1),
            "max_size": env_int("DATABASE_POOL_MAX_SIZE", 10),
            "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),  # seconds to wait for a free connection
        }
    else:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    # Every database call has a bound of its own, whatever the Celery pool (docs/reliability.md, "Bounds on every
    # pool"): the connect, each statement (lock waits included; 0 = none, e.g. for a long migration), and, through
    # TCP keepalives, a server that vanished from the network mid-query (about 25 s).
    statement_timeout_ms = env_int("DATABASE_STATEMENT_TIMEOUT_SECONDS", 30) * 1000
    database_options = DATABASES["default"].setdefault("OPTIONS", {})
    database_options["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)
    database_options["options"] = (
        f"{database_options.get('options', '')} -c statement_timeout={statement_timeout_ms}".strip()
    )
    database_options.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
    if env_str("TEST_DATABASE_NAME"):
        # Lets parallel test runs on one PostgreSQL server keep apart.
        DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a check: Django calls each validator's password_changed() once a new password is saved (set_password +
    # save: the admin's password form, a reset, `manage.py changepassword`); this one ends the token logins.
    {"NAME": "accounts.passwords.EndTokenLoginsOnPasswordChange"},
]

# The site's default language, also the language of status e-mails (no per-customer preference is stored).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
# The catalogues (locale/<lang>/LC_MESSAGES/django.po and its compiled .mo, both committed: docs/pages.md).
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The pages import the published JS client (clients/js, an ES module: no bundler) from /static/realtime-client/.
STATICFILES_DIRS = [BASE_DIR / "static", ("realtime-client", BASE_DIR / "clients" / "js" / "src")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# Staff (is_staff, who see every customer's data and open the admin) log in with a password and a TOTP code from
# an authenticator app (django-otp), on the site, the admin and the token endpoint; docs/security.md. On by
# default in production; off by default in the embedded mode, whose demo staff log in with a published password
# on one machine. Off in production is an unsafe setting.
STAFF_REQUIRE_2FA = env_bool("STAFF_REQUIRE_2FA", not EMBEDDED)
if not EMBEDDED and not STAFF_REQUIRE_2FA:
    _unsafe.append("STAFF_REQUIRE_2FA=false lets staff, who see every customer's data, log in with a password alone")
# The issuer authenticator apps show beside the account name.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Order tracking")
# The admin's TOTP device pages never show a device's secret or QR code: an admin resets a device (deletes it, and
# its owner enrols a new one at the next login), never copies one.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# --- Channels -------------------------------------------------------------------------------------
# Redis database 0 is the default; channel layer keys carry their own prefix.
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "asgi")
# With Sentinel, channels_redis takes a host dict naming the sentinels and the master (its create_pool).
REDIS_SENTINEL_HOST = {
    "sentinels": REDIS_SENTINELS,
    "master_name": REDIS_SENTINEL_MASTER,
    "db": REDIS_SENTINEL_DB,
    "password": REDIS_PASSWORD or None,
    "sentinel_kwargs": {"password": REDIS_SENTINEL_PASSWORD} if REDIS_SENTINEL_PASSWORD else None,
}
# redis-py 8's defaults break the layer: its 5 s socket timeout races channels_redis's 5 s blocking pop
# (idle sockets get closed with 1011), and its 100-connection pool cap raises under a burst of handshakes.
REDIS_CONNECTION_OPTIONS = {
    "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT_SECONDS", 30),
    "socket_connect_timeout": 5,
    "max_connections": env_int("REDIS_MAX_CONNECTIONS", 10_000),
    "driver_info": DRIVER_INFO,
}
# The layer's one Redis host, for either layer below: the sentinels and the master's name, or one address.
CHANNEL_LAYER_HOST = ({**REDIS_SENTINEL_HOST, **REDIS_CONNECTION_OPTIONS} if REDIS_SENTINELS
                      else {"address": REDIS_URL, **REDIS_CONNECTION_OPTIONS})
# Past one Redis: the layer sharded over these servers (channels_redis hashes each channel and group to one of
# them, the same on every process, so all processes must list the same URLs in the same order). Presence, the
# broker and the rest stay on REDIS_URL.
CHANNEL_LAYER_URLS = env_list("CHANNEL_LAYER_URLS")
if CHANNEL_LAYER_URLS and REDIS_SENTINELS:
    raise ImproperlyConfigured("CHANNEL_LAYER_URLS shards the layer over plain Redis URLs: not with REDIS_SENTINELS")
CHANNEL_LAYER_HOSTS = ([{"address": url, **REDIS_CONNECTION_OPTIONS} for url in CHANNEL_LAYER_URLS]
                       or [CHANNEL_LAYER_HOST])
# CHANNEL_LAYER=core: channels_redis's RedisChannelLayer (messages wait in Redis lists up to `expiry` for a
# server that is briefly away). CHANNEL_LAYER=pubsub: RedisPubSubChannelLayer, one PUBLISH per group that each
# server process fans out locally (faster fan-out, docs/performance.md), but a message published while a server's
# subscription is down is gone; clients then resume with after_seq.
CHANNEL_LAYER = env_str("CHANNEL_LAYER", "core")
if CHANNEL_LAYER not in ("core", "pubsub"):
    raise ImproperlyConfigured(f"CHANNEL_LAYER must be core or pubsub, got {CHANNEL_LAYER!r}")
if (REDIS_SENTINELS or REDIS_URL) and CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": CHANNEL_LAYER_HOSTS, "prefix": CHANNEL_LAYER_PREFIX},
        }
    }
elif REDIS_SENTINELS or REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": CHANNEL_LAYER_HOSTS,
                "prefix": CHANNEL_LAYER_PREFIX,
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000),
                "expiry": 60,
                # A channel leaves its groups this long after its last group_add; open sockets re-join well
                # before that (realtime/consumers.py), so only a vanished server's channels age out.
                "group_expiry": env_int("CHANNEL_LAYER_GROUP_EXPIRY_SECONDS", 86400),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------------------
# kombu's Sentinel form: one sentinel:// URL per sentinel, joined by ";", the master named in the options.
_SENTINEL_BROKER_URL = ";".join(
    f"sentinel://{':' + REDIS_PASSWORD + '@' if REDIS_PASSWORD else ''}{host}:{port}/{REDIS_SENTINEL_DB}"
    for host, port in REDIS_SENTINELS
)
CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL", _SENTINEL_BROKER_URL or REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = None
# Queues by kind of work (worker/queues.py): a worker consumes all of them unless started with --queues.
# CELERY_QUEUE_PREFIX keeps deployments, or parallel test runs, that share one Redis apart.
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX")
CELERY_TASK_QUEUES = {
    CELERY_QUEUE_PREFIX + queue: {"exchange": CELERY_QUEUE_PREFIX + queue, "routing_key": CELERY_QUEUE_PREFIX + queue}
    for queue in QUEUES
}
CELERY_TASK_ROUTES = ("worker.queues.route_task",)
# Imported by every worker: the `consuming` inspect command its health check asks (worker/health.py).
CELERY_IMPORTS = ("worker.health",)
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_PREFIX + DEFAULT_QUEUE
CELERY_TASK_ALWAYS_EAGER = not (REDIS_URL or REDIS_SENTINELS) and not env_secret("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# prefork (processes) or threads: docs/performance.md compares them for the push task.
CELERY_WORKER_POOL = env_str("CELERY_WORKER_POOL", "prefork")
# Celery's Django fixup closes the database connection before and after every task unless this is set, and
# in a prefork child with a pool it closes the whole pool: a new PostgreSQL connection per push (about half the
# push task's time, docs/performance.md). worker/celery.py instead gives the connection back to the pool after
# each task, as Django does after a request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 10_000)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker waits out a broker outage of any length (Redis restart, failover) instead of exiting after 100
# attempts; a supervisor would only restart it into the same wait.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task still running when the broker connection drops cannot ack on the new connection: its message comes
# back, or the outbox sweep re-sends its event, so finishing it would only push twice (Celery 6's default).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# An unacked task comes back after visibility_timeout if its worker vanished (kill -9); the outbox sweep
# re-sends its event long before (docs/reliability.md). A short connect timeout keeps a request that
# enqueues from hanging on an unreachable broker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300),
    "socket_connect_timeout": env_int("CELERY_BROKER_CONNECT_TIMEOUT", 3),
    # kombu's default is none: a task enqueueing (a retry, an e-mail) on a frozen broker waited forever. Longer
    # than the consumer's 1 s blocking pop.
    "socket_timeout": env_int("CELERY_BROKER_SOCKET_TIMEOUT", 3),
}
if REDIS_SENTINELS and not env_secret("CELERY_BROKER_URL"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    if REDIS_SENTINEL_PASSWORD:
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"password": REDIS_SENTINEL_PASSWORD}
# Publishing must not hang a request when the broker is down: the outbox sweep re-sends later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# After a failed publish a process leaves its pushes to the sweep this long (orders.tasks.enqueue_push).
BROKER_UNAVAILABLE_BACKOFF_SECONDS = env_int("BROKER_UNAVAILABLE_BACKOFF_SECONDS", 5)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- Orders and realtime --------------------------------------------------------------------------
# Tokens, socket limits and login throttles: docs/security.md.
# HS256 signs with JWT_SIGNING_KEY (default SECRET_KEY); RS256 signs with JWT_PRIVATE_KEY (PEM) and
# verifies with its public half. JWT_PREVIOUS_SIGNING_KEYS keeps tokens signed by the key being rotated
# out valid until they expire: comma-separated secrets (HS256) and/or concatenated PEM keys (RS256).
JWT_ALGORITHM = env_str("JWT_ALGORITHM", "HS256")
if JWT_ALGORITHM not in ("HS256", "RS256"):
    raise ImproperlyConfigured(f"JWT_ALGORITHM must be HS256 or RS256, got {JWT_ALGORITHM!r}")
JWT_SIGNING_KEY = env_secret("JWT_SIGNING_KEY", SECRET_KEY)
JWT_PRIVATE_KEY = env_secret("JWT_PRIVATE_KEY")
JWT_PREVIOUS_SIGNING_KEYS = env_secret("JWT_PREVIOUS_SIGNING_KEYS")
if JWT_ALGORITHM == "RS256" and not JWT_PRIVATE_KEY:
    raise ImproperlyConfigured("JWT_ALGORITHM=RS256 needs JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE), a PEM key.")
if JWT_ALGORITHM == "HS256" and len(JWT_SIGNING_KEY.encode()) < 32:
    _unsafe.append("the HS256 signing key (JWT_SIGNING_KEY or SECRET_KEY) needs at least 32 bytes")
JWT_ISSUER = env_str("JWT_ISSUER", "order-tracking")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "order-tracking")
JWT_ACCESS_LIFETIME = timedelta(seconds=env_int("JWT_ACCESS_LIFETIME_SECONDS", 900))
JWT_REFRESH_LIFETIME = timedelta(seconds=env_int("JWT_REFRESH_LIFETIME_SECONDS", 7 * 86400))
# However often it is refreshed, a token login ends this long after it began (ASVS 3.3.2): log in again.
JWT_REFRESH_ABSOLUTE_LIFETIME = timedelta(seconds=env_int("JWT_REFRESH_ABSOLUTE_LIFETIME_SECONDS", 30 * 86400))
JWT_LEEWAY_SECONDS = 10
# Refresh-token families, login throttles and WebSocket connection slots live under this Redis key prefix.
AUTH_STATE_PREFIX = env_str("AUTH_STATE_PREFIX", "auth")
# Failed logins before 429: per username (guessing one account) and per client IP (stuffing many).
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURES_PER_IP = env_int("LOGIN_FAILURES_PER_IP", 30)
LOGIN_THROTTLE_WINDOW_SECONDS = env_int("LOGIN_THROTTLE_WINDOW_SECONDS", 900)
# The throttle goes first so a throttled login (API, site or admin form) never reaches a password check.
AUTHENTICATION_BACKENDS = ["accounts.throttling.LoginThrottleBackend", "django.contrib.auth.backends.ModelBackend"]
# The seed's ?token= form: proxies log URLs, so it is off in production unless asked for.
WS_ALLOW_QUERY_TOKEN = env_bool("WS_ALLOW_QUERY_TOKEN", EMBEDDED)
# Open sockets per user across all server processes; one more is closed with 4008.
WS_MAX_CONNECTIONS_PER_USER = env_int("WS_MAX_CONNECTIONS_PER_USER", 20)
# How often an open socket re-checks that its user is active and its session or token family not revoked.
WS_REAUTH_INTERVAL_SECONDS = env_int("WS_REAUTH_INTERVAL_SECONDS", 60)
WS_MAX_FRAME_BYTES = env_int("WS_MAX_FRAME_BYTES", 16 * 1024)
WS_RATE_LIMIT_PER_SECOND = env_int("WS_RATE_LIMIT_PER_SECOND", 10)
WS_RATE_LIMIT_BURST = env_int("WS_RATE_LIMIT_BURST", 20)
REPLAY_LIMIT = env_int("REPLAY_LIMIT", 1000)
OUTBOX_REPUBLISH_AFTER_SECONDS = env_int("OUTBOX_REPUBLISH_AFTER_SECONDS", 10)
STUCK_ORDER_AFTER_MINUTES = env_int("STUCK_ORDER_AFTER_MINUTES", 24 * 60)

# --- At-risk orders (orders/promises.py, docs/operations.md "At-risk orders") ------------------------------
# An open order with a promise is at risk once its expected delivery is more than the margin past the promise.
AT_RISK_MARGIN_MINUTES = env_int("AT_RISK_MARGIN_MINUTES", 30)
AT_RISK_CHECK_INTERVAL_SECONDS = env_int("AT_RISK_CHECK_INTERVAL_SECONDS", 300)
# The usual stay in a status: this percentile of the stays that ended in the last AT_RISK_HISTORY_DAYS (at most
# AT_RISK_SAMPLE_LIMIT each); with fewer than AT_RISK_MIN_SAMPLES, the status's default below.
AT_RISK_DWELL_PERCENTILE = env_int("AT_RISK_DWELL_PERCENTILE", 50)
AT_RISK_HISTORY_DAYS = env_int("AT_RISK_HISTORY_DAYS", 30)
AT_RISK_SAMPLE_LIMIT = env_int("AT_RISK_SAMPLE_LIMIT", 500)
AT_RISK_MIN_SAMPLES = env_int("AT_RISK_MIN_SAMPLES", 20)


def parse_minutes_per_status(name: str, items: list[str]) -> dict[str, int]:
    """"status=minutes,..." naming every status an order passes before delivery, strictly."""
    en_route = ("pending", "confirmed", "preparing", "shipped", "out_for_delivery")
    minutes: dict[str, int] = {}
    for item in items:
        status, _, value = item.partition("=")
        if status.strip() not in en_route or not value.strip().isdigit():
            raise ImproperlyConfigured(f"{name} must be status=minutes for {', '.join(en_route)}; got {item!r}")
        minutes[status.strip()] = int(value)
    if missing := [status for status in en_route if status not in minutes]:
        raise ImproperlyConfigured(f"{name} has no minutes for {', '.join(missing)}")
    return minutes


AT_RISK_DEFAULT_DWELL_MINUTES = parse_minutes_per_status("AT_RISK_DEFAULT_DWELL_MINUTES", env_list(
    "AT_RISK_DEFAULT_DWELL_MINUTES", "pending=60,confirmed=120,preparing=1440,shipped=1440,out_for_delivery=240"))
if not 1 <= AT_RISK_DWELL_PERCENTILE <= 100:
    raise ImproperlyConfigured(f"AT_RISK_DWELL_PERCENTILE must be 1-100, got {AT_RISK_DWELL_PERCENTILE}")
# How long an Idempotency-Key of POST /api/orders/ is remembered (docs/integration.md); never less than a day.
IDEMPOTENCY_KEY_TTL_HOURS = max(24, env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24))

# --- Presence and the e-mail fallback ---------------------------------------------------------------
# A connection refreshes its presence every beat (client ping or server timer) and is forgotten after
# PRESENCE_MISSED_BEATS beats of silence (tests set a fraction of a second through settings).
PRESENCE_HEARTBEAT_SECONDS = float(env_int("PRESENCE_HEARTBEAT_SECONDS", 20))
PRESENCE_MISSED_BEATS = 3
# Presence lives in Redis (the same server as the channel layer by default); embedded mode keeps it in memory.
PRESENCE_REDIS_URL = env_secret("PRESENCE_REDIS_URL", REDIS_URL)
PRESENCE_KEY_PREFIX = env_str("PRESENCE_KEY_PREFIX", "presence")
# The pages ping every WS_PING_INTERVAL_SECONDS and reconnect when no pong came WS_PONG_TIMEOUT_SECONDS after a
# ping (page data, static/js/live-socket.js). Every WS_POSITION_CHECK_SECONDS each open order socket and stream
# reads where the orders it follows are and replays what a lost push kept from it (realtime/positions.py).
WS_PING_INTERVAL_SECONDS = float(env_int("WS_PING_INTERVAL_SECONDS", int(PRESENCE_HEARTBEAT_SECONDS)))
WS_PONG_TIMEOUT_SECONDS = float(env_int("WS_PONG_TIMEOUT_SECONDS", 10))
WS_POSITION_CHECK_SECONDS = float(env_int("WS_POSITION_CHECK_SECONDS", int(WS_PING_INTERVAL_SECONDS)))
# Chat messages one user may post per minute, all their tabs together; more closes the socket with 4008.
CHAT_MESSAGES_PER_MINUTE = env_int("CHAT_MESSAGES_PER_MINUTE", 30)
# A change pushed to a connected customer is e-mailed after all if their pages have not sent a `seen` receipt
# of it this many seconds later (orders.delivery); 0 e-mails only customers who are not connected. Keep it below
# CELERY_VISIBILITY_TIMEOUT, or the Redis broker hands the delayed check out twice (still one e-mail).
EMAIL_FALLBACK_AFTER_SECONDS = env_int("EMAIL_FALLBACK_AFTER_SECONDS", 120)

# Status e-mails to customers who are not connected. Console backend unless EMAIL_HOST names an SMTP server.
EMAIL_HOST = env_str("EMAIL_HOST")
# Without EMAIL_HOST, the embedded mode prints e-mails to the console (a laptop); production sends none and logs
# one line without the customer's data, since the console would write names and addresses into shipped logs.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend" if EMBEDDED else "config.mail.NotConfiguredBackend",
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "orders@localhost")
# Where links in e-mails point (e.g. https://shop.example.com); without it e-mails carry no link.
SITE_URL = env_str("SITE_URL").rstrip("/")
# Where customers write for help: the order page's help line and the status e-mails show it.
SUPPORT_EMAIL = env_str("SUPPORT_EMAIL", "support@localhost")

# --- Integrations: webhooks out and guest tracking links (docs/integration.md) ---------------------------
# Webhook URLs must be https and resolve to public addresses; true allows http and private/loopback targets
# (development and tests only: it lets anyone who may register an endpoint reach the internal network).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# Seconds to connect, and to wait for the answer, per attempt.
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# How long an attempt holds its delivery: a worker killed mid-attempt frees it for the sweep after this.
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 60)
if WEBHOOK_LEASE_SECONDS <= 2 * WEBHOOK_TIMEOUT_SECONDS:
    # A lease that lapsed while its attempt still waits would let the sweep send the same delivery twice at once.
    raise ImproperlyConfigured("WEBHOOK_LEASE_SECONDS must be more than twice WEBHOOK_TIMEOUT_SECONDS "
                               "(an attempt waits up to that long: the connect, then the answer)")
# Waits before each retry (seconds): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 27 h in all (the spec's
# example schedule); then the delivery has failed.
try:
    WEBHOOK_RETRY_DELAYS = [int(delay) for delay in
                            env_list("WEBHOOK_RETRY_DELAYS", "5,300,1800,7200,18000,36000,36000")]
except ValueError:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must be comma-separated seconds") from None
# An endpoint with no successful delivery for this many days is disabled and staff are e-mailed.
WEBHOOK_DISABLE_AFTER_DAYS = env_int("WEBHOOK_DISABLE_AFTER_DAYS", 5)
# A guest tracking link stops working this many days after its order was delivered or cancelled.
TRACKING_LINK_DAYS_AFTER_CLOSED = env_int("TRACKING_LINK_DAYS_AFTER_CLOSED", 30)

# --- The WebSocket edge (realtime/gate.py) ----------------------------------------------------------
# Full origins (scheme://host[:port]) whose pages may open sockets; a foreign Origin is refused whatever the
# credentials, and a session-cookie socket must send an allowed one. Default: SITE_URL's origin. The embedded
# mode also admits the socket's own origin (its Host, if ALLOWED_HOSTS accepts it): one process with no proxy
# in front, so that Host and scheme are the browser's own, and a page on another port or host never matches.
WS_ALLOWED_ORIGINS = []
for _origin in env_list("WS_ALLOWED_ORIGINS", origin_of_url(SITE_URL) or ""):
    if canonical_origin(_origin) is None:
        raise ImproperlyConfigured(
            f"WS_ALLOWED_ORIGINS must list full origins such as https://orders.example.com (scheme, host and, "
            f"if not the default, port; no path, no wildcard), got {_origin!r}")
    WS_ALLOWED_ORIGINS.append(canonical_origin(_origin))
WS_ALLOW_OWN_ORIGIN = EMBEDDED
if not EMBEDDED and not WS_ALLOWED_ORIGINS:
    logging.getLogger("config").warning(
        "Neither SITE_URL nor WS_ALLOWED_ORIGINS is set: browsers' sockets will be refused (docs/security.md).")
# Handshakes each server process admits, per client address and in all, as token buckets (a rate per second and
# a burst); more are refused with HTTP 429 before any other work. nginx limits per address in front of this.
WS_HANDSHAKES_PER_SECOND_PER_IP = env_int("WS_HANDSHAKES_PER_SECOND_PER_IP", 10)
WS_HANDSHAKE_BURST_PER_IP = env_int("WS_HANDSHAKE_BURST_PER_IP", 50)
WS_HANDSHAKES_PER_SECOND = env_int("WS_HANDSHAKES_PER_SECOND", 200)
WS_HANDSHAKE_BURST = env_int("WS_HANDSHAKE_BURST", 400)

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# LOG_FORMAT=json: one JSON object per line with request_id / connection_id (config/logs.py), for log shippers.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
# Celery's worker would otherwise replace the root logger's handlers with its own plain format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "config.logs.RequestContextFilter"},
        "redact_tokens": {"()": "config.redaction.RedactTokens"},
        "drop_socket_lifecycle": {"()": "config.logs.DropSocketLifecycle"},
    },
    "formatters": {
        "plain": {"()": "config.logs.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                             "filters": ["request_context", "redact_tokens"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.channels.server": {"level": "WARNING"},
                "uvicorn.error": {"filters": ["drop_socket_lifecycle"]}},
}
# Tokens never reach a log line, whoever logs it (uvicorn logs WebSocket paths with their query string).
install_log_redaction()

# The debug page (and error e-mails) never show connection URLs: they carry passwords.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.debug.SafeSettingsFilter"

if _unsafe:
    if not ALLOW_UNSAFE_SETTINGS:
        raise ImproperlyConfigured(
            "Refusing unsafe production settings: " + "; ".join(_unsafe)
            + ". (ALLOW_UNSAFE_SETTINGS=true starts anyway, for a lab only: docs/security.md.)"
        )
    logging.getLogger("config").warning("UNSAFE SETTINGS (ALLOW_UNSAFE_SETTINGS=true): %s", "; ".join(_unsafe))
if not EMBEDDED and EMAIL_BACKEND == "config.mail.NotConfiguredBackend":
    logging.getLogger("config").warning("EMAIL_HOST is not set: status e-mails to offline customers are not sent.")

if EMBEDDED and not env_bool("QUIET_EMBEDDED_WARNING", False):
    logging.getLogger("config").warning(
        "Embedded mode: %s, %s, %s. Set DATABASE_URL and REDIS_URL for production.",
        "PostgreSQL" if DATABASE_URL else "SQLite",
        "Redis channel layer" if REDIS_URL else "in-memory channel layer",
        "Celery on Redis" if not CELERY_TASK_ALWAYS_EAGER else "eager Celery",
    )
