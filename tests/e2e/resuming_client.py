"""A WebSocket client that follows docs/protocol.md's resume rule and counts what reached it lost, twice or late.

The rule: keep the last seq per order; (re)connect with it (`?after_seq=` on `/ws/orders/<id>/`, a `subscribe`
frame per order on `/ws/notifications/`); apply seq == last + 1, drop seq <= last, skip a larger one; on
`order.reset` set last := its seq (and reload the order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.db import connections
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

T = TypeVar("T")


@dataclass
class Tally:
    """What a run delivered compared with the events that happened."""

    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    # Frames a notification stream sent ahead of its subscribe replay (the documented race): the rule holds
    # them back and the replay re-sends them in order, so the application never sees them out of order.
    held_back: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.lost + other.lost, self.duplicated + other.duplicated,
                     self.out_of_order + other.out_of_order, self.held_back + other.held_back)

    def __str__(self) -> str:
        return (f"lost={self.lost} duplicated={self.duplicated} out_of_order={self.out_of_order} "
                f"(held back on streams: {self.held_back})")


@dataclass
class ResumingClient:
    """One socket that reconnects by itself (every `retry_every` s) until `stop()`, resuming from its last seqs.

    `raw` keeps every order.status seq as it arrived (per order); `accepted` what the rule applied, in order;
    `resets` the seq of each order.reset, per order.
    """

    ws_base: str
    token: str
    last: dict[int, int]
    order_socket: bool = True
    retry_every: float = 0.2
    raw: dict[int, list[int]] = field(default_factory=dict)
    accepted: dict[int, list[int]] = field(default_factory=dict)
    resets: dict[int, list[int]] = field(default_factory=dict)
    connections: int = 0
    repeats: int = 0
    early: int = 0
    held_back: int = 0
    pongs: int = 0
    _task: asyncio.Task[None] | None = None
    _socket: ClientConnection | None = None
    _connected: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.order_socket and len(self.last) != 1:
            raise ValueError("an order socket follows exactly one order")

    @property
    def origin(self) -> str:
        return "http" + self.ws_base.removeprefix("ws")

    @property
    def url(self) -> str:
        if self.order_socket:
            ((order_id, last),) = self.last.items()
            return f"{self.ws_base}/ws/orders/{order_id}/?after_seq={last}"
        return f"{self.ws_base}/ws/notifications/"

    async def start(self, timeout: float = 30) -> ResumingClient:
        """Connect (retrying) in the background; returns once the first connection is open."""
        self._connected.clear()
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), timeout)
        return self

    async def stop(self) -> None:
        """Close the socket and stop reconnecting (the client going away)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def drop(self) -> None:
        """Close the current socket as a flaky network would; the client reconnects by itself."""
        if self._socket is not None:
            await self._socket.close()

    async def _run(self) -> None:
        while True:
            try:
                async with connect(self.url, subprotocols=["bearer", self.token], origin=self.origin,
                                   open_timeout=5, close_timeout=1, max_queue=None) as ws:
                    self._socket = ws
                    self.connections += 1
                    if not self.order_socket:
                        for order_id, last in self.last.items():
                            await ws.send(json.dumps({"type": "subscribe", "order_id": order_id, "after_seq": last}))
                    self._connected.set()
                    async for text in ws:
                        self.receive(json.loads(text))
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException):
                pass  # the server or the network is down: try again, resuming from self.last
            await asyncio.sleep(self.retry_every)

    def receive(self, frame: dict[str, object]) -> None:
        """Apply the rule: seq == last + 1 is applied; seq <= last is a repeat and dropped; a larger seq is
        ahead of one still missing (on the stream, the replay answering our subscribe is still coming), so it
        is not applied either: the replay or the server's gap fill re-sends it in order. `order.reset`: the client
        was ahead of the order's log; it continues from the log's end (an application would reload the order)."""
        if frame.get("type") == "pong":
            self.pongs += 1
            return
        # order.updated (shipment, ETA) shares the order's seq stream: the same rule applies to it.
        if frame.get("type") not in ("order.status", "order.updated", "order.reset"):
            return
        order_id, seq = int(frame["order_id"]), int(frame["seq"])  # type: ignore[call-overload]
        if order_id not in self.last:
            return  # another order of the same customer, not followed here
        if frame["type"] == "order.reset":
            self.resets.setdefault(order_id, []).append(seq)
            self.last[order_id] = seq
            return
        self.raw.setdefault(order_id, []).append(seq)
        if seq <= self.last[order_id]:
            self.repeats += 1
        elif seq > self.last[order_id] + 1 and not self.order_socket:
            self.held_back += 1  # live frame ahead of the replay our subscribe asked for: it re-sends this one
        elif seq > self.last[order_id] + 1:
            self.early += 1  # an order socket resumes from after_seq at connect: nothing may come ahead
        else:
            self.accepted.setdefault(order_id, []).append(seq)
            self.last[order_id] = seq

    async def barrier(self, timeout: float = 30) -> None:
        """Ping and wait for the pong: a consumer handles its messages in order, so every frame queued for this
        socket before the ping (a duplicate among them) has arrived by then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            before = self.pongs
            try:
                assert self._socket is not None
                await self._socket.send(json.dumps({"type": "ping"}))
            except (AssertionError, WebSocketException):
                await asyncio.sleep(0.1)  # between connections: ping the next one
                continue
            answered = loop.time() + 5
            while self.pongs == before and loop.time() < min(answered, deadline):
                await asyncio.sleep(0.02)
            if self.pongs > before:
                return
        raise TimeoutError(f"no pong within {timeout}s")

    def has(self, expected: dict[int, list[int]]) -> bool:
        return all(self.last.get(order_id, 0) >= seqs[-1] for order_id, seqs in expected.items() if seqs)

    def tally(self, expected: dict[int, list[int]]) -> Tally:
        """Compare what was applied with the seqs that happened after the client's starting point.

        lost: an expected seq never applied. duplicated: a frame repeating a seq already applied (the rule drops
        it; the application never sees one twice). out_of_order: a frame on an order socket that arrived ahead of
        a missing one. held_back: the same on a notification stream before its subscribe replay (see the class).
        """
        lost = sum(len(set(seqs) - set(self.accepted.get(order_id, []))) for order_id, seqs in expected.items())
        return Tally(lost=lost, duplicated=self.repeats, out_of_order=self.early, held_back=self.held_back)


async def wait_until_delivered(clients: list[ResumingClient], expected: dict[int, list[int]],
                               timeout: float) -> bool:
    """Wait until every client has the last expected seq of each order it follows; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if all(client.has({o: expected.get(o, []) for o in client.last}) for client in clients):
            return True
        await asyncio.sleep(0.1)
    return False


async def settle(clients: list[ResumingClient]) -> None:
    """After the last push: every frame the servers hold for these clients has arrived (see barrier)."""
    await asyncio.gather(*(client.barrier() for client in clients))


def report(name: str, clients: list[ResumingClient], expected: dict[int, list[int]]) -> Tally:
    """Print the counts the issue asks for (pytest -s shows them) and return them for the assertions."""
    tally = sum((client.tally({o: expected.get(o, []) for o in client.last}) for client in clients), start=Tally())
    reconnects = sum(client.connections - 1 for client in clients)
    print(f"\n{name}: {tally} ({len(clients)} clients, {reconnects} reconnections)")
    if tally != Tally():
        print("frames as received, per client:", [client.raw for client in clients])
    return tally


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ORM code off the event loop; the thread's connection is closed so the test database can be dropped."""

    def call() -> T:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)
