"""WebSocket load generator: opens N asyncio clients from a URL list, times handshakes and push latency, prints JSON."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import math
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

ReadyHook = Callable[[dict[str, Any]], "Awaitable[None] | None"]


def raise_nofile(wanted: int = 65536) -> int:
    """Raise the open-file soft limit towards `wanted` (root may also raise the hard one); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft >= wanted:
        return soft
    if hard == resource.RLIM_INFINITY or hard >= wanted:
        candidates = [(wanted, hard)]
    else:
        candidates = [(wanted, wanted), (hard, hard)]
    for limits in candidates:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return limits[0]
        except (ValueError, OSError):
            continue
    return soft


def percentiles(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """count/min/mean/p50/p90/p99/max (nearest rank) of values times scale, rounded to 0.001."""
    if not values:
        return {"count": 0}
    xs = sorted(values)
    n = len(xs)

    def rank(q: float) -> float:
        return xs[min(n - 1, max(0, math.ceil(q * n) - 1))] * scale

    out = {
        "count": n,
        "min": xs[0] * scale,
        "mean": sum(xs) / n * scale,
        "p50": rank(0.50),
        "p90": rank(0.90),
        "p99": rank(0.99),
        "max": xs[-1] * scale,
    }
    return {k: (v if k == "count" else round(v, 3)) for k, v in out.items()}


@dataclass
class _State:
    n: int
    expect: int | None
    connected: int = 0
    failed: int = 0
    fail_reasons: Counter[str] = field(default_factory=Counter)
    handshake_s: list[float] = field(default_factory=list)
    last_open: float = 0.0
    frames: int = 0
    other_frames: int = 0
    # (arrival time.time(), sent_at, seq, order_id, client index)
    samples: list[tuple[float, float, Any, Any, int]] = field(default_factory=list)
    closed_early: Counter[str] = field(default_factory=Counter)
    all_settled: asyncio.Event = field(default_factory=asyncio.Event)
    got_expected: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    deflated: int = 0  # clients whose handshake negotiated permessage-deflate
    conns: dict[int, ClientConnection] = field(default_factory=dict)

    def settle_one(self) -> None:
        if self.connected + self.failed >= self.n:
            self.all_settled.set()


def split_target(line: str) -> tuple[str, list[str] | None]:
    """`URL` or `URL<TAB>proto1,proto2`: a client's URL and its own offered subprotocols (e.g. `bearer,<jwt>`)."""
    url, _, protos = line.partition("\t")
    return url, ([p for p in protos.split(",") if p] or None) if protos else None


def frame_time(msg: dict[str, Any]) -> float:
    """When the change a frame reports was made: a numeric `sent_at` (baselines), or the platform's
    `order.status` frame's `at` (its OrderEvent.created_at, ISO 8601, stamped in the change's transaction)."""
    if "sent_at" in msg:
        return float(msg["sent_at"])
    if msg.get("type") == "order.status":
        return datetime.fromisoformat(msg["at"]).timestamp()
    raise KeyError("sent_at")


async def _client(
    i: int,
    target: str,
    st: _State,
    sem: asyncio.Semaphore,
    opts: dict[str, Any],
    send_on_open: str | None,
    await_reply: bool = False,
) -> None:
    url, own_protocols = split_target(target)
    if own_protocols:
        opts = {**opts, "subprotocols": [Subprotocol(p) for p in own_protocols]}
    async with sem:
        t0 = time.perf_counter()
        try:
            ws = await connect(url, **opts)
            if send_on_open is not None:
                await ws.send(send_on_open.replace("{i}", str(i)))
            if await_reply:
                # A server that accepts before it authenticates and subscribes (ours) is only ready once it
                # answers: frames are handled after connect() finishes, so the reply proves the subscription.
                await asyncio.wait_for(ws.recv(), timeout=opts["open_timeout"])
                st.frames += 1
                st.other_frames += 1
        except Exception as exc:  # noqa: BLE001 - any failure is a failed handshake to report
            st.failed += 1
            st.fail_reasons[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            st.settle_one()
            return
        st.handshake_s.append(time.perf_counter() - t0)
    st.deflated += any(ext.name == "permessage-deflate" for ext in ws.protocol.extensions)
    st.conns[i] = ws
    st.connected += 1
    st.last_open = time.perf_counter()
    st.settle_one()
    try:
        async for frame in ws:
            now = time.time()
            st.frames += 1
            try:
                msg = json.loads(frame)
                sent_at = frame_time(msg)
            except (ValueError, TypeError, KeyError, AttributeError):
                st.other_frames += 1
                continue
            st.samples.append((now, sent_at, msg.get("seq"), msg.get("order_id"), i))
            if st.expect is not None and len(st.samples) >= st.expect:
                st.got_expected.set()
        if not st.stopping:
            st.closed_early[f"code={ws.close_code}"] += 1
    except ConnectionClosed as exc:
        if not st.stopping:
            st.closed_early[f"code={exc.rcvd.code if exc.rcvd else None}"] += 1


async def run(
    urls: Sequence[str],
    *,
    subprotocols: Sequence[str] | None = None,
    origin: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    expect: int | None = None,
    duration: float | None = None,
    timeout: float = 60.0,
    connect_concurrency: int = 100,
    open_timeout: float = 20.0,
    send_on_open: str | None = None,
    await_reply: bool = False,
    deflate: bool = True,
    ready_file: str | None = None,
    done_file: str | None = None,
    on_ready: ReadyHook | None = None,
    keep_samples: bool = False,
) -> dict[str, Any]:
    """Open one client per URL, wait until all are open, then collect frames until `expect` measured frames
    arrived, `duration` seconds passed since all opened, or `timeout` seconds passed overall; return a JSON dict.
    Frames carrying a numeric `sent_at` (time.time() at the change) are measured; others are counted only.
    Clients offer permessage-deflate as browsers do unless `deflate` is False; `done_file` is written once the
    expected frames arrived, before any client closes (so a caller can stop counting CPU there)."""
    if expect is None and duration is None:
        duration = 10.0
    fd_limit = raise_nofile(len(urls) + 256)
    st = _State(n=len(urls), expect=expect)
    opts: dict[str, Any] = {
        "open_timeout": open_timeout,
        "close_timeout": 2,
        "ping_interval": None,
        "compression": "deflate" if deflate else None,
        "max_queue": None,
    }
    if subprotocols:
        opts["subprotocols"] = [Subprotocol(s) for s in subprotocols]
    if origin:
        opts["origin"] = origin
    if headers:
        opts["additional_headers"] = list(headers)
    sem = asyncio.Semaphore(max(1, connect_concurrency))
    started_at = time.time()  # the wall clock frames' arrivals are on: a reconnect storm's start
    t_start = time.perf_counter()
    hard_deadline = t_start + timeout
    tasks = [asyncio.create_task(_client(i, u, st, sem, opts, send_on_open, await_reply)) for i, u in enumerate(urls)]
    stop_reason = "timeout"
    try:
        if st.n == 0:
            st.all_settled.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                st.all_settled.wait(),
                timeout=max(0.0, hard_deadline - time.perf_counter()),
            )
        open_wall = (st.last_open - t_start) if st.connected else 0.0
        ready_info = {
            "connected": st.connected,
            "failed": st.failed,
            "open_wall_s": round(open_wall, 3),
        }
        print(f"loadgen: ready {json.dumps(ready_info)}", file=sys.stderr, flush=True)
        if st.all_settled.is_set():
            if ready_file:
                Path(ready_file).write_text(json.dumps(ready_info))
            if on_ready is not None:
                res = on_ready(ready_info)
                if inspect.isawaitable(res):
                    await res
            t_ready = time.perf_counter()
            end = hard_deadline if duration is None else min(hard_deadline, t_ready + duration)
            try:
                await asyncio.wait_for(st.got_expected.wait(), timeout=max(0.0, end - time.perf_counter()))
                stop_reason = "expect"
                if done_file:
                    Path(done_file).write_text(json.dumps({"at": time.time()}))
            except TimeoutError:
                stop_reason = "timeout" if end >= hard_deadline else "duration"
    finally:
        st.stopping = True
        conns = list(st.conns.values())
        if conns:
            await asyncio.wait([asyncio.create_task(c.close()) for c in conns], timeout=5)
            for c in conns:
                c.transport.abort()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    lat = [arr - sent for arr, sent, *_ in st.samples]
    seen: set[tuple[int, Any, Any]] = set()
    dups = 0
    for _, _, seq, order_id, client in st.samples:
        if seq is not None:
            key = (client, order_id, seq)
            dups += key in seen
            seen.add(key)
    result: dict[str, Any] = {
        "clients": st.n,
        "started_at": started_at,
        "connected": st.connected,
        "failed": st.failed,
        "fail_reasons": dict(st.fail_reasons.most_common(5)),
        "fd_limit": fd_limit,
        "deflate_offered": deflate,
        "deflate_negotiated": st.deflated,
        "open_wall_s": round((st.last_open - t_start) if st.connected else 0.0, 3),
        "handshakes_per_s": round(st.connected / (st.last_open - t_start), 1) if st.connected else 0.0,
        "handshake_ms": percentiles(st.handshake_s, 1000.0),
        "frames": st.frames,
        "measured": len(st.samples),
        "other_frames": st.other_frames,
        "expect": expect,
        "clients_with_frames": len({s[4] for s in st.samples}),
        "duplicates": dups,
        "closed_early": dict(st.closed_early),
        "stop_reason": stop_reason,
        "latency_ms": percentiles(lat, 1000.0),
    }
    if st.samples:
        first_sent = min(s[1] for s in st.samples)
        last_arrival = max(s[0] for s in st.samples)
        span = last_arrival - first_sent
        result["delivery_span_s"] = round(span, 4)
        result["delivered_per_s"] = round(len(st.samples) / span, 1) if span > 0 else None
    if keep_samples:
        result["samples"] = [
            {"arrival": a, "sent_at": s, "seq": q, "order_id": o, "client": c} for a, s, q, o, c in st.samples
        ]
    return result


def _read_urls(args: argparse.Namespace) -> list[str]:
    urls: list[str] = list(args.url or [])
    if args.urls_file:
        text = sys.stdin.read() if args.urls_file == "-" else Path(args.urls_file).read_text()
        urls += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if args.template:
        urls += [args.template.format(i=i) for i in range(args.start, args.start + args.count)]
    return urls


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    ap.add_argument("--url", action="append", help="one client URL (repeatable)")
    ap.add_argument(
        "--urls-file",
        help="file with one client per line: URL, optionally a tab and comma-joined subprotocols ('-' = stdin)",
    )
    ap.add_argument(
        "--template",
        help="URL template with {i}, e.g. 'ws://127.0.0.1:8000/ws/?user={i}'",
    )
    ap.add_argument("--count", type=int, default=0, help="clients made from --template")
    ap.add_argument("--start", type=int, default=1, help="first {i} for --template")
    ap.add_argument("--subprotocol", action="append", help="offered subprotocol (repeatable)")
    ap.add_argument("--origin", help="Origin header to send")
    ap.add_argument(
        "--header",
        action="append",
        default=[],
        help="extra header 'Name: value' (repeatable)",
    )
    ap.add_argument(
        "--expect",
        type=int,
        help="stop after this many measured frames (all clients together)",
    )
    ap.add_argument(
        "--duration",
        type=float,
        help="stop this many seconds after all clients are open",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="hard stop, seconds from start (default 60)",
    )
    ap.add_argument(
        "--connect-concurrency",
        type=int,
        default=100,
        help="handshakes in flight at once",
    )
    ap.add_argument(
        "--open-timeout",
        type=float,
        default=20.0,
        help="per-handshake timeout, seconds",
    )
    ap.add_argument("--send-on-open", help="text each client sends once open ({i} = client index)")
    ap.add_argument(
        "--await-reply",
        action="store_true",
        help="a client counts as open only once a first frame arrived (e.g. the pong to --send-on-open)",
    )
    ap.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer permessage-deflate, as browsers do (default); --no-deflate to compare",
    )
    ap.add_argument("--ready-file", help="written (JSON) once every client has opened or failed")
    ap.add_argument("--done-file", help="written (JSON) once the --expect frames arrived, before clients close")
    ap.add_argument(
        "--samples",
        action="store_true",
        help="include every measured frame in the JSON",
    )
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop if installed")
    args = ap.parse_args(argv)
    urls = _read_urls(args)
    if not urls:
        ap.error("no URLs: give --url, --urls-file or --template/--count")
    headers = [tuple(h.split(":", 1)) for h in args.header]
    coro = run(
        urls,
        subprotocols=args.subprotocol,
        origin=args.origin,
        headers=[(k.strip(), v.strip()) for k, v in headers],
        expect=args.expect,
        duration=args.duration,
        timeout=args.timeout,
        connect_concurrency=args.connect_concurrency,
        open_timeout=args.open_timeout,
        send_on_open=args.send_on_open,
        await_reply=args.await_reply,
        deflate=args.deflate,
        ready_file=args.ready_file,
        done_file=args.done_file,
        keep_samples=args.samples,
    )
    runner: Callable[[Any], dict[str, Any]] = asyncio.run
    if args.uvloop:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            print("loadgen: uvloop not installed, using asyncio", file=sys.stderr)
    result = runner(coro)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
