"""compose.yaml, the Dockerfile and nginx.conf: the services, their commands (those our tests run), health
checks and the seed's WebSocket proxy settings. No Docker engine runs here, so the files are read as data."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.processes import beat_command, daphne_command, web_command, worker_command, worker_health_command

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat")


def bare(command: list[str]) -> list[str]:
    """The image has the venv on PATH, so compose names programs where the tests use the venv's full path."""
    return [Path(command[0]).name, *command[1:]]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_defines_the_platforms_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "web", "worker", "beat", "nginx"}


def test_app_service_commands_are_the_ones_the_tests_run(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["web"]["command"] == bare(web_command(host="0.0.0.0", port=8000))
    assert services["worker"]["command"] == bare(worker_command())
    assert services["beat"]["command"] == bare(beat_command())


def test_worker_health_check_is_the_consuming_check_not_a_process_check(compose: dict[str, Any]) -> None:
    check = compose["services"]["worker"]["healthcheck"]["test"]
    assert check == ["CMD-SHELL", " ".join(bare(worker_health_command("worker@$$HOSTNAME")))]


def test_documented_split_workers_are_the_tested_commands() -> None:
    """docs/deployment.md's split deployment names worker_command's own queue subsets."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    for queues in (["realtime"], ["email", "periodic"]):
        command = bare(worker_command(queues=queues))
        assert f"command: {json.dumps(command)}" in text, command


def test_migrations_run_without_a_statement_timeout(compose: dict[str, Any]) -> None:
    assert compose["services"]["migrate"]["environment"]["DATABASE_STATEMENT_TIMEOUT_SECONDS"] == "0"


def test_beat_uses_the_database_scheduler_and_never_scales(compose: dict[str, Any]) -> None:
    beat = compose["services"]["beat"]
    assert "django_celery_beat.schedulers:DatabaseScheduler" in beat["command"]
    assert beat["deploy"]["replicas"] == 1


def test_documented_daphne_alternative_is_the_tested_command() -> None:
    text = (ROOT / "compose.yaml").read_text()
    alternative = re.search(r"# command: (\[\"daphne\".*\])", text)
    assert alternative is not None, "compose.yaml should show the daphne command next to web's"
    assert yaml.safe_load(alternative.group(1)) == bare(daphne_command(host="0.0.0.0", port=8000))
    assert " ".join(bare(daphne_command(host="0.0.0.0", port=8000))) in (ROOT / "docs" / "deployment.md").read_text()


def test_image_runs_the_tested_web_command(compose: dict[str, Any]) -> None:
    cmd = re.search(r"^CMD (\[.*\])$", (ROOT / "Dockerfile").read_text(), re.M)
    assert cmd is not None
    assert json.loads(cmd.group(1)) == bare(web_command(host="0.0.0.0", port=8000))


def test_servers_refuse_websocket_messages_over_the_apps_frame_limit(settings: Any) -> None:
    # uvicorn's default is 16 MiB and daphne's 1 MiB, read in whole (inflated, for uvicorn) before the app's
    # check: the servers' own limit is the app's.
    limit = str(settings.WS_MAX_FRAME_BYTES)
    uvicorn = web_command()
    assert uvicorn[uvicorn.index("--ws-max-size") + 1] == limit
    daphne = daphne_command()
    assert daphne[daphne.index("--websocket-max-frame-size") + 1] == limit
    # autobahn's message limit caps what daphne sends as well: it stays at daphne's default (1 MiB), explicitly.
    assert daphne[daphne.index("--websocket-max-message-size") + 1] == str(1024 * 1024)


def test_web_trusts_forwarded_headers_only_from_the_network_it_shares_with_nginx_alone(
        compose: dict[str, Any]) -> None:
    # uvicorn believes X-Forwarded-For from FORWARDED_ALLOW_IPS only; "*" would believe any peer. The edge network
    # holds nginx and web, nothing else, and nginx overwrites the header (tests/security/test_client_ip.py).
    services = compose["services"]
    web, nginx = services["web"], services["nginx"]
    (subnet,) = [entry["subnet"] for entry in compose["networks"]["edge"]["ipam"]["config"]]
    assert web["environment"]["FORWARDED_ALLOW_IPS"] == subnet
    assert ipaddress.ip_network(subnet).is_private
    assert nginx["networks"] == ["edge"] and "edge" in web["networks"]
    assert [name for name, service in services.items() if "edge" in service.get("networks", [])] == ["web", "nginx"]
    assert "ports" not in web


def test_web_liveness_check_is_livez_which_does_no_io(compose: dict[str, Any]) -> None:
    # /readyz (= /healthz) fails while Redis or the database blips; a liveness check on it would restart every
    # web process for what a restart cannot fix.
    test = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/livez" in test and "healthz" not in test and "readyz" not in test


def test_long_running_services_restart_and_have_health_checks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        if name != "beat":  # beat has no port and no control channel to probe
            assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name


def test_app_services_wait_for_healthy_stores_and_migrations(compose: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert compose["services"]["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]


def test_data_lives_in_named_volumes_and_config_in_env_files(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    for name in (*APP_SERVICES, "migrate"):
        assert services[name]["env_file"] == "deploy/.env", name
    # The stores have a file of their own: they never see the app's secrets.
    for name in ("postgres", "redis"):
        assert services[name]["env_file"] == "deploy/stores.env", name


def test_env_example_names_every_required_variable_and_holds_no_secret() -> None:
    values = dict(line.split("=", 1) for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL",
                 "HTTPS", "SECURE_PROXY_SSL_HEADER", "LOG_FORMAT"):
        assert name in values, name
    # The quick start opens on http://localhost; the commented TLS block names the origin to trust.
    assert (values["HTTPS"], values["SITE_URL"]) == ("false", "http://localhost")
    assert "# CSRF_TRUSTED_ORIGINS=https://" in (ROOT / "deploy" / "env.example").read_text()
    assert values["SECRET_KEY"] == "change-me"
    stores = dict(line.split("=", 1) for line in (ROOT / "deploy" / "stores.env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert "change-me" in stores["POSTGRES_PASSWORD"] and "change-me" in stores["REDIS_PASSWORD"]
    assert f":{stores['POSTGRES_PASSWORD']}@postgres:5432/{stores['POSTGRES_DB']}" in values["DATABASE_URL"]
    assert not {"POSTGRES_PASSWORD", "REDIS_PASSWORD"} & set(values), "the app's file holds no store's own setting"
    assert values["DEBUG"] == "false"
    assert {"deploy/.env", "deploy/stores.env"} <= set((ROOT / ".dockerignore").read_text().split())


def test_nginx_proxies_websockets_with_the_seeds_settings() -> None:
    locations = (ROOT / "deploy" / "app-locations.inc").read_text()
    ws = re.search(r"location /ws/ \{(.*?)\n\}", locations, re.S)
    assert ws is not None
    block = ws.group(1)
    assert "proxy_http_version 1.1;" in block
    assert "proxy_set_header Upgrade $http_upgrade;" in block
    assert 'proxy_set_header Connection "upgrade";' in block
    assert "proxy_set_header Host $host;" in block
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in block
    timeout = re.search(r"proxy_read_timeout (\d+)s;", block)
    assert timeout is not None and int(timeout.group(1)) >= 3600
    assert "$proxy_add_x_forwarded_for" not in locations, "a client's own X-Forwarded-For must never pass on"


def test_compose_mounts_the_nginx_config_it_includes(compose: dict[str, Any]) -> None:
    volumes = compose["services"]["nginx"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in volumes
    assert "./deploy/app-locations.inc:/etc/nginx/conf.d/app-locations.inc:ro" in volumes
    assert "include /etc/nginx/conf.d/app-locations.inc;" in (ROOT / "deploy" / "nginx.conf").read_text()


def test_image_is_slim_non_root_and_installs_the_pinned_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "pip install --require-hashes --only-binary :all: -r /tmp/requirements.txt" in dockerfile
    assert "COPY requirements/base.txt /tmp/requirements.txt" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0")
    # The lock (`make lock`): each requirement pinned exactly and followed by at least one hash.
    lock = (ROOT / "requirements" / "base.txt").read_text()
    requirements = re.findall(r"^(\S+) \\\n((?:    --hash=sha256:[0-9a-f]{64}(?: \\\n)?)+)", lock, re.M)
    assert {name.split("==")[0].lower() for name, _ in requirements} >= {"django", "channels", "celery", "asgiref"}
    for name, _ in requirements:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][\w.]*", name), f"unpinned requirement: {name}"
    listed = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(listed) == len(requirements), "every requirement in base.txt carries its hashes"


def test_docker_compose_config_accepts_the_file() -> None:
    """`docker compose config` (or the standalone docker-compose) validates the file without an engine."""
    client = None
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        client = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        client = ["docker-compose"]
    if client is None:
        pytest.fail("No compose client: install Debian's docker-compose (scripts/ensure-test-deps does); "
                    "it validates compose.yaml without a Docker engine.")
    created = []
    for example, env_file in (("env.example", ".env"), ("stores.env.example", "stores.env")):
        if not (ROOT / "deploy" / env_file).exists():
            shutil.copy(ROOT / "deploy" / example, ROOT / "deploy" / env_file)
            created.append(ROOT / "deploy" / env_file)
    try:
        result = subprocess.run([*client, "--file", str(ROOT / "compose.yaml"), "config", "--quiet"],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
    finally:
        for path in created:
            path.unlink()
    assert result.returncode == 0, result.stderr


def test_every_container_gains_no_privilege_and_drops_every_capability_it_does_not_need(
        compose: dict[str, Any]) -> None:
    needs = {"postgres": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
             "redis": {"CHOWN", "SETGID", "SETUID"},
             "nginx": {"CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"}}
    for name, service in compose["services"].items():
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name
        assert set(service.get("cap_add", [])) == needs.get(name, set()), name
    # The app's own containers write only to their tmpfs; the image's code belongs to root.
    for name in (*APP_SERVICES, "migrate", "nginx"):
        assert compose["services"][name]["read_only"] is True, name
        assert "/tmp" in compose["services"][name]["tmpfs"], name
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY \. /app$", dockerfile, re.M) and "--chown" not in dockerfile


def test_stores_sit_alone_on_an_internal_network_and_redis_needs_a_password_and_has_a_ceiling(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("postgres", "redis"):
        assert services[name]["networks"] == ["backend"], name
    assert "backend" not in services["nginx"]["networks"]
    # Only the worker talks to the outside (SMTP, webhooks).
    assert [name for name, service in services.items() if "egress" in service.get("networks", [])] == ["worker"]
    redis_command = " ".join(services["redis"]["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in redis_command and "--maxmemory " in redis_command
    assert "REDISCLI_AUTH" in " ".join(services["redis"]["healthcheck"]["test"])
    values = dict(line.split("=", 1) for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    stores = dict(line.split("=", 1) for line in (ROOT / "deploy" / "stores.env.example").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert values["REDIS_URL"] == f"redis://:{stores['REDIS_PASSWORD']}@redis:6379/0"
