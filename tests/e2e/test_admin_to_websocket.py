"""The spine end to end: staff change an order in /admin/ of a real uvicorn (the production default) or daphne
(the alternative); a real celery worker, on each of its pools, pushes it over Redis; the owner's real WebSocket
client gets `order.status`, another customer's gets nothing."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import pytest
from websockets.asyncio.client import connect

from accounts import tokens
from orders.models import Order
from tests.e2e.browser_session import BrowserSession
from tests.helpers import PASSWORD

pytestmark = pytest.mark.e2e


async def frame_and_time(ws: Any) -> tuple[dict[str, Any], float]:
    """The next frame and when it arrived (wall clock, comparable with a frame's `at`)."""
    raw = await asyncio.wait_for(ws.recv(), timeout=30)
    return json.loads(raw), time.time()


# Each server with the default pool, and uvicorn with each of the worker's pools (worker/processes.py).
@pytest.mark.parametrize(("server_kind", "pool"), [("uvicorn", "prefork"), ("daphne", "prefork"),
                                                   ("uvicorn", "threads"), ("uvicorn", "solo")])
async def test_admin_change_reaches_owner_socket_within_2s_and_not_other_customer(
    server_kind: str, pool: str, alice: Any, bob: Any, staff: Any, alice_order: Order, start_server: Any,
    start_worker: Any
) -> None:
    server = await asyncio.to_thread(start_server, server=server_kind)
    await asyncio.to_thread(start_worker, pool=pool)
    alice_token, bob_token = tokens.issue_access_token(alice), tokens.issue_access_token(bob)
    origin = server.http

    stream = f"{server.ws}/ws/notifications/"
    async with connect(stream, subprotocols=["bearer", alice_token], origin=origin) as alice_ws, \
            connect(stream, subprotocols=["bearer", bob_token], origin=origin) as bob_ws:
        assert alice_ws.subprotocol == "bearer"
        admin = BrowserSession(server.http)
        await asyncio.to_thread(admin.admin_login, staff.username, PASSWORD)
        url, _page = await asyncio.to_thread(admin.admin_change_order, alice_order.pk, status="confirmed")
        assert url.endswith("/admin/orders/order/"), "the change form should save and redirect to the list"

        # Waited for generously (a loaded machine), judged on what a customer sees: from the event's commit (its
        # `at`) to the frame in hand.
        frame, received = await frame_and_time(alice_ws)
        assert frame["type"] == "order.status"
        assert (frame["order_id"], frame["seq"], frame["status"], frame["previous"]) == (
            alice_order.pk, 2, "confirmed", "pending")
        assert received - datetime.fromisoformat(frame["at"]).timestamp() < 2, frame
        # And the next one: a solo worker used to hang for good on its second task (worker/celery.py).
        url, _page = await asyncio.to_thread(admin.admin_change_order, alice_order.pk, status="preparing")
        frame, received = await frame_and_time(alice_ws)
        assert (frame["seq"], frame["status"]) == (3, "preparing")
        assert received - datetime.fromisoformat(frame["at"]).timestamp() < 2, frame
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(bob_ws.recv(), timeout=1)


async def test_admin_refuses_an_illegal_change_with_a_form_error(
    staff: Any, alice_order: Order, start_server: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    admin = BrowserSession(server.http)
    await asyncio.to_thread(admin.admin_login, staff.username, PASSWORD)
    url, page = await asyncio.to_thread(admin.admin_change_order, alice_order.pk, status="delivered")
    assert url.endswith(f"/admin/orders/order/{alice_order.pk}/change/")
    assert "cannot become delivered" in page
    refreshed = await asyncio.to_thread(Order.objects.get, pk=alice_order.pk)
    assert refreshed.status == "pending"
