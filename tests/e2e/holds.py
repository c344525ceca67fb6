"""Ways an end-to-end test holds a task in flight for as long as it likes (a row lock that a push's
`mark_published` waits on, an SMTP server that accepts connections and never says a word), and the order steps
the worker tests share."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from types import TracebackType
from typing import Any

import psycopg
from django.db import connection

from accounts import tokens
from orders import services
from orders.models import Order, OrderEvent
from tests.e2e.processes import Process
from tests.e2e.resuming_client import ResumingClient, in_thread, wait_until_delivered

DELIVERY_TIMEOUT = 60


def database_url() -> str:
    """The test database, as the platform's child processes reach it (tests/fixtures/processes.py platform_env)."""
    db = connection.settings_dict
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class EventRowLock:
    """Locks one OrderEvent row FOR UPDATE in a transaction of its own until released.

    A push of that event sends its frames, then waits in `mark_published` (an UPDATE of the row): in flight,
    unacknowledged, for as long as the lock is held (or until the worker's statement timeout).
    """

    def __init__(self, event_id: int) -> None:
        self.event_id = event_id
        self._conn: psycopg.Connection | None = None

    def acquire(self) -> EventRowLock:
        self._conn = psycopg.connect(database_url())
        self._conn.execute("SELECT id FROM orders_orderevent WHERE id = %s FOR UPDATE", [self.event_id])
        return self

    def __enter__(self) -> EventRowLock:
        return self.acquire()

    def release(self) -> None:
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def wait_for_waiter(self, timeout: float = 30) -> None:
        """Block until another session's UPDATE of orders_orderevent waits for a lock (the push we hold)."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(database_url(), autocommit=True) as probe:
            while time.monotonic() < deadline:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE 'UPDATE \"orders_orderevent\"%'").fetchone()
                if row and row[0]:
                    return
                time.sleep(0.05)
        raise TimeoutError(f"no UPDATE of event {self.event_id} waited on the lock within {timeout}s")


class SilentSmtpServer:
    """A listening socket that accepts SMTP clients and never sends the greeting: smtplib waits for it until
    its timeout (EMAIL_TIMEOUT). Counts the connections accepted and those the client has closed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-smtp", daemon=True)

    def __enter__(self) -> SilentSmtpServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            for client in self._clients:
                client.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopped.is_set():
            try:
                client, _address = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._clients.append(client)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._clients)

    @property
    def still_open(self) -> int:
        """Accepted connections the client has not closed (a closed one reads as EOF)."""
        with self._lock:
            clients = list(self._clients)
        open_count = 0
        for client in clients:
            try:
                client.setblocking(False)
                if client.recv(1, socket.MSG_PEEK) != b"":
                    open_count += 1  # it sent something (it never should before the greeting); still open
            except BlockingIOError:
                open_count += 1
            except OSError:
                pass
        return open_count


async def change(order: Order, to: str, actor: Any) -> OrderEvent:
    return await in_thread(services.change_status, order=order, to=to, actor=actor)


async def unpublished(order: Order) -> list[int]:
    return await in_thread(lambda: list(OrderEvent.objects.filter(order=order, published_at=None)
                                        .values_list("seq", flat=True)))


async def wait_all_published(order: Order, timeout: float = DELIVERY_TIMEOUT) -> list[int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := await unpublished(order)) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    return left


async def open_clients(server: Any, order: Order) -> list[ResumingClient]:
    """The customer's two views of one order: its own socket and her notification stream."""
    token = await in_thread(tokens.issue_access_token, order.customer)
    clients = [ResumingClient(server.ws, token, {order.pk: 1}),
               ResumingClient(server.ws, token, {order.pk: 1}, order_socket=False)]
    for client in clients:
        await client.start()
    return clients


async def push_held_in_flight(worker: Process, order: Order, to: str, actor: Any,
                              clients: list[ResumingClient]) -> EventRowLock:
    """Change the order and hold its push after its frames went out: the worker has taken the task, not acked it.

    The worker is paused (SIGSTOP) while the change commits, so the row lock is in place before it can reach
    `mark_published`; the caller releases the returned lock.
    """
    worker.send_signal(signal.SIGSTOP)
    try:
        event = await change(order, to, actor)
        lock = EventRowLock(event.pk).acquire()
    finally:
        worker.send_signal(signal.SIGCONT)
    try:
        assert await wait_until_delivered(clients, {order.pk: list(range(2, event.seq + 1))}, DELIVERY_TIMEOUT)
        await asyncio.to_thread(lock.wait_for_waiter)
    except BaseException:
        lock.release()
        raise
    return lock
