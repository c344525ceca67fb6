"""Production settings, each read by a fresh interpreter from an environment like deploy/env.example's."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example_env(**overrides: str) -> dict[str, str]:
    """deploy/env.example with a real-looking secret and this machine's services, plus `overrides`."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    env["SECRET_KEY"] = secrets.token_urlsafe(64)
    env.update(overrides)
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def settings_of(env: dict[str, str], *names: str) -> dict[str, object]:
    code = ("import json; from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}, default=repr))")
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_with_the_example_production_environment() -> None:
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
                            env=example_env(), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key_and_says_why() -> None:
    env = example_env()
    del env["SECRET_KEY"]
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_defaults_debug_off_and_takes_hosts_and_origins_from_env() -> None:
    env = example_env(ALLOWED_HOSTS="shop.example.com,.example.net",
                      CSRF_TRUSTED_ORIGINS="https://shop.example.com")
    del env["DEBUG"]
    values = settings_of(env, "DEBUG", "EMBEDDED", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS")
    assert values == {"DEBUG": False, "EMBEDDED": False, "ALLOWED_HOSTS": ["shop.example.com", ".example.net"],
                      "CSRF_TRUSTED_ORIGINS": ["https://shop.example.com"]}


def test_behind_tls_cookies_are_secure_hsts_is_sent_and_the_proxy_header_is_trusted() -> None:
    values = settings_of(example_env(), "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
                         "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER")
    assert values == {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True, "SECURE_SSL_REDIRECT": True,
                      "SECURE_HSTS_SECONDS": 31536000, "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]}
    plain = settings_of(example_env(HTTPS="false", SECURE_PROXY_SSL_HEADER="", SECURE_HSTS_SECONDS=""),
                        "SESSION_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
                        "SECURE_PROXY_SSL_HEADER")
    assert plain == {"SESSION_COOKIE_SECURE": False, "SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0,
                     "SECURE_PROXY_SSL_HEADER": None}


REQUEST_PROBE = """
import django, json
django.setup()
from django.test import Client
client = Client()
out = {}
response = client.get("/api/orders/", HTTP_HOST="orders.example.com")
out["plain"] = [response.status_code, response.get("Location")]
response = client.get("/api/orders/", HTTP_HOST="orders.example.com", HTTP_X_FORWARDED_PROTO="https")
out["tls"] = [response.status_code, response.get("Strict-Transport-Security")]
for path in ("/healthz", "/metrics"):
    out[path] = client.get(path, HTTP_HOST="10.0.3.7:8000").status_code
print(json.dumps(out))
"""


def test_plain_http_is_redirected_but_probes_by_address_are_answered(transactional_db: None) -> None:
    from django.db import connection

    db = connection.settings_dict
    env = example_env(DATABASE_URL=f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
                                   f"{db['PORT'] or 5432}/{db['NAME']}",
                      REDIS_URL=os.environ["REDIS_URL"])
    result = run_python(REQUEST_PROBE, env)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["plain"] == [301, "https://orders.example.com/api/orders/"]
    assert out["tls"][0] == 401
    assert out["tls"][1] == "max-age=31536000; includeSubDomains; preload"
    assert out["/healthz"] == 200, "health checks call by address over plain HTTP"
    assert out["/metrics"] == 200


def test_sentinel_configuration_builds_the_channel_layer_and_broker_through_the_sentinels() -> None:
    env = example_env(REDIS_SENTINELS="sentinel-1:26379,sentinel-2:26380", REDIS_SENTINEL_MASTER="orders-master",
                      REDIS_PASSWORD="master-pw", REDIS_SENTINEL_PASSWORD="sentinel-pw")
    del env["REDIS_URL"]
    values = settings_of(env, "EMBEDDED", "CHANNEL_LAYERS", "CELERY_BROKER_URL", "CELERY_BROKER_TRANSPORT_OPTIONS",
                         "CELERY_TASK_ALWAYS_EAGER")
    assert values["EMBEDDED"] is False
    assert values["CELERY_TASK_ALWAYS_EAGER"] is False
    layer = values["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    [host] = layer["CONFIG"]["hosts"]
    assert {name: host[name] for name in ("sentinels", "master_name", "db", "password", "sentinel_kwargs")} == {
        "sentinels": [["sentinel-1", 26379], ["sentinel-2", 26380]], "master_name": "orders-master", "db": 0,
        "password": "master-pw", "sentinel_kwargs": {"password": "sentinel-pw"},
    }
    assert "address" not in host, "with sentinels the layer must not pin one Redis address"
    assert values["CELERY_BROKER_URL"] == (
        "sentinel://:master-pw@sentinel-1:26379/0;sentinel://:master-pw@sentinel-2:26380/0")
    options = values["CELERY_BROKER_TRANSPORT_OPTIONS"]
    assert (options["master_name"], options["sentinel_kwargs"]) == ("orders-master", {"password": "sentinel-pw"})


def test_a_malformed_sentinel_list_is_refused_at_start_up() -> None:
    result = run_python("import django; django.setup()", example_env(REDIS_SENTINELS="sentinel-1"))
    assert result.returncode != 0
    assert "REDIS_SENTINELS must be a comma-separated list of host:port, got 'sentinel-1'" in result.stderr
