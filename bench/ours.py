"""Our platform under load, in production mode: a dedicated PostgreSQL database, Redis, a web server and a
Celery worker started from worker/processes.py, and changes made through orders.services.change_status."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench.baselines._proc import (
    REPO_ROOT,
    Stack,
    child_env,
    delete_keys,
    free_port,
    raise_nofile,
    spawn,
    wait_log,
    wait_port,
)

SECRET_KEY = "bench-only-secret-key-never-used-in-production-0123456789"
# Our keys and queue in the bench's Redis database, apart from the baselines' (benchseed*, bench.ceiling.*).
# The channel prefix is per run too: a pub/sub layer's channels ignore the database index.
CHANNEL_PREFIX = f"benchours{os.getpid()}"
PRESENCE_PREFIX = "benchpresence"
AUTH_PREFIX = "benchauth"
QUEUE_PREFIX = "bench_ours-"
STAGES_PREFIX = f"benchstages{os.getpid()}:"  # bench/worker_hooks.py: per-event stage times of this run
SERVERS = ("uvicorn", "daphne")
BENCH_APPLICATION = "bench.asgi:application"
WORKER_HOOKS = "bench.worker_hooks"


def admin_url(database_url: str) -> str:
    """The same server's `postgres` database (to create the bench's, or watch pg_stat_activity)."""
    return urlunsplit(urlsplit(database_url)._replace(path="/postgres"))


def ensure_database(database_url: str) -> None:
    """CREATE DATABASE for the bench if it does not exist yet (connecting to the server's `postgres` database)."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def platform_env(database_url: str, redis_url: str) -> dict[str, str]:
    """The production-mode environment of every process of ours, the bench process included.

    WS_MAX_CONNECTIONS_PER_USER is raised because the order fan-out row opens N tabs of one customer, and the
    handshake bursts because all of its sockets come from one address at once; everything else is the production
    default unless the caller's environment overrides it (tuning knobs).
    """
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": SECRET_KEY,
        "CHANNEL_LAYER_PREFIX": CHANNEL_PREFIX,
        "PRESENCE_KEY_PREFIX": PRESENCE_PREFIX,
        "AUTH_STATE_PREFIX": AUTH_PREFIX,
        "CELERY_QUEUE_PREFIX": QUEUE_PREFIX,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WS_MAX_CONNECTIONS_PER_USER": "1000000",
        "WS_HANDSHAKE_BURST_PER_IP": "1000000",
        "WS_HANDSHAKE_BURST": "1000000",
        "LOG_LEVEL": "WARNING",
        "BENCH_STAGES_PREFIX": STAGES_PREFIX,
    }
    return env


@dataclass
class OursStack:
    """Our running platform: web server process(es) and one Celery worker (prefork) on the bench database;
    with several web processes, nginx in front of them (`port` is then nginx's) and procs[:web_count] the web
    processes."""

    port: int
    server: str
    stack: Stack = field(repr=False)
    web_count: int = 1

    @property
    def base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stack.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    database_url: str,
    redis_url: str,
    *,
    server: str = "uvicorn",
    worker_concurrency: int = 2,
    server_cpus: Sequence[int] | None = None,
    worker_cpus: Sequence[int] | None = None,
    max_lifetime: float = 900.0,
    ready_timeout: float = 60.0,
    web_processes: int = 1,
    layer_shards: int = 0,
    max_sockets: int = 1000,
) -> OursStack:
    """Migrate the bench database, then start the web server and the worker with the production commands.

    Two bench-only additions, neither in the path unless a session asks: the server runs `bench.asgi`, the
    platform's application plus the /__bench__/ routes (frame-written times, the API floor view), and the worker
    imports bench.worker_hooks (task start, group_send done and task end per push, written after the task).
    """
    from worker.processes import daphne_command, web_command, worker_command

    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}, got {server!r}")
    raise_nofile()
    ensure_database(database_url)
    delete_keys(
        redis_url,
        ["benchours*", f"{PRESENCE_PREFIX}*", f"{AUTH_PREFIX}*", f"{QUEUE_PREFIX}*", f"_kombu.binding.{QUEUE_PREFIX}*"],
    )
    stack = Stack()
    port = free_port()  # the clients' port: the one web process's, or nginx's in front of several
    web_ports = [port] if web_processes == 1 else [free_port() for _ in range(web_processes)]
    shard_ports = [free_port() for _ in range(layer_shards)]
    extra = {"CHANNEL_LAYER_URLS": ",".join(f"redis://127.0.0.1:{p}/0" for p in shard_ports)} if shard_ports else {}
    # The clients send this server's own origin, as a page served by it would.
    env = child_env(**platform_env(database_url, redis_url), WS_ALLOWED_ORIGINS=f"http://127.0.0.1:{port}", **extra)
    # The production command (no gossip/mingle/heartbeat there either), so the worker's CPU figure is ours.
    worker = [*worker_command(concurrency=worker_concurrency, hostname="benchours@%h"), "--include", WORKER_HOOKS]
    try:
        for shard_port in shard_ports:
            # A redis-server of the bench's own per shard, nothing saved: the layer's messages only.
            shard = spawn(f"redis-{shard_port}", ["redis-server", "--bind", "127.0.0.1", "--port", str(shard_port),
                                                  "--save", "", "--appendonly", "no", "--dir", str(stack.tmpdir)],
                          stack.tmpdir / f"redis-{shard_port}.log", env, max_lifetime)
            stack.procs.append(shard)
            wait_log(shard, "Ready to accept connections", ready_timeout)
        migrate = spawn("migrate", [sys.executable, "manage.py", "migrate", "--noinput"],
                        stack.tmpdir / "migrate.log", env, 300)
        if migrate.popen.wait(timeout=300) != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.log()[-3000:]}")
        webs = []
        for i, web_port in enumerate(web_ports):
            command = web_command(port=web_port) if server == "uvicorn" else daphne_command(port=web_port)
            command = [BENCH_APPLICATION if arg == "config.asgi:application" else arg for arg in command]
            # Several web processes: one per core, as a deployment would run them.
            cpus = server_cpus if web_processes == 1 else [i % (os.cpu_count() or 1)]
            name = server if web_processes == 1 else f"{server}-{i}"
            webs.append(spawn(name, command, stack.tmpdir / f"{name}.log", env, max_lifetime, cpus))
        # The web processes first (System.web, the profiles), then the worker, the shards, nginx.
        stack.procs[:0] = webs
        stack.procs.insert(len(webs), spawn("celery", worker, stack.tmpdir / "celery.log", env, max_lifetime,
                                            worker_cpus))
        for proc, web_port in zip(webs, web_ports, strict=True):
            wait_port(proc, web_port, ready_timeout)
        wait_log(stack.procs[len(webs)], " ready.", ready_timeout)
        if web_processes > 1:
            edge = nginx_config(stack.tmpdir, port, web_ports, max_sockets)
            proxy = spawn("nginx", ["nginx", "-p", str(stack.tmpdir), "-c", str(edge)], stack.tmpdir / "nginx.log",
                          {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, max_lifetime)
            stack.procs.append(proxy)
            wait_port(proxy, port, ready_timeout)
    except BaseException:
        stack.stop()
        raise
    return OursStack(port=port, server=server, stack=stack, web_count=web_processes)


def nginx_config(workdir: Path, port: int, web_ports: Sequence[int], max_sockets: int) -> Path:
    """deploy/nginx.conf in front of `web_ports` on loopback, round robin. Only the addresses change, and the
    per-address limits go: every bench client comes from 127.0.0.1."""
    site = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    locations = (REPO_ROOT / "deploy" / "app-locations.inc").read_text()
    upstream = "server web:8000 max_fails=3 fail_timeout=10s;"
    for old, new in ((upstream, "\n    ".join(upstream.replace("web:8000", f"127.0.0.1:{p}") for p in web_ports)),
                     ("listen 80;", f"listen 127.0.0.1:{port} backlog=4096;"),
                     ("include /etc/nginx/conf.d/app-locations.inc;", f"include {workdir / 'app-locations.inc'};"),
                     ("access_log /dev/stdout json_combined;", "access_log off;")):
        if old not in site:
            raise RuntimeError(f"deploy/nginx.conf changed: {old!r} not found")
        site = site.replace(old, new)
    for limit in ("limit_req zone=ws_handshakes burst=50 nodelay;", "limit_conn ws_sockets 100;"):
        if limit not in locations:
            raise RuntimeError(f"deploy/app-locations.inc changed: {limit!r} not found")
        locations = locations.replace(limit, "")
    (workdir / "app-locations.inc").write_text(locations)
    (workdir / "site.conf").write_text(site)
    conf = workdir / "nginx.conf"
    # Each socket is two connections to nginx (client and upstream).
    conf.write_text(f"daemon off;\nmaster_process off;\nworker_rlimit_nofile {4 * max_sockets + 1024};\n"
                    f"error_log {workdir / 'nginx-error.log'} warn;\npid {workdir / 'nginx.pid'};\n"
                    f"events {{ worker_connections {3 * max_sockets + 1024}; }}\n"
                    f"http {{\n  include /etc/nginx/mime.types;\n  include {workdir / 'site.conf'};\n}}\n")
    return conf


# --- The bench process's side: users, orders, tokens and changes through the service ----------------


def setup_django(database_url: str, redis_url: str) -> None:
    """Configure this process as one more platform process (the "staff edits orders" side)."""
    os.environ.update(platform_env(database_url, redis_url))
    os.environ.pop("TEST_DATABASE_NAME", None)
    import django

    django.setup()


def users(prefix: str, count: int, *, staff: bool = False, perms: Sequence[str] = ("view_order",)) -> list[Any]:
    """`count` users named prefix0..; created once (unusable passwords: they log in by token) and reused.
    Staff get the orders permissions `perms` (codenames)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    names = [f"{prefix}{i}" for i in range(count)]
    existing = {u.username: u for u in user_model.objects.filter(username__in=names)}
    missing = []
    for name in names:
        if name not in existing:
            user = user_model(username=name, is_staff=staff, email="")
            user.set_unusable_password()
            missing.append(user)
    if missing:
        user_model.objects.bulk_create(missing, batch_size=1000)
        existing = {u.username: u for u in user_model.objects.filter(username__in=names)}
    people = [existing[name] for name in names]
    if staff:
        # Staff see every order with the admin's view permission (orders.selectors.sees_all_orders) and change
        # statuses over the API with change_order (selectors.may_change_status).
        granted = Permission.objects.filter(content_type__app_label="orders", codename__in=perms)
        grants = user_model.user_permissions.through
        grants.objects.bulk_create([grants(user_id=p.pk, permission_id=perm.pk) for p in people for perm in granted],
                                   ignore_conflicts=True, batch_size=1000)
    return people


def tokens(people: Sequence[Any]) -> list[str]:
    """Access JWTs (HS256, the production default), one per user, as a client gets from /api/auth/token/."""
    from accounts.tokens import issue_access_token

    return [issue_access_token(person) for person in people]


def new_orders(customers: Sequence[Any], count: int) -> list[Any]:
    """`count` pending orders, order j owned by customers[j % len]; written without events (no push at creation)."""
    from orders.models import Order

    orders = [Order(customer=customers[j % len(customers)]) for j in range(count)]
    return list(Order.objects.bulk_create(orders, batch_size=1000))


def change(orders: Sequence[Any], *, rate: float | None, actor: Any = None, to: str = "confirmed") -> list[float]:
    """Confirm each order through services.change_status at `rate` changes/s (None: as fast as possible).

    Returns when each call returned (time.time()); the frames carry their event's created_at.
    """
    from orders.services import change_status

    t0 = time.perf_counter()
    done: list[float] = []
    for i, order in enumerate(orders):
        if rate:
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        change_status(order=order, to=to, actor=actor)
        done.append(time.time())
    return done


def urls(stack: OursStack, path: str, access: Sequence[str]) -> list[str]:
    """Client lines for bench.loadgen: the URL and the bearer subprotocol carrying each person's JWT."""
    return [f"{stack.base_url}{path}\tbearer,{token}" for token in access]
