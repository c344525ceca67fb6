"""HTTP load for the API rows: `concurrency` keep-alive HTTP/1.1 clients on asyncio streams, each sending one
request after another for `duration` seconds; prints JSON (latency percentiles in ms, requests/s, statuses).

Run in its own process on the client core (bench/__main__.py), like bench.loadgen."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bench.loadgen import percentiles


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    return status, body


async def client(host: str, port: int, request: bytes, until: float, times: list[float], statuses: Counter[str]
                 ) -> None:
    """One keep-alive connection, one request at a time; a broken connection is counted and opened again."""
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            statuses[f"connect {type(exc).__name__}"] += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while time.perf_counter() < until:
                t0 = time.perf_counter()
                writer.write(request)
                status, _ = await read_response(reader)
                times.append(time.perf_counter() - t0)
                statuses[str(status)] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            statuses[type(exc).__name__] += 1
        finally:
            writer.close()


async def run(host: str, port: int, path: str, *, headers: Sequence[str], concurrency: int, duration: float,
              warmup: float) -> dict[str, Any]:
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(f"{h}\r\n" for h in headers)
               + "\r\n").encode()
    if warmup > 0:  # first use of each connection, the server's pools and caches: not counted
        await asyncio.gather(*(client(host, port, request, time.perf_counter() + warmup, [], Counter())
                               for _ in range(concurrency)))
    times: list[float] = []
    statuses: Counter[str] = Counter()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(host, port, request, t0 + duration, times, statuses) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {"path": path, "concurrency": concurrency, "requests": len(times),
            "requests_per_s": round(len(times) / wall, 1) if wall > 0 else None,
            "latency_ms": percentiles(times, 1000.0), "statuses": dict(statuses)}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.httpload", description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--path", required=True)
    ap.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.host, args.port, args.path, headers=args.header, concurrency=args.concurrency,
                             duration=args.duration, warmup=args.warmup))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
