"""The end-to-end fixtures (real daphne/uvicorn, celery workers, private redis-servers) for the deploy tests."""

from tests.e2e.conftest import (  # noqa: F401  (pytest finds fixtures by name in conftest modules)
    platform_env,
    private_redis,
    start_process,
    start_server,
    start_worker,
)
