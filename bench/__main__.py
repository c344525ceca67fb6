"""`python -m bench` (`make bench`): our platform, the seed's design and the raw ceiling under the same load, one table.

Each system runs alone in turn on the same cores: its server pinned to one core, its worker (if any), the load
generator and the change trigger on the other. Only 127.0.0.1; every process started stops by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import floors, ours, stages
from bench.baselines._proc import child_env, drive, pin_to
from bench.loadgen import percentiles
from bench.procstats import usage, wait_quiet
from bench.profile import recorded
from bench.systems import Ceiling, Ours, Scenario, Seed, System

SYSTEMS = ("ours", "seed", "ceiling")
FLOOR = "floor"  # the table's column of floors (bench/floors.py; derived rows say how in the notes)


@dataclass
class Plan:
    watchers: list[int]
    fanout: int
    latency_changes: int
    latency_rate: float
    fanout_changes: int
    session_timeout: float
    profile_dir: Path | None = None
    deflate: bool = True  # the clients offer permessage-deflate, as browsers do
    stage_changes: int = 20  # changes of the stage breakdown (one watcher)
    floor_count: int = 200  # transactions and PINGs of the floors
    api_duration: float = 5.0  # seconds of each HTTP load (after a 1 s warm-up)
    api_changes: int = 20  # status changes over the API, one after another
    idle_seconds: float = 5.0  # the largest latency session's sockets idle this long before its changes
    storm: int = 0  # --storm N: N clients reconnecting at once with after_seq
    shards: int = 0  # --shards N: the order fan-out again on N web processes behind nginx, the layer on N Redis


@dataclass
class Result:
    """What one system measured; `rows` maps a row key to its number (None: not measured)."""

    name: str
    server: str
    cores: str
    rows: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)  # ours: the stage breakdown (bench/stages.py)
    api: dict[str, Any] = field(default_factory=dict)  # ours: the HTTP API's raw figures


def cores() -> tuple[list[int] | None, list[int] | None]:
    """(server cores, client-side cores): the server alone on the first core, the rest on the second."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(available) < 2:
        return None, None
    return [available[0]], [available[1]]


def run_latency(system: System, watchers: int, plan: Plan, client_cpus: list[int] | None, *,
                idle: float = 0.0) -> dict[str, Any]:
    """N idle watchers, then `latency_changes` changes at `latency_rate`/s, each to one watcher. With `idle`,
    the server's CPU is counted over that many seconds of the open sockets doing nothing first (after a settling
    second: the last handshakes' presence and seq reads)."""
    scenario = system.latency(watchers, plan.latency_changes)
    before = usage(system.web)
    marks: dict[str, Any] = {}

    def on_ready() -> None:
        marks["open"] = usage(system.web)
        if idle:
            time.sleep(1.0)
            quiet = usage(system.web)
            time.sleep(idle)
            marks["idle_cpu_share"] = (usage(system.web).cpu_seconds - quiet.cpu_seconds) / idle
        start = time.perf_counter()
        for i, change in enumerate(scenario.changes):
            delay = start + i / plan.latency_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            change()

    out = session(scenario, on_ready, plan, client_cpus)
    out["rss_before"], out["rss_open"] = before.rss_bytes, marks.get("open", before).rss_bytes
    out["idle_cpu_share"] = marks.get("idle_cpu_share")
    return out


def run_fanout(system: System, watchers: int, group: str, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    """N sockets in one group; one change at a time, each fanned out to all N before the next.

    CPU is counted over the fan-out alone: from right before the first change to right after the last frame
    arrived (the loadgen's done file, written before any client closes), so neither the sockets' opening nor
    their closing counts."""
    scenario = system.fanout(watchers, plan.fanout_changes, group)
    marks: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as d:
        done = Path(d) / "done"

        def on_ready() -> None:
            marks["start"] = usage(system.procs)
            with ExitStack() as profile:
                profile.enter_context(profiling(system, f"fanout-{group}", plan))
                for i, change in enumerate(scenario.changes):
                    if i == len(scenario.changes) - 1:
                        profile.close()  # clients close on the last change's frames: their teardown is not fan-out
                    change()
                    if i < len(scenario.changes) - 1:
                        wait_quiet(system.procs)
            deadline = time.monotonic() + plan.session_timeout
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            if done.exists():
                marks["end"] = usage(system.procs)

        out = session(scenario, on_ready, plan, client_cpus, done_file=done)
    if "end" in marks:
        out["cpu_seconds"] = marks["end"].cpu_seconds - marks["start"].cpu_seconds
    return out


def run_stages(system: Ours, plan: Plan, client_cpus: list[int] | None) -> list[dict[str, float]]:
    """`stage_changes` changes to one watcher at `latency_rate`/s, each timed at every stage (bench/stages.py)."""
    from orders.services import change_status

    customers = ours.users("bench-stage", 1)
    orders = ours.new_orders(customers, plan.stage_changes)
    lines = ours.urls(system.handle, "/ws/notifications/", ours.tokens(customers))
    called: dict[int, float] = {}
    stamped: dict[int, float] = {}
    events: dict[tuple[int, int], int] = {}

    def on_ready() -> None:
        system.bench_request("POST", "frames/on")
        start = time.perf_counter()
        for i, order in enumerate(orders):
            delay = start + i / plan.latency_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            t = time.time()
            event = change_status(order=order, to="confirmed", actor=None)
            called[event.pk] = t
            events[(event.order_id, event.seq)] = event.pk
            stamped[event.pk] = event.created_at.timestamp()

    out = session(Scenario(lines, len(orders), [], system.origin, ping_until_ready=True), on_ready, plan,
                  client_cpus)
    system.bench_request("POST", "frames/off")
    written: dict[int, float] = {}
    for frame in system.bench_request("GET", "frames"):
        written.setdefault(frame["event_id"], frame["at"])
    received = {events[(s["order_id"], s["seq"])]: s["arrival"] for s in out.get("samples", [])
                if (s["order_id"], s["seq"]) in events}
    worker = stages.worker_marks(system.redis_url, ours.STAGES_PREFIX, called)
    per_event = []
    for event_id, t in called.items():
        marks = {"called": t, "at": stamped[event_id], **worker.get(event_id, {})}
        for key, source in (("commit", system.publish_marks.before), ("published", system.publish_marks.after),
                            ("frame_written", written), ("frame_received", received)):
            if event_id in source:
                marks[key] = source[event_id]
        per_event.append(marks)
    return per_event


def http_load(system: Ours, path: str, headers: Sequence[str], concurrency: int, plan: Plan,
              client_cpus: list[int] | None) -> dict[str, Any]:
    """bench.httpload in its own process on the client core: `concurrency` keep-alive clients for api_duration s."""
    cmd = [sys.executable, "-m", "bench.httpload", "--port", str(system.handle.port), "--path", path,
           "--concurrency", str(concurrency), "--duration", str(plan.api_duration),
           "--warmup", str(min(1.0, plan.api_duration / 3)), *[a for h in headers for a in ("--header", h)]]
    run = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], env=child_env(), capture_output=True,
                         text=True, timeout=plan.api_duration * 2 + 60, preexec_fn=pin_to(client_cpus))
    if run.returncode != 0:
        raise RuntimeError(f"bench.httpload {path} failed:\n{run.stderr[-3000:]}")
    return dict(json.loads(run.stdout))


def run_api(system: Ours, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    """The HTTP API on the one web process: GET of one order by its customer (8 clients) beside the floor view
    (bench/asgi.py), then `api_changes` staff status changes, one after another, each timed to its response and
    to its frame on the customer's socket."""
    customer = ours.users("bench-api-c", 1)[0]
    staff = ours.users("bench-api-s", 1, staff=True, perms=("view_order", "change_order"))[0]
    (order,) = ours.new_orders([customer], 1)
    ours.change([order], rate=None)  # an order with an event, as a customer's usually has
    customer_auth = f"Authorization: Bearer {ours.tokens([customer])[0]}"
    out: dict[str, Any] = {
        "get": http_load(system, f"/api/orders/{order.pk}/", [customer_auth], 8, plan, client_cpus),
        "floor": http_load(system, f"/__bench__/floor/{order.pk}", [], 8, plan, client_cpus),
        "floor_1": http_load(system, f"/__bench__/floor/{order.pk}", [], 1, plan, client_cpus),
    }
    changed = ours.new_orders([customer], plan.api_changes)
    staff_auth = {"Authorization": f"Bearer {ours.tokens([staff])[0]}", "Content-Type": "application/json"}
    sent: dict[int, float] = {}
    post_s: list[float] = []
    statuses: dict[int, int] = defaultdict(int)

    def on_ready() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", system.handle.port, timeout=30)
        try:
            start = time.perf_counter()
            for i, o in enumerate(changed):
                delay = start + i / plan.latency_rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sent[o.pk] = time.time()
                t0 = time.perf_counter()
                conn.request("POST", f"/api/orders/{o.pk}/status/", body=b'{"status": "confirmed"}',
                             headers=staff_auth)
                response = conn.getresponse()
                response.read()
                post_s.append(time.perf_counter() - t0)
                statuses[response.status] += 1
        finally:
            conn.close()

    lines = ours.urls(system.handle, "/ws/notifications/", ours.tokens([customer]))
    frames = session(Scenario(lines, len(changed), [], system.origin, ping_until_ready=True), on_ready, plan,
                     client_cpus)
    to_frame = [s["arrival"] - sent[s["order_id"]] for s in frames.get("samples", []) if s["order_id"] in sent]
    out["post"] = {"latency_ms": percentiles(post_s, 1000.0), "statuses": dict(statuses)}
    out["to_frame"] = {"latency_ms": percentiles(to_frame, 1000.0), "expect": frames["expect"],
                       "measured": frames["measured"]}
    return out


def profiling(system: System, what: str, plan: Plan) -> AbstractContextManager[None]:
    if plan.profile_dir is None:
        return nullcontext()
    return recorded(system.web[0], plan.profile_dir / f"{system.name}-{what}.txt")


def session(scenario: Scenario, on_ready: Any, plan: Plan, client_cpus: list[int] | None,
            done_file: Path | None = None) -> dict[str, Any]:
    return drive(scenario.lines, on_ready, scenario.expect, timeout=plan.session_timeout, cpus=client_cpus,
                 done_file=done_file,
                 loadgen_args=["--samples", "--connect-concurrency", "100",
                               "--deflate" if plan.deflate else "--no-deflate",
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
        out = run_latency(system, n, plan, client_cpus, idle=plan.idle_seconds if n == largest else 0.0)
        check(result, out, f"latency@{n}")
        lat = out.get("latency_ms", {})
        rows[f"p50@{n}"], rows[f"p99@{n}"], rows[f"max@{n}"] = lat.get("p50"), lat.get("p99"), lat.get("max")
        lost += max(0, int(out["expect"]) - int(out["measured"]))
        dups += int(out["duplicates"])
        if n == largest:
            rows["deflate"] = out["deflate_negotiated"] / out["connected"] if out["connected"] else None
            rows["handshakes"] = out["handshakes_per_s"]
            if out["connected"]:
                rows["kib_per_conn"] = (out["rss_open"] - out["rss_before"]) / out["connected"] / 1024
            if out["idle_cpu_share"] is not None:
                rows["idle_cpu"] = 100 * out["idle_cpu_share"]
    groups = ["order", "staff"] if system.name == "ours" else ["order"]
    for group in groups:
        progress(f"{system.name}: fan-out of one change to {plan.fanout} sockets ({group})")
        out = run_fanout(system, plan.fanout, group, plan, client_cpus)
        check(result, out, f"fanout-{group}")
        rows[f"fanout_{group}"] = fanout_rate(out.get("samples", []))
        lost += max(0, int(out["expect"]) - int(out["measured"]))
        if group == "order" and out.get("measured") and "cpu_seconds" in out:
            rows["cpu_per_1000"] = out["cpu_seconds"] / int(out["measured"]) * 1000
    if isinstance(system, Ours) and plan.storm:
        progress(f"ours: reconnect storm of {plan.storm} clients with after_seq")
        out = run_storm(system, plan, client_cpus)
        if out.get("failed") or out.get("closed_early"):
            check(result, out, "storm")
        if out["level"] != plan.storm:
            result.notes.append(f"storm: {out['level']} of {plan.storm} clients level ({out.get('stop_reason')})")
        rows["storm_level_s"], rows["storm_pg_peak"] = out["level_s"], out["pg_peak"]
        rows["storm_pg_max"] = out["pg_max"]  # PostgreSQL's max_connections, for the target column
        lost += (plan.storm - out["level"]) * STORM_REPLAY
    if isinstance(system, Ours):
        progress("ours: stage breakdown")
        result.stages = stages.breakdown(run_stages(system, plan, client_cpus))
        progress("ours: the HTTP API")
        api = run_api(system, plan, client_cpus)
        result.api = api
        for key in ("get", "floor", "floor_1"):
            if set(api[key]["statuses"]) != {"200"}:
                result.notes.append(f"api {api[key]['path']}: statuses {api[key]['statuses']}")
        if set(api["post"]["statuses"]) != {200}:
            result.notes.append(f"api POST status: statuses {api['post']['statuses']}")
        if api["to_frame"]["measured"] != api["to_frame"]["expect"]:
            result.notes.append(f"api -> frame: {api['to_frame']['measured']} of {api['to_frame']['expect']} frames")
        rows["api_get_p50"] = api["get"]["latency_ms"].get("p50")
        rows["api_get_rps"] = api["get"]["requests_per_s"]
        rows["api_post_p50"] = api["post"]["latency_ms"].get("p50")
        rows["api_to_frame_p50"] = api["to_frame"]["latency_ms"].get("p50")
        lost += max(0, int(api["to_frame"]["expect"]) - int(api["to_frame"]["measured"]))
    rows["lost"] = lost
    rows["duplicates"] = dups
    return result


# The storm's stated bound: every client level this long after the first handshake (5,000 at 100-170
# handshakes/s is 30-50 s on 2 cores, the storm takes them all at once).
STORM_LEVEL_BOUND_S = 60.0
STORM_REPLAY = 2  # events each storm client missed: it resumes with after_seq = the order's seq - 2


def run_storm(system: Ours, plan: Plan, client_cpus: list[int] | None) -> dict[str, Any]:
    """--storm N: N sockets of one order open at once (all handshakes in flight together, as after a deploy),
    each with `?after_seq` two events behind, so each must get the two missed events replayed. Returns the
    loadgen's figures plus `level_s` (from the first handshake to the last replayed frame), and the peak of
    PostgreSQL connections to the bench database, sampled every 20 ms meanwhile."""
    import threading

    from django.db import connection

    from orders.states import Status

    owner = ours.users("bench-storm", 1)[0]
    (order,) = ours.new_orders([owner], 1)
    for to in (Status.CONFIRMED, Status.PREPARING, Status.SHIPPED):
        ours.change([order], rate=None, to=to)
    order.refresh_from_db()
    after = order.seq - STORM_REPLAY
    lines = ours.urls(system.handle, f"/ws/orders/{order.pk}/?after_seq={after}", ours.tokens([owner]) * plan.storm)
    database = connection.settings_dict["NAME"]
    stop = threading.Event()
    peak = [0]

    def sample() -> None:
        import psycopg

        with psycopg.connect(ours.admin_url(system.database_url), autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (database,)).fetchone()
                peak[0] = max(peak[0], int(row[0]) if row else 0)
                stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out: dict[str, Any] = drive(
            lines, lambda: None, plan.storm * STORM_REPLAY, timeout=plan.session_timeout, cpus=client_cpus,
            loadgen_args=["--samples", "--connect-concurrency", str(plan.storm),
                          "--deflate" if plan.deflate else "--no-deflate", "--origin", system.origin])
    finally:
        stop.set()
        sampler.join(timeout=5)
    missed = set(range(after + 1, after + 1 + STORM_REPLAY))
    seen: dict[int, set[int]] = defaultdict(set)
    level_at: dict[int, float] = {}
    for s in sorted(out.get("samples", []), key=lambda s: s["arrival"]):
        if s["order_id"] == order.pk and s["seq"] in missed:
            seen[s["client"]].add(s["seq"])
            if seen[s["client"]] == missed:
                level_at.setdefault(s["client"], s["arrival"])
    out["level"] = len(level_at)  # clients that got every event they missed
    out["level_s"] = max(level_at.values()) - float(out["started_at"]) if level_at else None
    out["pg_peak"] = peak[0]
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        out["pg_max"] = int(cursor.fetchone()[0])
    return out


def measure_sharded(result: Result, plan: Plan, args: argparse.Namespace, client_cpus: list[int] | None,
                    progress: Any) -> None:
    """--shards N: ours again with N web processes behind nginx and the channel layer sharded over N
    redis-servers (CHANNEL_LAYER_URLS), all started here; the staff fan-out to the same `fanout` sockets (nginx
    spreads them round robin), its rate beside the one process's, and whether every frame arrived. The staff
    stream, not one order's tabs: 10,000 tabs of one order would measure presence's O(N^2) join (Not done in
    docs/performance.md), 10,000 staff are 10,000 rooms of one on one group."""
    progress(f"ours: fan-out to {plan.fanout} sockets over {plan.shards} web processes and {plan.shards} Redis")
    system = Ours(args.database_url, args.redis_url, args.server, None, client_cpus, shards=plan.shards,
                  max_sockets=plan.fanout)
    try:
        run_latency(system, 1, dataclasses.replace(plan, latency_changes=5), client_cpus)  # warm-up, as above
        out = run_fanout(system, plan.fanout, "staff", plan, client_cpus)
    finally:
        system.stop()
    check(result, out, "fanout-sharded")
    result.rows["fanout_sharded"] = fanout_rate(out.get("samples", []))
    result.rows["lost"] = (result.rows.get("lost") or 0) + max(0, int(out["expect"]) - int(out["measured"]))


def floor_result(plan: Plan, measured: dict[str, Any], results: list[Result]) -> Result:
    """The floor column: the PostgreSQL commit and Redis round trip measured alone, and floors derived from them
    (each derivation in the notes)."""
    by = {r.name: r for r in results}
    pg, rtt = measured["postgres_commit_ms"], measured["redis_rtt_ms"]
    ceiling = by.get("ceiling")
    result = Result(FLOOR, "PostgreSQL + Redis alone", cores="bench process (client core)")
    rows = result.rows
    rows["floor_pg_commit"], rows["floor_redis_rtt"] = pg["p50"], rtt["p50"]
    for n in plan.watchers:
        for q in ("p50", "p99"):
            delivery = ceiling.rows.get(f"{q}@{n}") if ceiling else rtt[q]
            rows[f"{q}@{n}"] = None if delivery is None else pg[q] + delivery
    delivered = "the ceiling's latency at as many watchers" if ceiling else "a Redis round trip (no ceiling run)"
    result.notes.append(f"latency p50/p99: the commit's p50/p99 + {delivered}")
    api = getattr(by.get("ours"), "api", None)
    if api:
        one = api["floor_1"]["latency_ms"]["p50"]
        rows["api_get_p50"], rows["api_get_rps"] = api["floor"]["latency_ms"]["p50"], api["floor"]["requests_per_s"]
        rows["api_post_p50"] = one + pg["p50"]
        delivery = ceiling.rows.get("p50@1") if ceiling and 1 in plan.watchers else rtt["p50"]
        rows["api_to_frame_p50"] = one + pg["p50"] + (delivery or 0.0)
        result.notes.append("API GET: a minimal Django view doing one query (bench/asgi.py), same process, 8 clients")
        result.notes.append("API POST: that view's p50 with one client + the commit's p50; API -> frame: that + "
                            + ("the ceiling's p50 at 1 watcher" if ceiling and 1 in plan.watchers else "a Redis PING"))
    return result


def check(result: Result, out: dict[str, Any], label: str) -> None:
    if out.get("failed"):
        result.notes.append(f"{label}: {out['failed']} handshakes failed {out.get('fail_reasons')}")
    if out.get("closed_early"):
        result.notes.append(f"{label}: closed early {out['closed_early']}")
    if out.get("measured") != out.get("expect"):
        result.notes.append(f"{label}: {out.get('measured')} of {out.get('expect')} frames ({out.get('stop_reason')})")


# --- The table ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    better: str  # "low" or "high"
    systems: tuple[str, ...]  # the columns that have a number for it


def row_specs(plan: Plan) -> list[Row]:
    """The table's rows in print order."""
    everyone, platforms = (*SYSTEMS, FLOOR), SYSTEMS
    specs = []
    for n in sorted(plan.watchers):
        specs += [Row(f"p50@{n}", f"latency p50, {n} watchers (ms)", "low", everyone),
                  Row(f"p99@{n}", f"latency p99, {n} watchers (ms)", "low", everyone),
                  Row(f"max@{n}", f"latency max, {n} watchers (ms)", "low", platforms)]
    largest = max(plan.watchers)
    offered = "offering permessage-deflate" if plan.deflate else "without compression (--no-deflate)"
    specs += [
        Row("fanout_order", f"fan-out, 1 change -> {plan.fanout} sockets of one order (deliveries/s)", "high",
            platforms),
        Row("fanout_staff", f"fan-out, 1 change -> {plan.fanout} staff streams, staff.orders (deliveries/s)", "high",
            ("ours",)),
        *([Row("fanout_sharded", f"fan-out, 1 change -> {plan.fanout} staff streams, {plan.shards} web "
               f"processes behind nginx, layer over {plan.shards} Redis (deliveries/s)", "high", ("ours",))]
          if plan.shards else []),
        Row("cpu_per_1000", "CPU s per 1,000 deliveries (server + worker, first change to last frame)", "low",
            platforms),
        Row("kib_per_conn", f"memory per idle connection, {largest} open, clients {offered} (KiB)", "low", platforms),
        Row("idle_cpu", f"idle CPU of the server, {largest} sockets open ({plan.idle_seconds:g} s, % of one core)",
            "low", platforms),
        Row("deflate", f"share of the {largest} clients that negotiated permessage-deflate", "", platforms),
        Row("handshakes", f"connections set up/s, JWT auth, {largest} clients (ours: until subscribed; ceiling: no "
            "auth)", "high", platforms),
        Row("floor_pg_commit", "PostgreSQL commit of the change's write alone (UPDATE order + INSERT event), p50 (ms)",
            "low", (FLOOR,)),
        Row("floor_redis_rtt", "Redis round trip (PING), p50 (ms)", "low", (FLOOR,)),
        Row("api_get_p50", "API GET /api/orders/<id>/, 8 clients, p50 (ms)", "low", ("ours", FLOOR)),
        Row("api_get_rps", "API GET /api/orders/<id>/, 8 clients (requests/s)", "high", ("ours", FLOOR)),
        Row("api_post_p50", "API POST /api/orders/<id>/status/, 1 client, p50 (ms)", "low", ("ours", FLOOR)),
        Row("api_to_frame_p50", "API status change -> frame on the customer's socket, p50 (ms)", "low",
            ("ours", FLOOR)),
        *([Row("storm_level_s", f"reconnect storm: {plan.storm} clients at once with after_seq ({STORM_REPLAY} "
               "missed events each), until the last is level (s)", "low", ("ours",)),
           Row("storm_pg_peak", "reconnect storm: peak PostgreSQL connections of the bench database", "low",
               ("ours",))] if plan.storm else []),
        Row("lost", "frames lost (all sessions)", "low", platforms),
        Row("duplicates", "duplicate frames (latency sessions)", "low", platforms),
    ]
    return specs


def targets(plan: Plan, by: dict[str, Result]) -> dict[str, str]:
    """Issue 18's targets, each judged on this run: "met"/"NOT met" plus the goal (n/a: not measured here)."""
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

    def at_most(key: str, other: Result | None, times: float, goal: str) -> str:
        a, b = get(ours, key), get(other, key)
        return verdict(None if a is None or not b else a <= times * b, goal)

    def at_least(key: str, other: Result | None, times: float, goal: str) -> str:
        a, b = get(ours, key), get(other, key)
        return verdict(None if a is None or not b else a >= times * b, goal)

    p99 = get(ours, f"p99@{n}")
    out[f"p50@{n}"] = "; ".join([at_most(f"p50@{n}", ceiling, 3, "<= 3x ceiling"),
                                 at_most(f"p50@{n}", seed, 0.35, "<= 0.35x seed")])
    out[f"p99@{n}"] = verdict(None if p99 is None else p99 <= 15, "<= 15 ms")
    out["fanout_order"] = at_least("fanout_order", ceiling, 0.8, ">= 0.8x ceiling")
    level = get(ours, "storm_level_s")
    if plan.storm:
        out["storm_level_s"] = verdict(None if level is None else level <= STORM_LEVEL_BOUND_S,
                                       f"all level within {STORM_LEVEL_BOUND_S:.0f} s")
    peak, allowed = get(ours, "storm_pg_peak"), get(ours, "storm_pg_max")
    if plan.storm:
        out["storm_pg_peak"] = verdict(None if peak is None or allowed is None else peak < allowed,
                                       f"< max_connections ({fmt(allowed)})")
    sharded, single = get(ours, "fanout_sharded"), get(ours, "fanout_staff")
    if plan.shards:
        out["fanout_sharded"] = verdict(None if sharded is None or not single else sharded >= 1.6 * single,
                                        ">= 1.6x one process's")
    out["cpu_per_1000"] = at_most("cpu_per_1000", seed, 0.5, "<= 0.5x seed")
    kib = get(ours, "kib_per_conn")
    out["kib_per_conn"] = verdict(None if kib is None or not plan.deflate else kib <= 30, "<= 30 KiB with deflate")
    out["handshakes"] = at_least("handshakes", seed, 1.0, ">= seed")
    get_p50, rps, to_frame = get(ours, "api_get_p50"), get(ours, "api_get_rps"), get(ours, "api_to_frame_p50")
    out["api_get_p50"] = verdict(None if get_p50 is None else get_p50 <= 3, "<= 3 ms")
    out["api_get_rps"] = verdict(None if rps is None else rps >= 400, ">= 400/s")
    out["api_to_frame_p50"] = verdict(None if to_frame is None else to_frame <= 10, "<= 10 ms")
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
    versus = [other for other in ("seed", "ceiling", FLOOR) if "ours" in by and other in by]
    header += [f"ours/{other}" for other in versus]
    header.append("target")
    lines = [header]
    for spec in row_specs(plan):
        if not any(r.name in spec.systems for r in results):
            continue
        row = [spec.label, *[fmt(r.rows.get(spec.key)) if r.name in spec.systems else "" for r in results]]
        row += [ratio(by["ours"].rows.get(spec.key), by[other].rows.get(spec.key)) for other in versus]
        row.append(goals.get(spec.key, ""))
        lines.append(row)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + " |" for line in lines]
    text.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text.append("")
    text.append(f"clients: {'offer permessage-deflate, as browsers do' if plan.deflate else 'no compression offered'}")
    for r in results:
        text.append(f"{r.name}: {r.server}, cores: {r.cores}")
        text.extend(f"  note: {note}" for note in r.notes)
    ours_result = by.get("ours")
    if ours_result is not None and ours_result.stages:
        text += ["", stages.stages_table(ours_result.stages, plan.stage_changes)]
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
    ap.add_argument("--deflate", action=argparse.BooleanOptionalAction, default=True,
                    help="clients offer permessage-deflate, as browsers do (default); --no-deflate to compare")
    ap.add_argument("--api-duration", type=float, default=5.0,
                    help="seconds of each HTTP API load (default 5, after a 1 s warm-up)")
    ap.add_argument("--scale", type=int, default=0, metavar="N",
                    help="also N watchers on the one web process (e.g. 10000): latency p99 at --rate, memory and idle "
                         "CPU with N open (the loadgen raises its open-files limit)")
    ap.add_argument("--storm", type=int, default=0, metavar="N",
                    help="also N clients of one order reconnecting at once with after_seq (ours; default off)")
    ap.add_argument("--shards", type=int, default=0, metavar="N",
                    help="also fan out to --fanout sockets over N web processes behind nginx with the channel layer "
                         "sharded over N redis-servers, all started by the bench (ours; default off)")
    args = ap.parse_args(argv)
    if args.quick:
        plan = Plan(watchers=[1, 3], fanout=3, latency_changes=3, latency_rate=20.0, fanout_changes=2,
                    session_timeout=30.0, stage_changes=3, floor_count=20, api_duration=0.5, api_changes=3)
    else:
        watchers = [int(w) for w in args.watchers.split(",") if w.strip()]
        plan = Plan(watchers=watchers, fanout=args.fanout or max(watchers), latency_changes=args.changes,
                    latency_rate=args.rate, fanout_changes=args.fanout_changes, session_timeout=120.0,
                    api_duration=args.api_duration)
    plan.profile_dir = args.profile
    if args.scale and args.scale not in plan.watchers:
        plan.watchers.append(args.scale)
    if args.quick:
        plan.idle_seconds = 0.5
    plan.shards = args.shards
    plan.storm = args.storm
    plan.deflate = args.deflate
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
        if name == "ours" and plan.shards:
            measure_sharded(results[-1], plan, args, client_cpus, progress)
    if any(r.name == "ours" for r in results):
        progress("floors: PostgreSQL commit and Redis round trip alone")
        results.append(floor_result(plan, floors.measure(args.database_url, args.redis_url, count=plan.floor_count),
                                    results))
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
