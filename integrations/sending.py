"""One signed webhook POST to a vetted target (integrations/targets.py), per the Standard Webhooks spec.

The signature is `v1,` + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")), the key being the
base64 after `whsec_`. The connection goes to a vetted IP address, with TLS checked against the URL's host name;
redirects are answers like any other (a 3xx is not a success and is not followed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from integrations.targets import Target

USER_AGENT = "order-tracking-webhooks/1"


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = b".".join([webhook_id.encode(), str(timestamp).encode(), body])
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str, webhook_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, webhook_id, timestamp, body),
    }


@dataclass(frozen=True)
class Response:
    status: int
    duration_ms: int


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address`, whatever `host` resolves to now."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to `address` and checks the certificate against `host` (SNI too)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """POST `body` to the target's first vetted address that accepts a connection; the answer's status, or
    OSError / http.client.HTTPException (timeouts included) for the caller to log and retry."""
    started = time.monotonic()
    last_error: OSError | None = None
    for address in target.addresses:
        if target.scheme == "https":
            connection: http.client.HTTPConnection = PinnedHTTPSConnection(
                target.host, target.port, address=address, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            connection = PinnedHTTPConnection(target.host, target.port, address=address, timeout=timeout)
        try:
            try:
                connection.connect()
            except OSError as exc:
                last_error = exc
                continue
            connection.request("POST", target.path, body=body, headers={
                **headers,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            })
            response = connection.getresponse()
            response.read(64 * 1024)  # a bounded read, so the connection closes cleanly
            return Response(response.status, round((time.monotonic() - started) * 1000))
        finally:
            connection.close()
    assert last_error is not None
    raise last_error
