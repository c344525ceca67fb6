"""JSON log lines and the request/connection ids that RequestContextMiddleware gives every line of a request."""

from __future__ import annotations

import json
import logging
from typing import Any

from config.logs import JsonFormatter, RequestContextFilter, RequestContextMiddleware


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []
        self.addFilter(RequestContextFilter())
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def run(scope: dict[str, Any], handler: Collect) -> list[dict[str, Any]]:
    """Call a tiny app that logs one line, wrapped in the middleware; return what the app sent."""
    logger = logging.getLogger("tests.deploy.app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    sent: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        logger.info("serving %s", scope["path"], extra={"order_id": 7})
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await RequestContextMiddleware(app)(scope, None, send)
    finally:
        logger.removeHandler(handler)
    return sent


async def test_http_lines_carry_the_proxys_request_id_which_the_response_echoes() -> None:
    handler = Collect()
    sent = await run({"type": "http", "path": "/api/orders/", "headers": [(b"x-request-id", b"abc-123")]}, handler)
    [line] = handler.lines
    assert line["request_id"] == "abc-123"
    assert (line["level"], line["logger"], line["message"], line["order_id"]) == (
        "INFO", "tests.deploy.app", "serving /api/orders/", 7)
    assert (b"x-request-id", b"abc-123") in sent[0]["headers"]


async def test_a_malformed_proxy_id_is_replaced_not_logged() -> None:
    handler = Collect()
    await run({"type": "http", "path": "/", "headers": [(b"x-request-id", b"evil\n{\"level\":\"ERROR\"}")]}, handler)
    assert len(handler.lines[0]["request_id"]) == 32


async def test_websocket_lines_carry_a_connection_id_and_ids_do_not_leak_past_the_request() -> None:
    handler = Collect()
    await run({"type": "websocket", "path": "/ws/notifications/", "headers": []}, handler)
    [line] = handler.lines
    assert len(line["connection_id"]) == 32 and "request_id" not in line
    logging.getLogger("tests.deploy.app").addHandler(handler)
    try:
        logging.getLogger("tests.deploy.app").info("after the request")
    finally:
        logging.getLogger("tests.deploy.app").removeHandler(handler)
    assert "connection_id" not in handler.lines[-1] and "request_id" not in handler.lines[-1]


def test_exceptions_are_one_json_line_with_the_traceback() -> None:
    handler = Collect()
    logger = logging.getLogger("tests.deploy.exc")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert handler.lines[0]["level"] == "ERROR"
    assert "ValueError: boom" in handler.lines[0]["exception"]
