"""Ceiling server: bare websockets (asyncio API) fed by one Redis PSUBSCRIBE per process, fan-out via a dict."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"
# Redis pub/sub ignores the DB index, so the channel names carry a prefix to stay apart from others.
CHANNEL_PREFIX: str = os.environ.get("CEILING_CHANNEL_PREFIX", "bench.ceiling.")


def channel_for(user_id: int | str) -> str:
    return f"{CHANNEL_PREFIX}user.{user_id}"


class Hub:
    """user id -> open sockets of that user; Redis messages are forwarded as received (no re-serialisation)."""

    def __init__(self) -> None:
        self.users: dict[bytes, set[ServerConnection]] = {}

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        uid = query.get("user", [""])[0]
        if not uid.isdigit():
            await ws.close(4001, "user required")
            return
        key = uid.encode()
        conns = self.users.setdefault(key, set())
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)
            if not conns and self.users.get(key) is conns:
                del self.users[key]

    async def pump(self, redis_url: str, subscribed: asyncio.Event) -> None:
        r = aioredis.Redis.from_url(redis_url)
        ps = r.pubsub()
        await ps.psubscribe(channel_for("*"))
        skip = len(channel_for(""))
        async for msg in ps.listen():
            kind = msg["type"]
            if kind == "pmessage":
                conns = self.users.get(msg["channel"][skip:])
                if conns:
                    broadcast(conns, msg["data"], text=True)  # the publisher's bytes, framed once as text
            elif kind == "psubscribe":
                subscribed.set()


async def serve_forever(host: str, port: int, redis_url: str, reuse_port: bool, max_lifetime: float) -> None:
    hub = Hub()
    subscribed = asyncio.Event()
    pump = asyncio.create_task(hub.pump(redis_url, subscribed))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(max_lifetime, stop.set)
    async with serve(
        hub.handler,
        host,
        port,
        compression=None,
        reuse_port=reuse_port,
        backlog=4096,
        ping_interval=None,
    ) as server:
        sub_wait = asyncio.create_task(subscribed.wait())
        await asyncio.wait([sub_wait, pump], return_when=asyncio.FIRST_COMPLETED)
        if pump.done():
            pump.result()  # re-raise the Redis failure
        bound = next(iter(server.sockets)).getsockname()[1]
        print(f"READY {bound} pid={os.getpid()}", flush=True)
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, pump], return_when=asyncio.FIRST_COMPLETED)
        if pump.done():
            pump.result()
        pump.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baselines.ceiling.server", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "--port",
        type=int,
        default=0,
        help="0 = pick a free one (printed in the READY line)",
    )
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    ap.add_argument(
        "--reuse-port",
        action="store_true",
        help="SO_REUSEPORT, to run several processes on one port",
    )
    ap.add_argument(
        "--max-lifetime",
        type=float,
        default=900.0,
        help="exit by itself after this many seconds",
    )
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (off: plain asyncio)")
    args = ap.parse_args(argv)
    coro = serve_forever(args.host, args.port, args.redis_url, args.reuse_port, args.max_lifetime)
    if args.uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
    return 0


if __name__ == "__main__":
    sys.exit(main())
