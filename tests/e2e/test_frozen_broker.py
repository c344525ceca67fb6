"""A broker that accepts connections and never answers (a frozen Redis, a half-open connection through a dead
proxy) costs one save its timeout, not every save: later saves leave their pushes to the outbox sweep at once,
and no event is lost."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from orders.models import Order, OrderEvent
from tests.e2e.processes import ROOT
from tests.helpers import make_order

pytestmark = pytest.mark.e2e

CHANGES = """
import json, time
from orders import services
from orders.models import Order
took = []
for pk in json.loads(ORDER_IDS):
    started = time.monotonic()
    services.change_status(order=Order.objects.get(pk=pk), to="confirmed", actor=None)
    took.append(time.monotonic() - started)
print("TOOK", json.dumps(took))
"""


@pytest.fixture
def frozen_broker() -> Iterator[int]:
    """A listening socket that never accepts: the kernel completes every handshake, nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_frozen_broker_delays_one_save_by_its_timeout_and_the_rest_not_at_all(
    platform_env: dict[str, str], frozen_broker: int, alice: Any
) -> None:
    orders = [make_order(alice) for _ in range(6)]
    ids = json.dumps([order.pk for order in orders])
    env = {**platform_env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{frozen_broker}/0",
           "CELERY_BROKER_SOCKET_TIMEOUT": "2", "BROKER_UNAVAILABLE_BACKOFF_SECONDS": "60"}
    run = subprocess.run([sys.executable, "manage.py", "shell", "-c", f"ORDER_IDS={ids!r}\n{CHANGES}"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    took = json.loads(run.stdout.split("TOOK ", 1)[1])

    # The first save waits out the broker's read timeout (2 s, one retry) and gives up; before this bound, with
    # no timeout, it waited forever, and with one every save waited its own.
    assert 1.5 < took[0] < 10, took
    assert sum(took[1:]) < 2, took
    assert "pushes from this process wait for the sweep for 60 s" in run.stderr
    # Every change is written, and waits in the outbox for the sweep.
    assert all(order.status == "confirmed" for order in Order.objects.filter(pk__in=[o.pk for o in orders]))
    unpublished = OrderEvent.objects.filter(order__in=orders, to_status="confirmed", published_at__isnull=True)
    assert unpublished.count() == len(orders)
