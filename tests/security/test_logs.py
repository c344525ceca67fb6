"""Tokens never reach our logs: records from any logger are redacted, and the real servers (uvicorn logs
WebSocket paths with their query string; daphne's own access log, which bypasses logging, is off) never print a
`?token=` value."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest
from websockets.asyncio.client import connect

from accounts import tokens

TOKEN_LIKE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIiwidHlwZSI6ImFjY2VzcyJ9.c2lnbmF0dXJlLXNlY3JldA"


def test_a_token_in_a_log_message_its_arguments_or_extra_fields_is_redacted(caplog: Any) -> None:
    logger = logging.getLogger("anything.at.all")
    with caplog.at_level(logging.INFO):
        logger.info("GET /ws/orders/1/?token=%s&after_seq=3", "opaque-value-123")
        logger.warning("bearer %s refused", TOKEN_LIKE)
        logger.info("request", extra={"path": f"/ws/notifications/?access_token={TOKEN_LIKE}"})
    text = "\n".join(record.getMessage() + " " + str(getattr(record, "path", "")) for record in caplog.records)
    assert "opaque-value-123" not in text and TOKEN_LIKE not in text
    assert "?token=[redacted]&after_seq=3" in text and "bearer [redacted] refused" in text
    assert "access_token=[redacted]" in text


LOGGED_REQUEST = """
import django
django.setup()
from django.test import Client
Client().get("/api/orders/?token={token}", HTTP_HOST="localhost")
try:
    raise ValueError("refresh={token} failed")
except ValueError:
    import logging
    logging.getLogger("anything").exception("with a traceback")
"""


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_tokens_in_a_requests_url_or_a_traceback_never_reach_the_formatted_line(log_format: str) -> None:
    env = {**os.environ, "LOG_FORMAT": log_format, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run([sys.executable, "-c", LOGGED_REQUEST.format(token=TOKEN_LIKE)], env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    assert "Unauthorized: /api/orders/" in result.stderr and "with a traceback" in result.stderr
    assert TOKEN_LIKE not in result.stderr and TOKEN_LIKE.split(".")[1] not in result.stderr
    assert "[redacted]" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("server_kind", ["uvicorn", "daphne"])
async def test_real_servers_never_log_a_query_token(alice: Any, start_server: Any, server_kind: str) -> None:
    server = await asyncio.to_thread(start_server, server=server_kind,
                                     env={"WS_ALLOW_QUERY_TOKEN": "true", "LOG_LEVEL": "DEBUG"})
    token = await asyncio.to_thread(tokens.issue_access_token, alice)
    async with connect(f"{server.ws}/ws/notifications/?token={token}&after_seq=0", origin=server.http) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=5)) == {"type": "pong"}
    # A refused token is logged (why it was refused), never the token.
    async with connect(f"{server.ws}/ws/notifications/?token={token[:-4]}AAAA", origin=server.http) as ws:
        with pytest.raises(Exception, match="4001"):
            await asyncio.wait_for(ws.recv(), timeout=5)
    await asyncio.sleep(0.5)
    server.stop()
    log = server.log
    # daphne's access log is off (worker/processes.py): its DEBUG lines about the socket are what it logs then.
    logged_socket = "/ws/notifications/" if server_kind == "uvicorn" else "daphne.ws_protocol WebSocket"
    assert logged_socket in log, "the server logged nothing about the socket; the check would be empty"
    signature = token.rsplit(".", 1)[1]
    assert token not in log and signature not in log and token[:-4] not in log
    if server_kind == "uvicorn":
        assert "?token=[redacted]" in log
