"""Web origins (scheme, host and port) in the one spelling the WebSocket allow-list compares."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case with the default port left out, or None if `value` is not an origin.

    Browsers send an Origin header in exactly this form; the settings' list is written into it too, so
    `https://Orders.example.com:443` and `https://orders.example.com` are one origin, and `http://…`, another
    port or another host are others. A path, query, user or the opaque origin `null` is not an origin.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in parts.netloc:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def origin_of_url(url: str) -> str | None:
    """The origin of a page URL such as SITE_URL (`https://shop.example.com/orders` -> `https://shop.example.com`)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return canonical_origin(f"{parts.scheme}://{parts.netloc}")
