"""Process plumbing for the baselines: free loopback ports, bounded subprocesses, readiness, loadgen driving."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench.loadgen import raise_nofile

__all__ = [
    "REPO_ROOT",
    "Proc",
    "Stack",
    "child_env",
    "delete_keys",
    "drive",
    "free_port",
    "pin_to",
    "raise_nofile",
    "spawn",
    "wait_log",
    "wait_port",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child: ours, with the repo root importable and unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Proc:
    """A subprocess in its own session (so its whole process group can be signalled) logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, then SIGKILL it after `grace` seconds."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Stragglers of our session (e.g. prefork children that outlived the leader), by pid.
        for pid in session_members(self.popen.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return self.popen.poll()


def session_members(sid: int) -> list[int]:
    """Pids whose session id is `sid` (Linux /proc); our children were started as session leaders."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[3]) == sid:  # state ppid pgrp session ...
            pids.append(int(entry.name))
    return pids


def pin_to(cpus: Sequence[int] | None) -> Callable[[], None] | None:
    """A preexec_fn pinning the child (and everything it forks) to `cpus`; None leaves the scheduler free."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return None
    wanted = set(cpus) & set(range(os.cpu_count() or 1))
    if not wanted:
        return None
    return lambda: os.sched_setaffinity(0, wanted)


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    max_lifetime: float,
    cpus: Sequence[int] | None = None,
) -> Proc:
    """Start argv under coreutils `timeout` so it stops by itself after max_lifetime seconds even if we die;
    `cpus` pins it (os.sched_setaffinity in the child, inherited by its own children)."""
    cmd = list(argv)
    if shutil.which("timeout"):
        cmd = ["timeout", "--kill-after=5", f"{max_lifetime:.0f}", *cmd]
    with open(log_path, "ab") as log:  # the child keeps its own copy of the fd
        popen = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=pin_to(cpus),
        )
    return Proc(name, popen, log_path)


def wait_port(proc: Proc, port: int, timeout: float) -> None:
    """Block until 127.0.0.1:port accepts TCP connections; raise if proc exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.log()[-3000:]}")


def wait_log(proc: Proc, needle: str, timeout: float) -> None:
    """Block until `needle` appears in proc's log; raise if proc exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log():
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited early:\n{proc.log()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name}: {needle!r} not seen within {timeout}s:\n{proc.log()[-3000:]}")


def delete_keys(redis_url: str, patterns: Sequence[str]) -> int:
    """Delete keys matching `patterns` (our own prefixes only) so stale groups/tasks don't leak between runs."""
    r = redis.Redis.from_url(redis_url)
    try:
        n = 0
        for pat in patterns:
            batch = list(r.scan_iter(match=pat, count=1000))
            if batch:
                n += int(r.delete(*batch))
        return n
    finally:
        r.close()


@dataclass
class Stack:
    """A set of started processes plus their temp dir; stop() ends them all and removes the dir."""

    procs: list[Proc] = field(default_factory=list)
    tmpdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-baseline-")))
    keep_tmp: bool = False

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        if not self.keep_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def logs(self) -> dict[str, str]:
        return {p.name: p.log() for p in self.procs}


def drive(
    urls: Sequence[str],
    trigger: Callable[[], object],
    expect: int,
    *,
    timeout: float = 60.0,
    loadgen_args: Sequence[str] = (),
    cpus: Sequence[int] | None = None,
    done_file: Path | None = None,
) -> dict[str, object]:
    """Run bench.loadgen in its own process (pinned to `cpus`) on `urls`, call trigger() once all clients are
    open, return its JSON. A URL line may carry tab-separated, comma-joined subprotocols (bench.loadgen).
    `done_file` is written by the loadgen once the `expect` frames arrived, before its clients close."""
    if done_file is not None:
        loadgen_args = [*loadgen_args, "--done-file", str(done_file)]
    with tempfile.TemporaryDirectory(prefix="bench-drive-") as d:
        urls_file = Path(d) / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n")
        ready = Path(d) / "ready"
        cmd = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--urls-file",
            str(urls_file),
            "--expect",
            str(expect),
            "--timeout",
            str(timeout),
            "--ready-file",
            str(ready),
            *loadgen_args,
        ]
        p = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=pin_to(cpus),
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready.exists():
                if p.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            if ready.exists():
                trigger()
            out, _ = p.communicate(timeout=timeout + 30)
            return dict(json.loads(out))
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
