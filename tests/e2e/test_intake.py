"""Order intake end to end: a shop's system posts orders with its API key to a real uvicorn; a real celery worker
pushes each new order over Redis to the staff's real WebSocket client; retries of one Idempotency-Key sent at
once, over real connections, make one order and get one answer."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect

from accounts import apikeys, tokens
from orders.models import Order

pytestmark = pytest.mark.e2e


def post_order(base: str, secret: str, body: dict[str, Any], key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{base}/api/orders/", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def test_posted_orders_reach_the_staff_stream_and_concurrent_retries_make_one(
    staff: Any, start_server: Any, start_worker: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    _key, secret = await asyncio.to_thread(apikeys.issue_api_key, name="shop", scopes=["orders:write"])
    staff_token = await asyncio.to_thread(tokens.issue_access_token, staff)
    body = {"external_ref": "E2E-1", "customer": {"email": "erin@example.com", "name": "Erin"},
            "items": [{"name": "Tea", "quantity": 3, "unit_price": "4.20"}], "currency": "EUR"}

    async with connect(f"{server.ws}/ws/notifications/", subprotocols=["bearer", staff_token],
                       origin=server.http) as staff_ws:
        await staff_ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(staff_ws.recv(), timeout=5))["type"] == "pong"
        answers = await asyncio.gather(
            *(asyncio.to_thread(post_order, server.http, secret, body, "retry-storm") for _ in range(5)))
        assert len(set(answers)) == 1, answers
        status, content = answers[0]
        assert status == 201
        order = json.loads(content)
        frame = json.loads(await asyncio.wait_for(staff_ws.recv(), timeout=5))
        assert (frame["type"], frame["order_id"], frame["seq"], frame["status"]) == (
            "order.status", order["id"], 1, "pending")
        with pytest.raises(TimeoutError):  # one order, one push
            await asyncio.wait_for(staff_ws.recv(), timeout=1)
    assert await asyncio.to_thread(Order.objects.count) == 1
