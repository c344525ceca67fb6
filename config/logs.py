"""Structured logs: a JSON formatter and the request/connection id every log line of a request carries.

`RequestContextMiddleware` wraps the whole ASGI application, so an HTTP request and a WebSocket connection
each get an id (the proxy's X-Request-ID when it sent one) for every line logged while serving them,
including lines logged in threads of sync_to_async, which copies the context.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from config.redaction import redact

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("connection_id", default=None)

# A proxy-supplied id is logged verbatim, so only accept something short and plain.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RequestContextFilter(logging.Filter):
    """Adds `request_id` and `connection_id` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.connection_id = connection_id.get()
        return True


class DropSocketLifecycle(logging.Filter):
    """Drops the web server's "connection open" / "connection closed" line of every WebSocket (the websockets
    library logs them at INFO on uvicorn.error): without the path, user or close code they say nothing the
    metrics do not, 10,000 sockets reconnecting after a deploy wrote 10,000 of them, and formatting, redacting
    and writing them cost CPU on every handshake (docs/performance.md, step 21). Startup and error lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in ("connection open", "connection closed")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, `extra` fields and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "connection_id"):
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in entry and name not in ("request_id", "connection_id"):
                entry[name] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Redacted once more as a whole: fields logged by repr() (a request's URL) and tracebacks carry tokens too.
        return redact(json.dumps(entry, ensure_ascii=False))


class PlainFormatter(logging.Formatter):
    """The plain one-line format, redacted as a whole line (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestContextMiddleware:
    """ASGI middleware: sets the request id (HTTP) or connection id (WebSocket) and echoes X-Request-ID."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        ident = incoming if incoming and _SAFE_ID.match(incoming) else uuid.uuid4().hex
        if scope["type"] == "websocket":
            token = connection_id.set(ident)
            try:
                await self.app(scope, receive, send)
            finally:
                connection_id.reset(token)
            return

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", ident.encode())]}
            await send(message)

        token = request_id.set(ident)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
