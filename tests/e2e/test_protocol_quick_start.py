"""docs/protocol.md's quick start, run as written against a real uvicorn and worker: a third party copying it gets
a client that logs in, reads its orders and follows their changes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orders import services
from orders.models import Order
from tests.e2e.resuming_client import in_thread
from tests.helpers import PASSWORD, make_order

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def quick_start_code() -> str:
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text.split("## Quick start", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_quick_start_follows_a_customers_orders_live(
    alice: Any, staff: Any, start_server: Any, start_worker: Any, platform_env: dict[str, str]
) -> None:
    order: Order = await in_thread(make_order, alice)
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    script = quick_start_code() + "\nfor change in asyncio.run(follow(stop_after=2)):\n    print('SEEN', *change)\n"
    client = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-c", script], cwd=ROOT, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**platform_env, "BASE": server.http, "USERNAME": "alice", "PASSWORD": PASSWORD})
    try:
        # Changes keep coming until the client has seen two (it may subscribe after the first ones).
        for status in ("confirmed", "preparing", "shipped", "out_for_delivery", "delivered"):
            if client.poll() is not None:
                break
            await in_thread(services.change_status, order=order, to=status, actor=staff)
            await asyncio.sleep(1)
        out, err = await asyncio.to_thread(client.communicate, timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    assert client.returncode == 0, err[-3000:]
    seen = [line.split()[1:] for line in out.splitlines() if line.startswith("SEEN")]
    assert len(seen) == 2 and all(int(order_id) == order.pk for order_id, _seq, _status in seen), out
    # Consecutive, in order, each printed as the docs say.
    (_, first, _), (_, second, _) = seen
    assert int(second) == int(first) + 1
    assert f"{order.number} is now" in out
