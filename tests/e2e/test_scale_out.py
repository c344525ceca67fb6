"""Scale-out with real processes: two uvicorn servers and two celery workers on one Redis and one PostgreSQL.

Redis carries the groups between the server processes (the seed's closing tip), so a client on either
server sees every event; when its server dies, the client resumes on the other with after_seq and misses
nothing. Also the uvicorn alternative with several worker processes behind one port.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from accounts import tokens
from orders import selectors, services
from orders.models import Order
from tests.e2e.processes import Process, Server, free_port, own_origins
from tests.helpers import make_order
from worker.processes import web_command

pytestmark = pytest.mark.e2e

ORDERS = 10
# Every order walks the whole happy path: 10 orders x 5 changes = 50 status events.
PATH = ("confirmed", "preparing", "shipped", "out_for_delivery", "delivered")
DEADLINE_SECONDS = 60


class OrderWatcher:
    """One client of one order: a socket on /ws/orders/<id>/ that resumes with after_seq when it drops."""

    def __init__(self, order_id: int, after_seq: int, token: str) -> None:
        self.order_id = order_id
        self.after_seq = after_seq
        self.token = token
        self.frames: list[dict[str, Any]] = []
        self.servers_used: list[int] = []

    @property
    def last_seq(self) -> int:
        return self.frames[-1]["seq"] if self.frames else self.after_seq

    async def open(self, server: Server) -> ClientConnection:
        """Connect with after_seq and wait for the pong that says the replay and the group join are done."""
        ws = await connect(f"{server.ws}/ws/orders/{self.order_id}/?after_seq={self.last_seq}",
                           subprotocols=["bearer", self.token], origin=server.http)
        self.servers_used.append(server.port)
        await ws.send(json.dumps({"type": "ping"}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "pong":
                return ws
            self.frames.append(frame)

    async def read(self, ws: ClientConnection, fallback: Server, expected: int) -> None:
        """Collect frames until `expected` arrived; on a dropped connection resume on `fallback` once."""
        while len(self.frames) < expected:
            try:
                frame = json.loads(await ws.recv())
            except ConnectionClosed:
                ws = await self.open(fallback)
                continue
            assert frame["type"] == "order.status", frame
            self.frames.append(frame)
        await ws.close()


def change_all(orders: list[Order], done: threading.Event) -> None:
    """The 50 status changes, interleaved across orders, as staff would make them (the real service)."""
    try:
        for status in PATH:
            for order in orders:
                services.change_status(order=order, to=status, actor=None)
                time.sleep(0.03)  # a steady stream, so the server dies in the middle of it
    finally:
        connection.close()
        done.set()


def assert_exactly_once_in_order(watchers: list[OrderWatcher], initial_seq: dict[int, int]) -> None:
    for watcher in watchers:
        seqs = [frame["seq"] for frame in watcher.frames]
        first = initial_seq[watcher.order_id] + 1
        assert seqs == list(range(first, first + len(PATH))), (watcher.order_id, seqs)
        assert [frame["status"] for frame in watcher.frames] == list(PATH)


async def test_clients_on_two_servers_get_every_event_once_and_resume_on_the_other_when_one_dies(
    alice: Any, start_server: Callable[..., Server], start_worker: Callable[..., Process]
) -> None:
    # One customer holds 2 x 10 sockets here, plus the dead server's slots until they expire.
    roomy = {"WS_MAX_CONNECTIONS_PER_USER": "100"}
    first, second = await asyncio.gather(asyncio.to_thread(start_server, env=roomy),
                                         asyncio.to_thread(start_server, env=roomy))
    workers = await asyncio.gather(asyncio.to_thread(start_worker), asyncio.to_thread(start_worker))
    orders = [await asyncio.to_thread(make_order, alice) for _ in range(ORDERS)]
    initial_seq = {order.pk: await asyncio.to_thread(selectors.current_seq, order.pk) for order in orders}
    token = tokens.issue_access_token(alice)

    on_first = [OrderWatcher(order.pk, initial_seq[order.pk], token) for order in orders]
    on_second = [OrderWatcher(order.pk, initial_seq[order.pk], token) for order in orders]
    first_sockets = [await watcher.open(first) for watcher in on_first]
    second_sockets = [await watcher.open(second) for watcher in on_second]

    done = threading.Event()
    producer = threading.Thread(target=change_all, args=(orders, done), daemon=True)
    readers = [asyncio.ensure_future(watcher.read(ws, second, len(PATH)))
               for watcher, ws in zip(on_first + on_second, first_sockets + second_sockets, strict=True)]
    producer.start()
    try:
        # Kill the first server (no goodbye) once its clients are a third of the way through.
        deadline = time.monotonic() + DEADLINE_SECONDS
        while sum(len(watcher.frames) for watcher in on_first) < ORDERS * len(PATH) // 3:
            assert time.monotonic() < deadline, "the first server's clients stopped receiving events"
            await asyncio.sleep(0.01)
        delivered_before_kill = sum(len(watcher.frames) for watcher in on_first)
        first.kill()
        await asyncio.wait_for(asyncio.gather(*readers), DEADLINE_SECONDS)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.to_thread(producer.join, DEADLINE_SECONDS)

    assert delivered_before_kill < ORDERS * len(PATH), "the server should die in the middle of the stream"
    assert_exactly_once_in_order(on_second, initial_seq)
    assert_exactly_once_in_order(on_first, initial_seq)
    assert all(watcher.servers_used == [first.port, second.port] for watcher in on_first), \
        "each client of the killed server resumed on the other one"
    assert all(watcher.servers_used == [second.port] for watcher in on_second)
    # Both workers took part: Redis is one queue for all of them.
    for worker in workers:
        assert re.search(r"Task orders\.tasks\.send_order_update\[[^\]]+\] succeeded", worker.log), worker.name


async def test_uvicorn_with_two_worker_processes_serves_sockets_from_both_over_one_port(
    alice: Any, alice_order: Order, platform_env: dict[str, str], start_process: Callable[..., Process],
    start_worker: Callable[..., Process],
) -> None:
    port = free_port()
    server = start_process(Server(f"uvicorn-{port}", web_command(port=port, workers=2),
                                  {**platform_env, **own_origins(port)}, port))
    await asyncio.to_thread(server.wait_ready)
    await asyncio.to_thread(start_worker)
    await asyncio.to_thread(server.wait_for_log, "Application startup complete", 30)
    pids = set(re.findall(r"Started server process \[(\d+)\]", server.log))
    for _ in range(100):  # the second process may still be starting
        if len(pids) == 2:
            break
        await asyncio.sleep(0.1)
        pids = set(re.findall(r"Started server process \[(\d+)\]", server.log))
    assert len(pids) == 2, server.log

    token = tokens.issue_access_token(alice)
    url = f"{server.ws}/ws/orders/{alice_order.pk}/"
    # The kernel hands each connection to whichever process accepts first: open sockets until both hold some.
    sockets: list[ClientConnection] = []
    holders: dict[int, int] = {}
    try:
        while len(set(holders.values())) < 2 and len(sockets) < 40:
            ws = await connect(url, subprotocols=["bearer", token], origin=server.http)
            sockets.append(ws)
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
            holders[ws.local_address[1]] = socket_holder(server.port, ws.local_address[1])
        assert set(holders.values()) == {int(pid) for pid in pids}, holders
        await asyncio.to_thread(services.change_status, order=alice_order, to="confirmed", actor=None)
        for ws in sockets:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert (frame["order_id"], frame["status"]) == (alice_order.pk, "confirmed")
    finally:
        for ws in sockets:
            await ws.close()


def socket_holder(server_port: int, client_port: int) -> int:
    """The pid of the process holding the server end of the loopback TCP connection from `client_port`."""
    wanted = f"0100007F:{server_port:04X} 0100007F:{client_port:04X}"
    inode = next(fields[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if " ".join((fields := line.split())[1:3]) == wanted)
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.parts[2])
        except OSError:  # a process or descriptor that went away meanwhile
            continue
    raise LookupError(f"no process holds the connection from port {client_port}")
