"""Resident memory and CPU time of started process trees, read from Linux /proc (no psutil needed)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.baselines._proc import Proc, session_members

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    """Summed over every process of the given trees at one moment."""

    rss_bytes: int
    cpu_seconds: float
    processes: int


def _one(pid: int) -> tuple[int, float] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None  # exited meanwhile
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted from `state`
    return resident_pages * PAGE, (utime + stime) / TICKS


def usage(procs: Sequence[Proc]) -> Usage:
    """RSS and CPU seconds of each Proc's whole session (the `timeout` wrapper, the server, its children)."""
    rss = 0
    cpu = 0.0
    count = 0
    for proc in procs:
        for pid in session_members(proc.popen.pid):
            one = _one(pid)
            if one is not None:
                rss += one[0]
                cpu += one[1]
                count += 1
    return Usage(rss, cpu, count)


def wait_quiet(procs: Sequence[Proc], *, window: float = 0.25, idle_share: float = 0.05, limit: float = 60.0) -> None:
    """Block until the trees use less than `idle_share` of a core over one `window` (the work is done), or `limit`."""
    deadline = time.monotonic() + limit
    last = usage(procs).cpu_seconds
    while time.monotonic() < deadline:
        time.sleep(window)
        now = usage(procs).cpu_seconds
        if now - last < idle_share * window:
            return
        last = now
