"""Start/stop helpers and change trigger for the seed baseline; `python -m` runs a 100-client smoke check."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

import jwt
from celery import Celery

from bench.baselines._proc import (
    Stack,
    child_env,
    delete_keys,
    drive,
    free_port,
    raise_nofile,
    spawn,
    wait_log,
    wait_port,
)
from bench.baselines.seed.conf import (
    CELERY_QUEUE,
    CHANNEL_PREFIX,
    DEFAULT_REDIS_URL,
    SECRET_KEY,
    TASK_NAME,
    WS_PATH,
)

# Django-free on purpose: the trigger side sends tasks by name, so a benchmark process that also
# configures the platform's Django settings can drive this baseline too.


def make_token(user_id: int, secret: str = SECRET_KEY) -> str:
    """HS256 JWT with payload {"user_id": id}, as the seed's consumer expects in ?token=."""
    return jwt.encode({"user_id": user_id}, secret, algorithm="HS256")


@functools.lru_cache(maxsize=4)
def _producer_app(redis_url: str) -> Celery:
    app = Celery("bench_seed_trigger", broker=redis_url, set_as_current=False)
    app.conf.broker_connection_retry_on_startup = True
    return app


def trigger(
    user_ids: Sequence[int],
    n: int | None = None,
    rate: float | None = None,
    redis_url: str = DEFAULT_REDIS_URL,
    status: str = "shipped",
) -> int:
    """Make n changes (default one per user), change i going to user_ids[i % len]: each is one
    send_order_update task carrying sent_at=time.time(); `rate` = changes/s (None: burst)."""
    count = len(user_ids) if n is None else n
    app = _producer_app(redis_url)
    t0 = time.perf_counter()
    for i in range(count):
        if rate:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        uid = user_ids[i % len(user_ids)]
        app.send_task(TASK_NAME, args=[uid, i + 1, status, i, time.time()], queue=CELERY_QUEUE)
    return count


@dataclass
class SeedBaseline:
    """A running seed stack: one ASGI server process and one Celery worker on REDIS_URL."""

    port: int
    redis_url: str
    stack: Stack = field(repr=False)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def client_urls(self, user_ids: Sequence[int]) -> list[str]:
        return [f"{self.ws_url}?token={make_token(uid)}" for uid in user_ids]

    def trigger(self, user_ids: Sequence[int], n: int | None = None, rate: float | None = None) -> int:
        return trigger(user_ids, n, rate, self.redis_url)

    def stop(self) -> None:
        self.stack.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    redis_url: str = DEFAULT_REDIS_URL,
    *,
    server: Literal["daphne", "uvicorn"] = "daphne",
    worker_pool: str = "prefork",
    worker_concurrency: int = 2,
    max_lifetime: float = 900.0,
    ready_timeout: float = 60.0,
    server_cpus: Sequence[int] | None = None,
    worker_cpus: Sequence[int] | None = None,
) -> SeedBaseline:
    """Start the ASGI server (daphne as in the seed, or uvicorn) on a free loopback port plus a Celery worker."""
    raise_nofile()
    # Stale groups (86400 s expiry) and queued tasks from an earlier run would skew this one.
    delete_keys(
        redis_url,
        [f"{CHANNEL_PREFIX}*", CELERY_QUEUE, f"_kombu.binding.{CELERY_QUEUE}*"],
    )
    stack = Stack()
    port = free_port()
    env = child_env(
        REDIS_URL=redis_url,
        DJANGO_SETTINGS_MODULE="bench.baselines.seed.settings",  # override any platform settings in our env
        SEED_DB_PATH=str(stack.tmpdir / "seed.sqlite3"),
        SEED_SECRET_KEY=SECRET_KEY,
    )
    app = "bench.baselines.seed.asgi:application"
    if server == "daphne":
        web = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app]
    else:
        web = [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    worker = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.baselines.seed.tasks",
        "worker",
        "-l",
        "info",
        "-Q",
        CELERY_QUEUE,
        "-P",
        worker_pool,
        "-c",
        str(worker_concurrency),
        "-n",
        "benchseed@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    try:
        stack.procs.append(spawn(server, web, stack.tmpdir / f"{server}.log", env, max_lifetime, server_cpus))
        stack.procs.append(spawn("celery", worker, stack.tmpdir / "celery.log", env, max_lifetime, worker_cpus))
        wait_port(stack.procs[0], port, ready_timeout)
        wait_log(stack.procs[1], " ready.", ready_timeout)
    except BaseException:
        stack.stop()
        raise
    return SeedBaseline(port=port, redis_url=redis_url, stack=stack)


def smoke(
    clients: int = 100,
    per_client: int = 1,
    rate: float | None = None,
    server: Literal["daphne", "uvicorn"] = "daphne",
    redis_url: str = DEFAULT_REDIS_URL,
    loadgen_args: Sequence[str] = (),
) -> dict[str, object]:
    """Start the seed stack, connect `clients` users, push per_client changes to each
    (burst, or `rate` changes/s), return the loadgen JSON."""
    users = list(range(1, clients + 1))
    with start(redis_url, server=server) as sb:
        n = clients * per_client
        return drive(
            sb.client_urls(users),
            lambda: sb.trigger(users, n=n, rate=rate),
            n,
            timeout=60.0,
            loadgen_args=loadgen_args,
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baselines.seed.run", description=__doc__)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--per-client", type=int, default=1)
    ap.add_argument("--rate", type=float, help="changes/s (default: burst)")
    ap.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("loadgen_args", nargs="*", help="extra bench.loadgen flags (after --)")
    a = ap.parse_args(argv)
    result = smoke(a.clients, a.per_client, a.rate, a.server, a.redis_url, a.loadgen_args)
    print(json.dumps(result))
    ok = result["connected"] == result["clients"] and result["measured"] == result["expect"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
