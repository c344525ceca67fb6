"""The benchmark at a tiny size (a few clients, seconds), so `make bench` cannot rot. Checks shape, never timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from bench.__main__ import FLOOR, Plan, row_specs
from bench.stages import STAGES

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def bench_database_url() -> str:
    """The test server's PostgreSQL, in a database of the bench's own next to the test database."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    name = f"{os.environ.get('TEST_DATABASE_NAME') or 'test'}_bench"
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.timeout(400)
def test_quick_benchmark_prints_every_row_of_every_system_the_floors_the_storm_and_the_shards(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    profiles = tmp_path / "profiles"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--scale", "20", "--storm", "20", "--shards", "2",
         "--json", str(out), "--profile", str(profiles),
         "--redis-url", settings.REDIS_URL, "--database-url", bench_database_url()],
        cwd=REPO, capture_output=True, text=True, timeout=360,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert run.returncode == 0, run.stderr[-4000:]
    report = json.loads(out.read_text())
    results = {r["name"]: r for r in report["results"]}
    assert set(results) == {"ours", "seed", "ceiling", FLOOR}

    plan = Plan(**report["plan"])
    assert plan.deflate, "the clients offer permessage-deflate by default"
    assert "clients: offer permessage-deflate" in run.stdout
    for spec in row_specs(plan):
        assert spec.label in run.stdout, f"row {spec.label!r} missing from the table"
        for name in spec.systems:
            assert isinstance(results[name]["rows"].get(spec.key), int | float), f"{name}: no number for {spec.key}"
    for name in ("ours", "seed", "ceiling"):
        assert results[name]["rows"]["lost"] == 0, f"{name} lost frames: {results[name]['notes']}"
        assert results[name]["notes"] == [], results[name]["notes"]  # includes the API's statuses: all 200
        assert 0 <= results[name]["rows"]["deflate"] <= 1
    assert "ours/seed" in run.stdout and "ours/ceiling" in run.stdout and "ours/floor" in run.stdout
    # --shards 2: the same fan-out through nginx to two web processes over two redis-servers, all its frames
    # counted in "lost" above; its row is judged against one process's.
    assert plan.shards == 2
    # --storm 20: twenty sockets resuming at once with after_seq, each given both events it missed (the ones
    # that were not are in "lost" above), without PostgreSQL running out of connections.
    assert plan.storm == 20
    # --scale 20: one more latency session, the largest, whose sockets also sit idle to count the server's CPU.
    assert max(plan.watchers) == 20
    assert "idle CPU of the server, 20 sockets open" in run.stdout
    assert "reconnect storm: 20 clients at once with after_seq" in run.stdout
    assert "all level within 60 s: met" in run.stdout
    assert results["ours"]["rows"]["storm_pg_peak"] < results["ours"]["rows"]["storm_pg_max"]
    assert "2 web processes behind nginx, layer over 2 Redis" in run.stdout
    assert ">= 1.6x one process's:" in run.stdout
    assert "cores:" in run.stdout

    # The stage breakdown: every stage of every change was seen, from the call to the client's receipt.
    breakdown = {row["stage"]: row for row in results["ours"]["stages"]}
    assert set(breakdown) == {key for key, _ in STAGES}
    assert all(row["events"] == plan.stage_changes for row in breakdown.values()), breakdown
    assert "Stages of one change" in run.stdout
    assert all(label in run.stdout for _, label in STAGES)

    # --profile attached py-spy to each system's server during its fan-outs and summarised its samples (a server
    # this idle may give none: py-spy records busy stacks only).
    for name in ("ours-fanout-order", "ours-fanout-staff", "seed-fanout-order", "ceiling-fanout-order"):
        top = (profiles / f"{name}.top.txt").read_text()
        assert f"samples of {name}.txt" in top or top == "no samples\n", top[:500]
