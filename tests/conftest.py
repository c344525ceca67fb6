"""Shared fixtures: the three personas (alice owns, bob is another customer, staff), orders, real services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model

from orders.models import Order, OrderItem
from worker.celery import app as celery_app

PASSWORD = "correct-horse-battery"


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
    """In-process sockets come from tests/realtime/conftest.py's page origin, and a run opens thousands of them
    from one test client: allow that origin and lift the per-process handshake limits (the tests of those
    limits set their own)."""
    settings.WS_ALLOWED_ORIGINS = ["http://localhost"]
    settings.WS_HANDSHAKE_BURST_PER_IP = settings.WS_HANDSHAKE_BURST = 1_000_000


def make_user(username: str, *, is_staff: bool = False, is_active: bool = True) -> Any:
    return get_user_model().objects.create_user(
        username=username, password=PASSWORD, is_staff=is_staff, is_superuser=is_staff, is_active=is_active,
        email=f"{username}@example.com",
    )


@pytest.fixture
def alice(db: None) -> Any:
    return make_user("alice")


@pytest.fixture
def bob(db: None) -> Any:
    return make_user("bob")


@pytest.fixture
def staff(db: None) -> Any:
    return make_user("staff", is_staff=True)


def make_order(customer: Any) -> Order:
    order = Order.objects.create(customer=customer, shipping_address="1 Test Street")
    OrderItem.objects.create(order=order, name="Beans", quantity=2, unit_price="9.50")
    return order


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


def restore_order_at_seq_1(order: Order) -> None:
    """What restoring a backup taken when the order was new does to it: raw rows, no model code, no push."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_orderevent WHERE order_id = %s AND seq > 1", [order.pk])
        cursor.execute("UPDATE orders_order SET seq = 1, status = 'pending' WHERE id = %s", [order.pk])
