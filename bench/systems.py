"""The three systems the benchmark compares, behind one shape: start, client lines for a scenario, trigger, stop.

- ours: the platform in production mode; a change is orders.services.change_status in this process.
- seed: the seed article's design (bench/baselines/seed); a change is its Celery task sent by name.
- ceiling: bare websockets + Redis pub/sub (bench/baselines/ceiling); a change is one PUBLISH.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from bench import ours
from bench.baselines._proc import Proc
from bench.baselines.ceiling import run as ceiling_run
from bench.baselines.ceiling import server as ceiling_server
from bench.baselines.seed import run as seed_run
from bench.baselines.seed.conf import CELERY_QUEUE, TASK_NAME

# One loadgen session: its client lines, how many measured frames it expects, and what to do once all are open.
Trigger = Callable[[], None]


@dataclass
class Scenario:
    lines: list[str]
    expect: int
    changes: list[Trigger]  # one callable per change; fan-out runs them one at a time, waiting for quiet
    origin: str | None = None  # what a browser sends; our origin check refuses a socket without one
    # Ours accepts the socket before it authenticates and joins its groups (so close codes reach the client):
    # a client is counted open once its ping was answered, i.e. the subscription is in place.
    ping_until_ready: bool = False


class System:
    name: str
    server_label: str
    handle: Any

    @property
    def web(self) -> list[Proc]:
        return self.handle.stack.procs[:1]

    @property
    def procs(self) -> list[Proc]:
        return list(self.handle.stack.procs)

    def latency(self, watchers: int, changes: int) -> Scenario:
        """`watchers` users with one socket each; change j goes to user j % watchers."""
        raise NotImplementedError

    def fanout(self, watchers: int, changes: int, group: str) -> Scenario:
        """`watchers` sockets in one group (`order`: one order's watchers; `staff`: the staff stream)."""
        raise NotImplementedError

    def stop(self) -> None:
        self.handle.stop()


class Ours(System):
    name = "ours"

    def __init__(self, database_url: str, redis_url: str, server: str, server_cpus: Sequence[int] | None,
                 worker_cpus: Sequence[int] | None, *, shards: int = 0, max_sockets: int = 1000) -> None:
        """`shards` > 0: that many web processes behind nginx, the channel layer over as many redis-servers."""
        # Django first: the server's command line reads its WebSocket message limit from the settings.
        ours.setup_django(database_url, redis_url)
        self.handle = ours.start(database_url, redis_url, server=server, server_cpus=server_cpus,
                                 worker_cpus=worker_cpus, web_processes=max(1, shards), layer_shards=shards,
                                 max_sockets=max_sockets)
        self.database_url = database_url
        self.server_label = server if not shards else f"{shards} x {server} behind nginx, layer over {shards} Redis"
        self.redis_url = redis_url
        self.origin = f"http://127.0.0.1:{self.handle.port}"
        # The stage breakdown's publish times in this process (bench/stages.py).
        from bench.stages import PublishMarks

        self.publish_marks = PublishMarks()
        from orders.models import Order

        # Orders of earlier runs would make each customer's stream read more on connect.
        Order.objects.filter(customer__username__startswith="bench-").delete()

    @property
    def web(self) -> list[Proc]:
        return self.handle.stack.procs[: self.handle.web_count]

    def bench_request(self, method: str, route: str) -> Any:
        """One of the server's bench-only routes (bench/asgi.py), e.g. POST frames/on; its JSON answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.handle.port, timeout=10)
        try:
            conn.request(method, f"/__bench__/{route}")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{method} /__bench__/{route}: {response.status} {body[:200]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def latency(self, watchers: int, changes: int) -> Scenario:
        customers = ours.users("bench-c", watchers)
        orders = ours.new_orders(customers, changes)
        lines = ours.urls(self.handle, "/ws/notifications/", ours.tokens(customers))
        return Scenario(lines, changes, [lambda o=o: ours.change([o], rate=None) for o in orders], self.origin,
                        ping_until_ready=True)

    def fanout(self, watchers: int, changes: int, group: str) -> Scenario:
        from orders.states import Status

        owner = ours.users("bench-owner", 1)[0]
        (order,) = ours.new_orders([owner], 1)
        steps = [Status.CONFIRMED, Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY, Status.DELIVERED]
        if changes > len(steps):
            raise ValueError(f"at most {len(steps)} changes per order")
        if group == "order":
            # One order on N sockets: its customer's tabs (the per-user socket cap is raised for the bench).
            lines = ours.urls(self.handle, f"/ws/orders/{order.pk}/", ours.tokens([owner]) * watchers)
        else:
            lines = ours.urls(self.handle, "/ws/notifications/", ours.tokens(ours.users("bench-s", watchers,
                                                                                        staff=True)))
        changes_made = [lambda to=to: ours.change([order], rate=None, to=to) for to in steps[:changes]]
        return Scenario(lines, watchers * changes, changes_made, self.origin, ping_until_ready=True)


class Seed(System):
    name = "seed"

    def __init__(self, redis_url: str, server_cpus: Sequence[int] | None, worker_cpus: Sequence[int] | None) -> None:
        self.handle = seed_run.start(redis_url, server="daphne", server_cpus=server_cpus, worker_cpus=worker_cpus)
        self.server_label = "daphne"
        self.app = seed_run._producer_app(redis_url)
        self.sent = 0

    def _change(self, user_id: int) -> Trigger:
        def send() -> None:
            self.sent += 1
            self.app.send_task(TASK_NAME, args=[user_id, self.sent, "shipped", self.sent, time.time()],
                               queue=CELERY_QUEUE)

        return send

    def latency(self, watchers: int, changes: int) -> Scenario:
        users = list(range(1, watchers + 1))
        return Scenario(self.handle.client_urls(users), changes,
                        [self._change(users[j % watchers]) for j in range(changes)])

    def fanout(self, watchers: int, changes: int, group: str) -> Scenario:
        user = 10**6  # the seed has one group per user: N sockets of one user is its one-group fan-out
        return Scenario(self.handle.client_urls([user] * watchers), watchers * changes,
                        [self._change(user) for _ in range(changes)])


class Ceiling(System):
    name = "ceiling"

    def __init__(self, redis_url: str, server_cpus: Sequence[int] | None) -> None:
        # Pub/sub ignores the database index: a per-run channel prefix keeps concurrent runs apart.
        prefix = f"bench.ceiling.{os.getpid()}."
        os.environ["CEILING_CHANNEL_PREFIX"] = ceiling_server.CHANNEL_PREFIX = prefix
        self.handle = ceiling_run.start(redis_url, cpus=server_cpus)
        self.server_label = "websockets"
        self.redis = redis.Redis.from_url(redis_url)
        self.sent = 0

    def _change(self, user_id: int) -> Trigger:
        def send() -> None:
            self.sent += 1
            ceiling_run.publish_change(self.redis, user_id, order_id=self.sent, status="shipped", seq=self.sent)

        return send

    def latency(self, watchers: int, changes: int) -> Scenario:
        users = list(range(1, watchers + 1))
        return Scenario(self.handle.client_urls(users), changes,
                        [self._change(users[j % watchers]) for j in range(changes)])

    def fanout(self, watchers: int, changes: int, group: str) -> Scenario:
        user = 10**6
        return Scenario(self.handle.client_urls([user] * watchers), watchers * changes,
                        [self._change(user) for _ in range(changes)])

    def stop(self) -> None:
        self.redis.close()
        super().stop()
