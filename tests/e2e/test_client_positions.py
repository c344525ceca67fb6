"""Client positions with real uvicorn and celery processes: a client ahead of the log is told `order.reset` and then
gets every later change; a change whose push never leaves (no worker) reaches open sockets by the position check."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from accounts import tokens
from orders import services
from orders.models import Order
from orders.states import Status
from tests.e2e.processes import Server
from tests.e2e.resuming_client import ResumingClient, Tally, in_thread, report, wait_until_delivered

pytestmark = pytest.mark.e2e

DELIVERY_TIMEOUT = 45


async def change(order: Order, to: str, actor: Any) -> int:
    event = await in_thread(services.change_status, order=order, to=to, actor=actor)
    return event.seq


async def wait_for(condition: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_clients_ahead_of_the_log_get_order_reset_then_every_later_change_once_in_order(
    alice: Any, staff: Any, alice_order: Order, start_server: Any, start_worker: Any
) -> None:
    server = await asyncio.to_thread(start_server)
    await asyncio.to_thread(start_worker)
    await change(alice_order, Status.CONFIRMED, staff)
    token = await in_thread(tokens.issue_access_token, alice)
    # Both think the order is at seq 9 (a database restored from a backup taken later than it now is).
    clients = [ResumingClient(server.ws, token, {alice_order.pk: 9}),
               ResumingClient(server.ws, token, {alice_order.pk: 9}, order_socket=False)]
    for client in clients:
        await client.start()
    assert await wait_for(lambda: all(client.resets.get(alice_order.pk) for client in clients), DELIVERY_TIMEOUT)
    assert [client.resets[alice_order.pk] for client in clients] == [[2], [2]]

    # The reset came after the socket joined its groups (order socket) or the subscribe (stream): live from here.
    expected = {alice_order.pk: [await change(alice_order, status, staff)
                                 for status in (Status.PREPARING, Status.SHIPPED)]}
    assert await wait_until_delivered(clients, expected, DELIVERY_TIMEOUT)
    for client in clients:
        await client.stop()
    assert report("ahead of the log", clients, expected) == Tally()


async def opened(server: Server, path: str, token: str) -> ClientConnection:
    """A socket whose connect work is done: the server answers a ping only after it."""
    socket = await connect(f"{server.ws}{path}", subprotocols=["bearer", token], origin=server.http, open_timeout=10)
    await socket.send(json.dumps({"type": "ping"}))
    while json.loads(await asyncio.wait_for(socket.recv(), DELIVERY_TIMEOUT))["type"] != "pong":
        pass
    return socket


async def next_status(socket: ClientConnection, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (frame := json.loads(await socket.recv()))["type"] != "order.status":
            pass
    return frame


async def test_a_change_whose_push_never_leaves_reaches_open_sockets_within_one_position_check(
    alice: Any, staff: Any, alice_order: Order, start_server: Any
) -> None:
    # No worker: the push waits in the broker for good, as a lost one would; only the servers' check can help.
    server = await asyncio.to_thread(start_server, env={"WS_POSITION_CHECK_SECONDS": "1"})
    alice_token = await in_thread(tokens.issue_access_token, alice)
    staff_token = await in_thread(tokens.issue_access_token, staff)
    sockets = [await opened(server, f"/ws/orders/{alice_order.pk}/", alice_token),
               await opened(server, "/ws/notifications/", alice_token),
               await opened(server, "/ws/notifications/", staff_token)]
    await change(alice_order, Status.CONFIRMED, staff)
    for socket in sockets:
        frame = await next_status(socket, DELIVERY_TIMEOUT)
        # The staff stream had not seen this order: it may first get its latest event before the change.
        if frame["seq"] == 1:
            frame = await next_status(socket, DELIVERY_TIMEOUT)
        assert (frame["order_id"], frame["seq"], frame["status"]) == (alice_order.pk, 2, "confirmed")
    for socket in sockets:
        await socket.close()
