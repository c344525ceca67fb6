"""Shared fixtures: the three personas (alice owns, bob is another customer, staff), orders, real services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings

from orders.models import Order
from tests.helpers import make_order, make_user
from worker.celery import app as celery_app

# Fixtures from plugin modules (never a conftest imported as a module).
pytest_plugins = ["tests.fixtures.processes"]

@pytest.fixture(scope="session", autouse=True)
def real_services() -> None:
    """The suite runs on real PostgreSQL and Redis; without them it fails loudly instead of skipping."""
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.fail(f"Tests need PostgreSQL (DATABASE_URL), not {engine}. Run them with `make test`.")
    if not settings.REDIS_URL:
        pytest.fail("Tests need Redis (REDIS_URL). Run them with `make test`.")
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {settings.REDIS_URL} is not answering: {exc}")


@pytest.fixture(autouse=True)
def _fresh_channel_layer_prefix(settings: Any) -> Iterator[None]:
    """Each test gets its own channel-layer key prefix so leftovers of another test never arrive."""
    import uuid

    from channels.layers import channel_layers

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    layers = {name: {**conf, "CONFIG": {**conf.get("CONFIG", {}), "prefix": prefix}}
              for name, conf in settings.CHANNEL_LAYERS.items()}
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture(autouse=True)
def _broker_assumed_up() -> None:
    """A broker outage one test caused must not leave the next test's pushes to the outbox sweep
    (orders.tasks.enqueue_push backs off for a while after a failed publish)."""
    from orders import tasks

    tasks._broker_down_until = 0.0


@pytest.fixture(autouse=True)
def _fresh_presence_prefix(settings: Any) -> None:
    """Each test gets its own presence keys: order ids repeat across runs, Redis keys would otherwise linger."""
    import uuid

    settings.PRESENCE_KEY_PREFIX = f"test-presence-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _fresh_auth_state_prefix(settings: Any) -> None:
    """Each test gets its own login counters, token families and socket slots (usernames repeat across tests)."""
    import uuid

    settings.AUTH_STATE_PREFIX = f"test-auth-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _sockets_from_the_test_page(settings: Any) -> None:
    """In-process sockets come from tests/realtime/sockets.py's page origin, and a run opens thousands of them
    from one test client: allow that origin and lift the per-process handshake limits (the tests of those
    limits set their own)."""
    settings.WS_ALLOWED_ORIGINS = ["http://localhost"]
    settings.WS_HANDSHAKE_BURST_PER_IP = settings.WS_HANDSHAKE_BURST = 1_000_000


@pytest.fixture
def alice(db: None) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(db: None) -> Any:
    return make_user("bob")


@pytest.fixture
def staff(db: None) -> Any:
    return make_user("staff", is_staff=True)


@pytest.fixture
def alice_order(alice: Any) -> Order:
    return make_order(alice)


@pytest.fixture
def bob_order(bob: Any) -> Order:
    return make_order(bob)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run send_order_update inline at commit: the real push over the real Redis channel layer, no worker."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def inactive(db: None) -> Any:
    return make_user("inactive", is_active=False)


@pytest.fixture
def fast_password_hashing(settings: Any) -> None:
    """For suites that create many users and log in often: the hash's cost is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
