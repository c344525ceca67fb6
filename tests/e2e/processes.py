"""Real platform processes for end-to-end tests: daphne/uvicorn, celery workers, a private redis-server."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _ephemeral_ports() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    Binding port 0 hands out an ephemeral port, the range every outgoing socket (the tests' clients, Redis and
    database pools) also draws from, so one could take it before the child binds it. Below that range only other
    listeners compete; a listener that still loses the race is restarted on another port (`start_listening`).
    """
    low, _high = _ephemeral_ports()
    for _ in range(200):
        port = random.randrange(10_000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


BIND_FAILURES = ("address already in use", "could not bind", "error while attempting to bind")


def lost_its_port(process: Process) -> bool:
    """Whether `process` exited because another listener took its port first."""
    return not process.alive and any(failure in process.log.lower() for failure in BIND_FAILURES)


def own_origins(*ports: int) -> dict[str, str]:
    """Environment for a production-mode web process: the origins of pages served on `ports` (the process's own,
    and nginx's in front of it), as a browser there and the tests' clients send them, as WS_ALLOWED_ORIGINS."""
    return {"WS_ALLOWED_ORIGINS": ",".join(f"http://{host}:{port}" for port in ports for host in ("127.0.0.1",
                                                                                                  "localhost"))}


class Process:
    """A child process in its own process group, its output in a temp file; always stopped by `stop()`."""

    def __init__(self, name: str, command: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        self.command = list(command)
        self.env = env
        self.log_path = Path(tempfile.mkstemp(prefix=f"e2e-{name}-", suffix=".log")[1])
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30, count: int = 1) -> None:
        """Block until the output holds `text` (`count` times); raise if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.count(text) >= count:
                return
            self._check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not log {text!r} ({count}x) within {timeout}s:\n{self.log[-3000:]}")

    def wait_http_ok(self, url: str, timeout: float) -> None:
        """Block until `url` answers 2xx; raise if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:  # refused, or an HTTP error status (503 while unhealthy)
                time.sleep(0.1)
        raise TimeoutError(f"{self.name}: {url} did not answer 2xx within {timeout}s:\n{self.log[-3000:]}")

    def _check_alive(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log[-3000:]}")

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group and return at once (SIGSTOP/SIGCONT a worker and its pool processes)."""
        assert self.popen is not None
        os.killpg(self.popen.pid, sig)

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a celery worker's pool children too) and reap it."""
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Server(Process):
    def __init__(self, name: str, command: Sequence[str], env: dict[str, str], port: int) -> None:
        super().__init__(name, command, env)
        self.port = port

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> Server:
        self.wait_http_ok(f"{self.http}/healthz", timeout)
        return self


class RedisServer(Process):
    """A private redis-server on its own loopback port, so tests can stop and start it freely."""

    def __init__(self, port: int | None = None, *, replica_of: RedisServer | None = None) -> None:
        self.port = port or free_port()
        # A directory of its own: replication writes an RDB file even with --save "", and a replica would load
        # another run's file at start.
        workdir = tempfile.mkdtemp(prefix=f"e2e-redis-{self.port}-")
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                   "--dir", workdir]
        if replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(replica_of.port)]
        super().__init__(f"redis-{self.port}", command, dict(os.environ))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, timeout: float = 10) -> RedisServer:
        self.wait_for_log("Ready to accept connections", timeout)
        return self


class SentinelServer(Process):
    """A Redis Sentinel watching `master` under `name` (quorum 1: this one sentinel may fail it over alone)."""

    def __init__(self, master: RedisServer, conf_dir: Path, name: str) -> None:
        self.port = free_port()
        conf = conf_dir / f"sentinel-{self.port}.conf"  # sentinel rewrites its file, so each gets its own
        conf.write_text(f"bind 127.0.0.1\nport {self.port}\nsentinel monitor {name} 127.0.0.1 {master.port} 1\n"
                        f"sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 10000\n")
        super().__init__(f"sentinel-{self.port}", ["redis-server", str(conf), "--sentinel"], dict(master.env))

    def wait_ready(self, timeout: float = 10) -> SentinelServer:
        self.wait_for_log("+monitor master", timeout)
        return self


class Nginx(Process):
    """nginx with deploy/nginx.conf and deploy/app-locations.inc in front of one web process on loopback.

    Only the addresses change (and whatever `location_changes` replaces in the locations file).
    """

    def __init__(self, upstream_port: int, workdir: Path, location_changes: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.access_log = workdir / "access.log"
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        replacements = {
            "server web:8000": f"server 127.0.0.1:{upstream_port}",
            "listen 80;": f"listen 127.0.0.1:{self.port};",
            "include /etc/nginx/conf.d/app-locations.inc;": f"include {workdir / 'app-locations.inc'};",
            "access_log /dev/stdout json_combined;": f"access_log {self.access_log} json_combined;",
        }
        for old, new in replacements.items():
            assert old in site, f"deploy/nginx.conf changed: {old!r} not found"
            site = site.replace(old, new)
        (workdir / "site.conf").write_text(site)
        locations = (ROOT / "deploy" / "app-locations.inc").read_text()
        for old, new in (location_changes or {}).items():
            assert old in locations, f"deploy/app-locations.inc changed: {old!r} not found"
            locations = locations.replace(old, new)
        (workdir / "app-locations.inc").write_text(locations)
        (workdir / "nginx.conf").write_text(
            f"daemon off;\nmaster_process off;\nerror_log {workdir / 'error.log'} info;\npid {workdir / 'nginx.pid'};\n"
            "events { worker_connections 256; }\n"
            f"http {{\n  include /etc/nginx/mime.types;\n  include {workdir / 'site.conf'};\n}}\n")
        super().__init__(f"nginx-{self.port}", ["nginx", "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                         {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 10) -> Nginx:
        self.wait_http_ok(f"{self.http}/nginx-health", timeout)
        return self
