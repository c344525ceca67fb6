"""Production settings, each read by a fresh interpreter from an environment like deploy/env.example's."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def example_env(*, tls: bool = True, **overrides: str) -> dict[str, str]:
    """deploy/env.example with a real-looking secret, plus `overrides`; with `tls`, its TLS block uncommented
    (what an operator serving a real host does), else the http://localhost quick start as shipped."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "DJANGO_SETTINGS_MODULE": "config.settings"}
    in_tls_block = False
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        in_tls_block = in_tls_block or line.startswith("# --- TLS")
        if in_tls_block and not line:
            in_tls_block = False
        if in_tls_block and tls and re.match(r"^# [A-Z_]+=", line):
            line = line[2:]
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


def test_the_quick_start_environment_starts_on_plain_http_for_localhost() -> None:
    values = settings_of(example_env(tls=False), "EMBEDDED", "HTTPS", "SECURE_SSL_REDIRECT", "ALLOWED_HOSTS")
    assert values == {"EMBEDDED": False, "HTTPS": False, "SECURE_SSL_REDIRECT": False,
                      "ALLOWED_HOSTS": ["localhost", "127.0.0.1"]}


def start_error(env: dict[str, str]) -> str:
    """What a production start with `env` refuses with (it must refuse)."""
    result = run_python("import django; django.setup()", env)
    assert result.returncode != 0, f"started with {env}"
    return result.stderr.strip().splitlines()[-1]


def test_half_a_production_configuration_refuses_to_start_naming_what_is_missing() -> None:
    env = example_env()
    del env["REDIS_URL"]
    assert "REDIS_URL (or REDIS_SENTINELS) is not set" in start_error(env)
    env = example_env()
    del env["DATABASE_URL"]
    assert "DATABASE_URL is not set" in start_error(env)


UNSAFE = [
    ({"DEBUG": "true"}, "DEBUG=true"),
    ({"ALLOWED_HOSTS": "*"}, "ALLOWED_HOSTS=*"),
    ({"HTTPS": "false"}, "HTTPS=false for a site reachable beyond localhost"),
    ({"SECRET_KEY": "change-me"}, "SECRET_KEY must be at least 50 random characters"),
    ({"SECRET_KEY": "insecure-" + "k" * 60}, "SECRET_KEY must be at least 50 random characters"),
    ({"SECRET_KEY": "ab" * 40}, "SECRET_KEY must be at least 50 random characters"),
    ({"JWT_SIGNING_KEY": "short-signing-key"}, "needs at least 32 bytes"),
    ({"JWT_PREVIOUS_SIGNING_KEYS": "k" * 40 + ",short"}, "Each previous HS256 key"),
    ({"STAFF_REQUIRE_2FA": "false"}, "STAFF_REQUIRE_2FA=false lets staff"),
]


def test_production_refuses_each_unsafe_setting_and_says_which() -> None:
    for overrides, reason in UNSAFE:
        assert reason in start_error(example_env(**overrides)), overrides


def test_staff_need_a_second_factor_in_production_by_default_and_not_in_the_embedded_demo(tmp_path: Path) -> None:
    assert settings_of(example_env(), "STAFF_REQUIRE_2FA") == {"STAFF_REQUIRE_2FA": True}
    assert settings_of(embedded_env(tmp_path / "db.sqlite3"), "STAFF_REQUIRE_2FA") == {"STAFF_REQUIRE_2FA": False}


def test_the_lab_override_starts_with_unsafe_settings_and_warns_loudly() -> None:
    result = run_python("import django; django.setup()",
                        example_env(DEBUG="true", HTTPS="false", ALLOW_UNSAFE_SETTINGS="true"))
    assert result.returncode == 0, result.stderr
    assert "UNSAFE SETTINGS (ALLOW_UNSAFE_SETTINGS=true)" in result.stderr and "DEBUG=true" in result.stderr


def test_the_debug_page_never_shows_connection_urls_or_their_passwords() -> None:
    code = ("import django, json; django.setup(); "
            "from django.views.debug import get_default_exception_reporter_filter as reporter_filter; "
            "print(json.dumps(reporter_filter().get_safe_settings(), default=repr))")
    env = example_env(DEBUG="true", ALLOW_UNSAFE_SETTINGS="true",
                      DATABASE_URL="postgres://orders:s3cret-db-pw@postgres:5432/orders",
                      REDIS_URL="redis://:s3cret-redis-pw@redis:6379/0")
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    shown = result.stdout.strip().splitlines()[-1]
    assert "s3cret-db-pw" not in shown and "s3cret-redis-pw" not in shown
    assert json.loads(shown)["DATABASE_URL"] == "********************"


def test_production_without_smtp_sends_no_mail_and_logs_no_customer_data() -> None:
    code = ("import django; django.setup(); from django.core.mail import send_mail; "
            "print(send_mail('Order ORD-1', 'Hello Alice Customer, 1 Demo Street', None, ['alice@example.com']))")
    result = run_python(code, example_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "0"
    assert "EMAIL_HOST is not set" in result.stderr
    assert "alice" not in (result.stdout + result.stderr).lower() and "Demo Street" not in result.stderr


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
    plain = settings_of(example_env(tls=False, SECURE_PROXY_SSL_HEADER="", SECURE_HSTS_SECONDS=""),
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


def embedded_env(sqlite_path: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "config.settings", "QUIET_EMBEDDED_WARNING": "1",
            "SQLITE_PATH": str(sqlite_path)}


def test_the_embedded_key_is_random_kept_across_starts_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = settings_of(embedded_env(tmp_path / "a" / "db.sqlite3"), "EMBEDDED", "SECRET_KEY")
    again = settings_of(embedded_env(tmp_path / "a" / "db.sqlite3"), "SECRET_KEY")
    (tmp_path / "b").mkdir()
    elsewhere = settings_of(embedded_env(tmp_path / "b" / "db.sqlite3"), "SECRET_KEY")
    assert first["EMBEDDED"] is True
    assert first["SECRET_KEY"] == again["SECRET_KEY"] != elsewhere["SECRET_KEY"]
    assert len(str(first["SECRET_KEY"])) >= 50
    key_file = tmp_path / "a" / ".embedded-secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600


FORGE = """
import django, jwt, time, uuid, hashlib, json
django.setup()
from accounts import tokens
secret = "embedded-insecure-" + {root!r}
now = int(time.time())
claims = {{"sub": "1", "type": "access", "iat": now, "nbf": now, "exp": now + 900, "iss": "order-tracking",
          "aud": "order-tracking", "jti": uuid.uuid4().hex}}
kid = hashlib.sha256(b"HS256:" + secret.encode()).hexdigest()[:16]
try:
    tokens.decode_token(jwt.encode(claims, secret, "HS256", headers={{"kid": kid}}), expected_type="access")
    print("accepted")
except tokens.InvalidToken as exc:
    print("refused")
"""


def test_a_token_minted_from_the_install_path_is_refused_in_the_embedded_mode(tmp_path: Path) -> None:
    result = run_python(FORGE.format(root=str(ROOT)), embedded_env(tmp_path / "db.sqlite3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "refused"


def test_channel_layer_urls_shard_the_layer_over_those_servers_and_nothing_else() -> None:
    env = example_env(CHANNEL_LAYER_URLS="redis://10.0.0.5:6379/0,redis://10.0.0.6:6379/0")
    values = settings_of(env, "CHANNEL_LAYERS", "CELERY_BROKER_URL", "REDIS_URL")
    hosts = values["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert [host["address"] for host in hosts] == ["redis://10.0.0.5:6379/0", "redis://10.0.0.6:6379/0"]
    assert all(host["socket_timeout"] == 30 for host in hosts), "each shard keeps the layer's connection options"
    assert values["CELERY_BROKER_URL"] == values["REDIS_URL"], "the broker stays on REDIS_URL"
    unsharded = settings_of(example_env(), "CHANNEL_LAYERS", "REDIS_URL")
    [host] = unsharded["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"]
    assert host["address"] == unsharded["REDIS_URL"]
