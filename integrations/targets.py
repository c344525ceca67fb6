"""The SSRF guard of outgoing webhooks: which URLs may be called, and the vetted addresses to connect to.

A URL must be https and every address its host resolves to must be public. The delivery then connects to one of
those vetted addresses itself (integrations/sending.py), so a DNS answer that changes between the check and the
connect (rebinding) cannot point it elsewhere. WEBHOOK_ALLOW_PRIVATE_ADDRESSES allows http and private targets,
for development and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Besides what ipaddress calls non-global: ranges Python 3.11 still calls global, and multicast.
NOT_PUBLIC = [ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "ff00::/8", "64:ff9b:1::/48", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10",
)]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeTarget(Exception):
    """A webhook URL that may not be called, and why."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    addresses: tuple[str, ...]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), which is where packets really go."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    if not address.is_global or address.is_multicast:
        return False
    return not any(address in network for network in NOT_PUBLIC if network.version == address.version)


def check_url(url: str) -> tuple[str, str, int, str]:
    """The URL's scheme, host, port and path, if its form may be called (no DNS yet); else UnsafeTarget."""
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeTarget("the URL must use https")
    if not parts.hostname:
        raise UnsafeTarget("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeTarget("the URL may not carry credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"the host {host!r} does not resolve: {exc}") from None
    # Drop an IPv6 scope (`fe80::1%eth0`): it is link-local, refused below anyway.
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


def vet(url: str) -> Target:
    """Check `url` and resolve its host: every address must be public (unless private targets are allowed).
    One private address among public ones refuses the whole URL, since the connect could pick any of them."""
    scheme, host, port, path = check_url(url)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeTarget(f"the host {host!r} has no address")
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        refused = [str(address) for address in addresses if not is_public(address)]
        if refused:
            raise UnsafeTarget(f"the host {host!r} resolves to a non-public address ({', '.join(refused)})")
    return Target(scheme, host, port, path, tuple(str(address) for address in addresses))
