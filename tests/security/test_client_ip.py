"""The client address is the one the edge saw: a forged X-Forwarded-For, through the real deploy/nginx.conf in
front of a real uvicorn or daphne, changes nothing, and a server reached directly buckets garbage as one key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.processes import Nginx, Process, Server

pytestmark = pytest.mark.e2e

LIMIT = 5  # LOGIN_FAILURES_PER_IP for these servers; nginx's burst for login URLs (20) stays out of the way


def bad_refresh(base: str, forwarded_for: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    request = urllib.request.Request(f"{base}/api/auth/refresh/", data=json.dumps({"refresh": "not-a-token"}).encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def throttled_by_the_app(answer: tuple[int, dict[str, str], bytes]) -> bool:
    """The app's 429 (JSON, Retry-After), not nginx's own."""
    status, headers, body = answer
    return status == 429 and "retry-after" in headers and "detail" in json.loads(body)


@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
def test_a_fresh_forged_x_forwarded_for_on_every_request_still_hits_the_per_ip_limit(
    server_kind: str, start_server: Callable[..., Server], start_process: Callable[..., Process], tmp_path: Path
) -> None:
    # uvicorn believes X-Forwarded-For from nginx's address only (FORWARDED_ALLOW_IPS' default, 127.0.0.1, is
    # nginx's address here); daphne believes it from anyone, so only nginx's overwrite protects it.
    server = start_server(server=server_kind, env={"LOGIN_FAILURES_PER_IP": str(LIMIT)})
    edge = start_process(Nginx(server.port, tmp_path)).wait_ready()
    answers = [bad_refresh(edge.http, f"198.51.100.{attempt}") for attempt in range(LIMIT)]
    assert [status for status, _, _ in answers] == [401] * LIMIT
    # Before the fix, nginx appended the real address to the forged one and the servers took the forged one:
    # 100 of 100 such refreshes got past the limit.
    assert throttled_by_the_app(bad_refresh(edge.http, "198.51.100.250"))
    assert throttled_by_the_app(bad_refresh(edge.http, "203.0.113.7, 198.51.100.251"))
    assert throttled_by_the_app(bad_refresh(edge.http, None)), "forged or not, one client is one bucket"


def test_a_server_reached_directly_counts_every_non_address_as_one_client(start_server: Callable[..., Server]) -> None:
    # The misconfiguration compose used to ship: uvicorn believing any peer's X-Forwarded-For, no proxy in front.
    # Attacker-chosen strings then become the client "address"; they must not each get a bucket of their own.
    server = start_server(env={"LOGIN_FAILURES_PER_IP": str(LIMIT), "FORWARDED_ALLOW_IPS": "*"})
    answers = [bad_refresh(server.http, f"not-an-address-{attempt}") for attempt in range(LIMIT)]
    assert [status for status, _, _ in answers] == [401] * LIMIT
    assert throttled_by_the_app(bad_refresh(server.http, "still-not-an-address"))
    assert throttled_by_the_app(bad_refresh(server.http, "' OR 1=1 --"))
