"""Load with real processes: 200 status changes over 50 orders through the HTTP API while 200 WebSocket clients
watch; every client must get every change of its order once and in order. Prints the counts."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from accounts import tokens
from orders.models import Order
from orders.states import Status
from tests.e2e.resuming_client import ResumingClient, in_thread, report, wait_until_delivered

pytestmark = pytest.mark.e2e

ORDERS = 50
CLIENTS_PER_ORDER = 4  # two on the order's socket, two on its customer's notification stream
CHANGES = [Status.CONFIRMED, Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY]  # 4 × 50 = 200
DELIVERY_TIMEOUT = 90


def create_customers_and_orders(count: int) -> list[Order]:
    """One customer per order, without password hashing (they authenticate with tokens)."""
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"load-{index}", email=f"load-{index}@example.com") for index in range(count)]
    )
    return [Order.objects.create(customer=user, shipping_address="1 Load Street") for user in users]


def post_status(base_url: str, token: str, order_id: int, status: str) -> int:
    request = urllib.request.Request(
        f"{base_url}/api/orders/{order_id}/status/", data=json.dumps({"status": status}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


async def test_200_changes_over_50_orders_reach_200_clients_with_nothing_lost_duplicated_or_out_of_order(
    staff: Any, start_server: Any, start_worker: Any
) -> None:
    orders = await in_thread(create_customers_and_orders, ORDERS)
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    staff_token = await in_thread(tokens.issue_access_token, staff)
    customer_tokens = {order.pk: await in_thread(tokens.issue_access_token, order.customer) for order in orders}
    clients = [
        ResumingClient(server.ws, customer_tokens[order.pk], {order.pk: 1}, order_socket=index % 2 == 0)
        for order in orders
        for index in range(CLIENTS_PER_ORDER)
    ]
    for batch in range(0, len(clients), 25):
        await asyncio.gather(*(client.start() for client in clients[batch:batch + 25]))

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Round by round so each order moves forward; the orders of a round change concurrently.
        for status in CHANGES:
            answers = await asyncio.gather(*(
                loop.run_in_executor(pool, post_status, server.http, staff_token, order.pk, status)
                for order in orders
            ))
            assert set(answers) == {200}
    changed = time.monotonic() - started
    expected = {order.pk: [2, 3, 4, 5] for order in orders}
    delivered = await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
    elapsed = time.monotonic() - started
    await asyncio.sleep(1)  # a frame sent twice would arrive by now
    await asyncio.gather(*(client.stop() for client in clients))

    tally = report(f"load: {ORDERS * len(CHANGES)} changes, {len(clients)} clients", clients, expected)
    frames = sum(len(seqs) for client in clients for seqs in client.raw.values())
    print(f"load: changes made in {changed:.1f}s, all {frames} frames delivered after {elapsed:.1f}s")
    assert delivered, f"not all delivered within {DELIVERY_TIMEOUT}s"
    assert (tally.lost, tally.duplicated, tally.out_of_order) == (0, 0, 0)
    assert all(client.accepted == {o: expected[o] for o in client.last} for client in clients)
    assert all(client.connections == 1 for client in clients), "no client should have been disconnected"
