"""Start/stop helpers and change trigger for the ceiling baseline; `python -m` runs a 100-client smoke check."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import redis

from bench.baselines._proc import (
    Stack,
    child_env,
    drive,
    free_port,
    raise_nofile,
    spawn,
    wait_log,
    wait_port,
)
from bench.baselines.ceiling.server import DEFAULT_REDIS_URL, channel_for


def publish_change(
    r: redis.Redis,
    user_id: int,
    order_id: int,
    status: str,
    seq: int,
    sent_at: float | None = None,
) -> int:
    """PUBLISH one order change to user.<id>, serialised once here; returns Redis's receiver count."""
    frame = json.dumps(
        {
            "event": "order_updated",
            "status": status,
            "order_id": order_id,
            "seq": seq,
            "sent_at": time.time() if sent_at is None else sent_at,
        }
    )
    return int(r.publish(channel_for(user_id), frame))


def trigger(
    user_ids: Sequence[int],
    n: int | None = None,
    rate: float | None = None,
    redis_url: str = DEFAULT_REDIS_URL,
    status: str = "shipped",
) -> int:
    """Make n changes (default one per user), change i going to user_ids[i % len]; `rate` = changes/s (None: burst)."""
    count = len(user_ids) if n is None else n
    r = redis.Redis.from_url(redis_url)
    try:
        t0 = time.perf_counter()
        for i in range(count):
            if rate:
                delay = t0 + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            publish_change(r, user_ids[i % len(user_ids)], order_id=i + 1, status=status, seq=i)
        return count
    finally:
        r.close()


@dataclass
class CeilingBaseline:
    """A running ceiling: `workers` server processes sharing one loopback port (SO_REUSEPORT when > 1)."""

    port: int
    redis_url: str
    stack: Stack = field(repr=False)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def client_urls(self, user_ids: Sequence[int]) -> list[str]:
        return [f"{self.ws_url}?user={uid}" for uid in user_ids]

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
    workers: int = 1,
    uvloop: bool = False,
    max_lifetime: float = 900.0,
    ready_timeout: float = 30.0,
    cpus: Sequence[int] | None = None,
) -> CeilingBaseline:
    """Start the ceiling server process(es) on a free loopback port and wait until each is subscribed."""
    raise_nofile()
    stack = Stack()
    port = free_port()
    try:
        for w in range(workers):
            argv = [
                sys.executable,
                "-m",
                "bench.baselines.ceiling.server",
                "--port",
                str(port),
                "--redis-url",
                redis_url,
                "--max-lifetime",
                str(max_lifetime),
            ]
            if workers > 1:
                argv.append("--reuse-port")
            if uvloop:
                argv.append("--uvloop")
            proc = spawn(
                f"ceiling{w}",
                argv,
                stack.tmpdir / f"ceiling{w}.log",
                child_env(),
                max_lifetime + 10,
                cpus,
            )
            stack.procs.append(proc)
            wait_log(proc, "READY", ready_timeout)
        wait_port(stack.procs[0], port, ready_timeout)
    except BaseException:
        stack.stop()
        raise
    return CeilingBaseline(port=port, redis_url=redis_url, stack=stack)


def smoke(
    clients: int = 100,
    per_client: int = 1,
    rate: float | None = None,
    workers: int = 1,
    redis_url: str = DEFAULT_REDIS_URL,
    loadgen_args: Sequence[str] = (),
) -> dict[str, object]:
    """Start the ceiling, connect `clients` users, push per_client changes to each
    (burst, or `rate` changes/s), return the loadgen JSON."""
    users = list(range(1, clients + 1))
    with start(redis_url, workers=workers) as cb:
        n = clients * per_client
        return drive(
            cb.client_urls(users),
            lambda: cb.trigger(users, n=n, rate=rate),
            n,
            timeout=60.0,
            loadgen_args=loadgen_args,
        )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baselines.ceiling.run", description=__doc__)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--per-client", type=int, default=1)
    ap.add_argument("--rate", type=float, help="changes/s (default: burst)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    ap.add_argument("loadgen_args", nargs="*", help="extra bench.loadgen flags (after --)")
    a = ap.parse_args(argv)
    result = smoke(a.clients, a.per_client, a.rate, a.workers, a.redis_url, a.loadgen_args)
    print(json.dumps(result))
    ok = result["connected"] == result["clients"] and result["measured"] == result["expect"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
