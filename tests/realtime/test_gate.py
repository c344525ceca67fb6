"""The handshake gate's parts in process: the per-address and per-process token buckets on a given clock, the
bounded address map, the one spelling of an origin, and sockets that offer no credentials."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from config.origins import canonical_origin
from realtime.gate import MAX_TRACKED_ADDRESSES, HandshakeLimiter, client_address
from tests.realtime.sockets import close_code, communicator

ADDRESS, OTHER = "192.0.2.1", "198.51.100.1"


@pytest.fixture
def limits(settings: Any) -> Any:
    settings.WS_HANDSHAKES_PER_SECOND_PER_IP, settings.WS_HANDSHAKE_BURST_PER_IP = 10, 5
    settings.WS_HANDSHAKES_PER_SECOND, settings.WS_HANDSHAKE_BURST = 100, 1_000
    return settings


def test_an_address_gets_its_burst_then_its_rate_and_others_keep_theirs(limits: Any) -> None:
    limiter = HandshakeLimiter()
    assert [limiter.refusal(ADDRESS, now=100.0) for _ in range(6)] == [None] * 5 + ["rate_per_ip"]
    assert limiter.refusal(OTHER, now=100.0) is None
    assert [limiter.refusal(ADDRESS, now=100.25) for _ in range(3)] == [None, None, "rate_per_ip"], "10 a second"
    assert [limiter.refusal(ADDRESS, now=200.0) for _ in range(6)] == [None] * 5 + ["rate_per_ip"], "refilled"


def test_all_addresses_together_are_held_to_the_process_total(limits: Any) -> None:
    limits.WS_HANDSHAKES_PER_SECOND, limits.WS_HANDSHAKE_BURST = 1, 3
    limiter = HandshakeLimiter()
    assert [limiter.refusal(f"192.0.2.{host}", now=0.0) for host in range(4)] == [None] * 3 + ["rate_total"]
    assert limiter.refusal("192.0.2.9", now=1.0) is None


def test_the_address_map_stays_bounded_under_a_flood_from_ever_new_addresses(limits: Any) -> None:
    limits.WS_HANDSHAKE_BURST = 10**9
    limiter = HandshakeLimiter()
    for number in range(3 * MAX_TRACKED_ADDRESSES):
        limiter.refusal(str(ipaddress.IPv6Address(2**127 + number)), now=number / 10**6)
        assert len(limiter.by_address) <= MAX_TRACKED_ADDRESSES


@pytest.mark.parametrize(("client", "key"), [
    (("192.0.2.1", 5000), "192.0.2.1"),
    (("2001:DB8::0:1", 5000), "2001:db8::1"),
    (("not-an-address", 0), "invalid"),
    (("' OR 1=1 --", 0), "invalid"),
    (None, "unknown"),
])
def test_the_client_key_is_a_normalised_address_or_one_shared_bucket(client: Any, key: str) -> None:
    assert client_address({"client": client}) == key


@pytest.mark.parametrize(("value", "origin"), [
    ("https://Orders.Example.com", "https://orders.example.com"),
    ("https://orders.example.com:443", "https://orders.example.com"),
    ("http://orders.example.com:80/", "http://orders.example.com"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("null", None),
    ("orders.example.com", None),
    ("https://orders.example.com/path", None),
    ("https://user@orders.example.com", None),
    ("https://*.example.com", None),
    ("ws://orders.example.com", None),
    ("http://orders.example.com:notaport", None),
])
def test_an_origin_has_one_spelling(value: str, origin: str | None) -> None:
    assert canonical_origin(value) == origin


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cookie", [None, b"sessionid=short", b"sessionid=" + b"X" * 32, b"other=abc"])
async def test_a_socket_offering_no_credentials_is_closed_with_4001(cookie: bytes | None) -> None:
    headers = [(b"cookie", cookie)] if cookie else []
    assert await close_code(communicator("/ws/notifications/", headers=headers)) == 4001
