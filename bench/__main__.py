"""`python -m bench` (`make bench`): our platform, the seed's design and the raw ceiling under the same load, one table.

Each system runs alone in turn on the same cores: its server pinned to one core, its worker (if any), the load
generator and the change trigger on the other. Only 127.0.0.1; every process started stops by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baselines._proc import drive
from bench.procstats import usage, wait_quiet
from bench.profile import recorded
from bench.systems import Ceiling, Ours, Scenario, Seed, System

SYSTEMS = ("ours", "seed", "ceiling")


@dataclass
class Plan:
    watchers: list[int]
    fanout: int
    latency_changes: int
    latency_rate: float
    fanout_changes: int
    session_timeout: float
    profile_dir: Path | None = None


@dataclass
class Result:
    """What one system measured; `rows` maps a row key to its number (None: not measured)."""

    name: str
    server: str
    cores: str
    rows: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def cores() -> tuple[list[int] | None, list[int] | None]:
    """(server cores, client-side cores): the server alone on the first core, the rest on the second."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(available) < 2:
        return None, None
    return [available[0]], [available[1]]


def run_latency(system: System, watchers: int, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    """N idle watchers, then `latency_changes` changes at `latency_rate`/s, each to one watcher."""
    scenario = system.latency(watchers, plan.latency_changes)
    before = usage(system.web)
    marks: dict[str, Any] = {}

    def on_ready() -> None:
        marks["open"] = usage(system.web)
        start = time.perf_counter()
        for i, change in enumerate(scenario.changes):
            delay = start + i / plan.latency_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            change()

    out = session(scenario, on_ready, plan, client_cpus)
    out["rss_before"], out["rss_open"] = before.rss_bytes, marks.get("open", before).rss_bytes
    return out


def run_fanout(system: System, watchers: int, group: str, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    """N sockets in one group; one change at a time, each fanned out to all N before the next."""
    scenario = system.fanout(watchers, plan.fanout_changes, group)
    marks: dict[str, Any] = {}

    def on_ready() -> None:
        marks["start"] = usage(system.procs)
        with ExitStack() as profile:
            profile.enter_context(profiling(system, f"fanout-{group}", plan))
            for i, change in enumerate(scenario.changes):
                if i == len(scenario.changes) - 1:
                    profile.close()  # clients close on the last change's frames: their teardown is not fan-out
                change()
                wait_quiet(system.procs)
        marks["end"] = usage(system.procs)

    out = session(scenario, on_ready, plan, client_cpus)
    if "end" in marks:
        out["cpu_seconds"] = marks["end"].cpu_seconds - marks["start"].cpu_seconds
    return out


def profiling(system: System, what: str, plan: Plan) -> AbstractContextManager[None]:
    if plan.profile_dir is None:
        return nullcontext()
    return recorded(system.web[0], plan.profile_dir / f"{system.name}-{what}.txt")


def session(scenario: Scenario, on_ready: Any, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    return drive(scenario.lines, on_ready, scenario.expect, timeout=plan.session_timeout, cpus=client_cpus,
                 loadgen_args=["--samples", "--connect-concurrency", "100",
                               *(["--origin", scenario.origin] if scenario.origin else []),
                               *(["--send-on-open", '{"type":"ping"}', "--await-reply"]
                                 if scenario.ping_until_ready else [])])


def fanout_rate(samples: Sequence[dict[str, Any]]) -> float | None:
    """Median over changes of (frames of that change) / (last arrival - the change's time)."""
    by_change: dict[float, list[float]] = defaultdict(list)
    for s in samples:
        by_change[round(s["sent_at"], 6)].append(s["arrival"])
    rates = [len(arrivals) / (max(arrivals) - sent) for sent, arrivals in by_change.items() if max(arrivals) > sent]
    return statistics.median(rates) if rates else None


def measure(system: System, plan: Plan, client_cpus: list[int] | None, progress: Any) -> Result:
    server_cpus = sorted(os.sched_getaffinity(system.web[0].popen.pid)) if hasattr(os, "sched_getaffinity") else []
    result = Result(system.name, system.server_label, cores=f"server {server_cpus}, clients {client_cpus or 'any'}")
    rows = result.rows
    lost = dups = 0
    # Not measured: a few changes to one watcher, so first-use costs of every process (connections to Redis,
    # the broker and PostgreSQL, lazy imports) do not count as a change's latency.
    progress(f"{system.name}: warm-up")
    run_latency(system, 1, dataclasses.replace(plan, latency_changes=5), client_cpus)
    # Smallest first; the largest then measures memory on a lean heap.
    order = sorted(plan.watchers)
    order = order[:1] + sorted(order[1:], reverse=True)
    largest = max(plan.watchers)
    for n in order:
        progress(f"{system.name}: latency with {n} watchers")
        out = run_latency(system, n, plan, client_cpus)
        check(result, out, f"latency@{n}")
        lat = out.get("latency_ms", {})
        rows[f"p50@{n}"], rows[f"p99@{n}"], rows[f"max@{n}"] = lat.get("p50"), lat.get("p99"), lat.get("max")
        lost += max(0, int(out["expect"]) - int(out["measured"]))
        dups += int(out["duplicates"])
        if n == largest:
            rows["handshakes"] = out["handshakes_per_s"]
            if out["connected"]:
                rows["kib_per_conn"] = (out["rss_open"] - out["rss_before"]) / out["connected"] / 1024
    groups = ["order", "staff"] if system.name == "ours" else ["order"]
    for group in groups:
        progress(f"{system.name}: fan-out of one change to {plan.fanout} sockets ({group})")
        out = run_fanout(system, plan.fanout, group, plan, client_cpus)
        check(result, out, f"fanout-{group}")
        rows[f"fanout_{group}"] = fanout_rate(out.get("samples", []))
        lost += max(0, int(out["expect"]) - int(out["measured"]))
        if group == "order" and out.get("measured") and "cpu_seconds" in out:
            rows["cpu_per_1000"] = out["cpu_seconds"] / int(out["measured"]) * 1000
    rows["lost"] = lost
    rows["duplicates"] = dups
    return result


def check(result: Result, out: dict[str, Any], label: str) -> None:
    if out.get("failed"):
        result.notes.append(f"{label}: {out['failed']} handshakes failed {out.get('fail_reasons')}")
    if out.get("closed_early"):
        result.notes.append(f"{label}: closed early {out['closed_early']}")
    if out.get("measured") != out.get("expect"):
        result.notes.append(f"{label}: {out.get('measured')} of {out.get('expect')} frames ({out.get('stop_reason')})")


# --- The table ------------------------------------------------------------------------------------------------


def row_specs(plan: Plan) -> list[tuple[str, str, str]]:
    """(key, label, better) in print order; better is "low" or "high"."""
    specs = []
    for n in sorted(plan.watchers):
        specs += [(f"p50@{n}", f"latency p50, {n} watchers (ms)", "low"),
                  (f"p99@{n}", f"latency p99, {n} watchers (ms)", "low"),
                  (f"max@{n}", f"latency max, {n} watchers (ms)", "low")]
    largest = max(plan.watchers)
    specs += [
        ("fanout_order", f"fan-out, 1 change -> {plan.fanout} sockets of one order (deliveries/s)", "high"),
        ("fanout_staff", f"fan-out, 1 change -> {plan.fanout} staff streams, staff.orders (deliveries/s)", "high"),
        ("cpu_per_1000", "CPU s per 1,000 deliveries (server + worker, fan-out)", "low"),
        ("kib_per_conn", f"memory per idle connection, {largest} open (KiB)", "low"),
        ("handshakes", f"connections set up/s, JWT auth, {largest} clients (ours: until subscribed; ceiling: no auth)",
         "high"),
        ("lost", "frames lost (all sessions)", "low"),
        ("duplicates", "duplicate frames (latency sessions)", "low"),
    ]
    return specs


def targets(plan: Plan, by: dict[str, Result]) -> dict[str, str]:
    """The issue's targets, each judged on this run: "met"/"NOT met" plus the goal."""
    n = 1000 if 1000 in plan.watchers else max(plan.watchers)
    ours = by.get("ours")
    seed, ceiling = by.get("seed"), by.get("ceiling")
    out: dict[str, str] = {}
    if ours is None:
        return out

    def verdict(ok: bool | None, goal: str) -> str:
        return f"{goal}: {'n/a' if ok is None else 'met' if ok else 'NOT met'}"

    def get(r: Result | None, key: str) -> float | None:
        return None if r is None else r.rows.get(key)

    p50, p99 = get(ours, f"p50@{n}"), get(ours, f"p99@{n}")
    out[f"p50@{n}"] = verdict(None if p50 is None else p50 <= 15, "<= 15 ms")
    out[f"p99@{n}"] = verdict(None if p99 is None else p99 <= 50, "<= 50 ms")
    fo, fs, fc = get(ours, "fanout_order"), get(seed, "fanout_order"), get(ceiling, "fanout_order")
    parts = []
    if fo is not None and fs:
        parts.append(verdict(fo >= 2 * fs, ">= 2x seed"))
    if fo is not None and fc:
        parts.append(verdict(fo * 3 >= fc, "within 3x of ceiling"))
    out["fanout_order"] = "; ".join(parts)
    kib = get(ours, "kib_per_conn")
    out["kib_per_conn"] = verdict(None if kib is None else kib <= 50, "<= 50 KiB")
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def table(plan: Plan, results: list[Result]) -> str:
    by = {r.name: r for r in results}
    goals = targets(plan, by)
    header = ["", *[f"{r.name} ({r.server})" for r in results]]
    if "ours" in by and "seed" in by:
        header.append("ours/seed")
    if "ours" in by and "ceiling" in by:
        header.append("ours/ceiling")
    header.append("target")
    lines = [header]
    for key, label, _better in row_specs(plan):
        row = [label, *[fmt(r.rows.get(key)) for r in results]]
        if "ours" in by and "seed" in by:
            row.append(ratio(by["ours"].rows.get(key), by["seed"].rows.get(key)))
        if "ours" in by and "ceiling" in by:
            row.append(ratio(by["ours"].rows.get(key), by["ceiling"].rows.get(key)))
        row.append(goals.get(key, ""))
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text.append("")
    for r in results:
        text.append(f"{r.name}: {r.server}, cores: {r.cores}")
        text.extend(f"  note: {note}" for note in r.notes)
    return "\n".join(text)


# --- Entry point --------------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Plan]:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--watchers", default="1,100,1000", help="comma-separated watcher counts (default 1,100,1000)")
    ap.add_argument("--fanout", type=int, help="sockets in the fan-out group (default: the largest watcher count)")
    ap.add_argument("--changes", type=int, default=100, help="changes per latency session (default 100)")
    # 20/s: the latency rows measure a change's trip, not the worker's queue (at 50/s on 2 shared cores it queues).
    ap.add_argument("--rate", type=float, default=20.0, help="changes/s in a latency session (default 20)")
    ap.add_argument("--quick", action="store_true", help="a few clients for seconds: the smoke test's size")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="which to run (default ours,seed,ceiling)")
    ap.add_argument("--server", choices=["uvicorn", "daphne"], default=os.environ.get("BENCH_SERVER", "uvicorn"),
                    help="our web server (default uvicorn, the production default; or BENCH_SERVER)")
    ap.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    ap.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                             "postgres://postgres@127.0.0.1:5432/bench"))
    ap.add_argument("--json", help="also write the results as JSON to this file")
    ap.add_argument("--fanout-changes", type=int, default=3, help="changes per fan-out session (default 3)")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="record each fan-out's server with py-spy into DIR (collapsed stacks and top functions)")
    args = ap.parse_args(argv)
    if args.quick:
        plan = Plan(watchers=[1, 3], fanout=3, latency_changes=3, latency_rate=20.0, fanout_changes=2,
                    session_timeout=30.0)
    else:
        watchers = [int(w) for w in args.watchers.split(",") if w.strip()]
        plan = Plan(watchers=watchers, fanout=args.fanout or max(watchers), latency_changes=args.changes,
                    latency_rate=args.rate, fanout_changes=args.fanout_changes, session_timeout=120.0)
    plan.profile_dir = args.profile
    unknown = set(args.systems.split(",")) - set(SYSTEMS)
    if unknown:
        ap.error(f"unknown systems {sorted(unknown)}")
    return args, plan


def main(argv: Sequence[str] | None = None) -> int:
    args, plan = parse(argv)
    server_cpus, client_cpus = cores()
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)  # this process triggers the changes: client side

    def progress(text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    results: list[Result] = []
    started = time.monotonic()
    for name in args.systems.split(","):
        progress(f"starting {name}")
        system: System
        if name == "ours":
            system = Ours(args.database_url, args.redis_url, args.server, server_cpus, client_cpus)
        elif name == "seed":
            system = Seed(args.redis_url, server_cpus, client_cpus)
        else:
            system = Ceiling(args.redis_url, server_cpus)
        try:
            results.append(measure(system, plan, client_cpus, progress))
        finally:
            system.stop()
    print(table(plan, results))
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.2f}; "
          f"{time.monotonic() - started:.0f} s")
    if plan.profile_dir is not None:
        print(f"profiles (py-spy, collapsed stacks and top functions): {plan.profile_dir}")
    if args.json:
        Path(args.json).write_text(json.dumps({"plan": plan.__dict__, "results": [r.__dict__ for r in results]},
                                              indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
