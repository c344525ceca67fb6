"""Where a server's time goes during a fan-out: py-spy samples of its process, summed per function.

`python -m bench --profile DIR` records each fan-out session's server, during all its changes but the last,
into DIR/<system>-fanout-<group>.txt (collapsed stacks, for flamegraph.pl or speedscope) and writes the top
functions beside it (.top.txt).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.baselines._proc import Proc, session_members


def _python_pid(proc: Proc) -> int:
    """The server's own pid: the member of the process's session that is not the `timeout` wrapper."""
    members = [pid for pid in session_members(proc.popen.pid) if pid != proc.popen.pid]
    return min(members) if members else proc.popen.pid


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy (pip install -r requirements/test.txt)")
    return found


@contextmanager
def recorded(proc: Proc, out: Path, *, rate: int = 500) -> Iterator[None]:
    """Sample `proc`'s server process while the block runs, then summarise the samples."""
    out.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [py_spy(), "record", "--pid", str(_python_pid(proc)), "--rate", str(rate), "--format", "raw",
         "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
    if out.exists():
        out.with_suffix(".top.txt").write_text(summary(out))


def summary(collapsed: Path, *, top: int = 40) -> str:
    """The functions with the most samples: own time (the frame on top) and inclusive (anywhere on the stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{total} samples of {collapsed.name}", "", "own time:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n" if total else "no samples\n"
