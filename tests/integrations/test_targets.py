"""The SSRF guard: https only, every resolved address public, the vetted address is the one connected to."""

from __future__ import annotations

from typing import Any

import pytest

from integrations import sending, targets
from tests.integrations.conftest import Receiver

NOT_PUBLIC = [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
    "224.0.0.1", "239.255.255.250", "255.255.255.255", "192.0.0.8", "198.18.0.1", "240.0.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses_are_refused(address: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(targets.UnsafeTarget, match="non-public"):
        targets.vet(f"https://{host}/hooks")


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    host = f"[{address}]" if ":" in address else address
    target = targets.vet(f"https://{host}:8443/in?x=1")
    assert target.addresses == (address,)
    assert (target.scheme, target.port, target.path) == ("https", 8443, "/in?x=1")


def test_a_name_resolving_to_loopback_is_refused(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(targets.UnsafeTarget, match="non-public"):
        targets.vet("https://localhost/hooks")


@pytest.mark.parametrize("url, reason", [
    ("http://93.184.215.14/hooks", "https"),
    ("ftp://93.184.215.14/hooks", "https"),
    ("https:///hooks", "no host"),
    ("https://user:pw@93.184.215.14/hooks", "credentials"),
    ("https://93.184.215.14:99999/", "valid URL"),
    ("https://does-not-exist.invalid/hooks", "does not resolve"),
])
def test_urls_that_cannot_be_called_say_why(url: str, reason: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(targets.UnsafeTarget, match=reason):
        targets.vet(url)


def test_allowing_private_addresses_allows_http_to_loopback(settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert targets.vet("http://127.0.0.1:8000/hooks").addresses == ("127.0.0.1",)


def test_the_post_goes_to_the_vetted_address_not_to_a_new_lookup(receiver: Receiver) -> None:
    # The host name resolves nowhere: only the vetted address can have carried the request (no second lookup
    # that a rebinding DNS answer could redirect), and the Host header still names the URL's host.
    target = targets.Target("http", "hooks.example.invalid", receiver.port, "/in", ("127.0.0.1",))
    response = sending.post(target, b"{}", {"webhook-id": "msg_1"}, timeout=5)
    assert response.status == 200
    assert receiver.received[0].headers["host"] == f"hooks.example.invalid:{receiver.port}"
    assert receiver.received[0].path == "/in"


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.answers = [(302, {"location": "http://169.254.169.254/latest/meta-data/"})]
    target = targets.Target("http", "127.0.0.1", receiver.port, "/in", ("127.0.0.1",))
    assert sending.post(target, b"{}", {}, timeout=5).status == 302
    assert len(receiver.received) == 1
