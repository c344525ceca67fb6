# The platform's one image: web (uvicorn, or daphne), celery worker and celery beat differ only by command.
# Slim, non-root, pinned requirements; build with `docker compose build`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings \
    PROMETHEUS_MULTIPROC_DIR=/run/metrics

# Requirements first, so code changes do not reinstall them. Every package, transitive ones too, is pinned with
# its hashes (`make lock`); every one is a wheel (psycopg[binary] bundles libpq), so no compiler enters the image.
COPY requirements/pip.txt /tmp/pip.txt
COPY requirements/base.txt /tmp/requirements.txt
RUN python -m venv "$VIRTUAL_ENV" \
    && pip install --require-hashes --only-binary :all: -r /tmp/pip.txt \
    && pip install --require-hashes --only-binary :all: -r /tmp/requirements.txt \
    && rm /tmp/pip.txt /tmp/requirements.txt

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
# Root's files, readable by app and not writable: compose also mounts the filesystem read-only.
COPY . /app
# Static files are collected at build time (embedded mode needs no database) and served by whitenoise.
RUN QUIET_EMBEDDED_WARNING=1 python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && chown app:app "$PROMETHEUS_MULTIPROC_DIR"

USER app
EXPOSE 8000
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
# web_command() of worker/processes.py (tests/deploy/test_compose.py compares them).
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "1", "--ws", "websockets-sansio", "--ws-max-size", "16384", "--ws-per-message-deflate", "false", "--proxy-headers", "--no-access-log", "--timeout-graceful-shutdown", "20"]
