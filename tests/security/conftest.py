"""Security-suite helpers: the inactive persona, JSON calls to the API, and logins through the real endpoint."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD, make_user


@pytest.fixture
def inactive(db: None) -> Any:
    return make_user("inactive", is_active=False)


def post_json(client: Client, path: str, body: Any, **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def login(client: Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = post_json(client, "/api/auth/token/", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """These tests create many users and log in often; the hash's cost is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Real-process fixtures for the slow-client and log tests.
from tests.e2e.conftest import platform_env, start_process, start_server  # noqa: E402, F401


async def refused_with(comm: Any) -> dict[str, Any]:
    """Connect, read the close the server sends right after accepting, then disconnect as a real server would
    (an app left waiting on the channel layer slows the event loop's teardown)."""
    connected, _ = await comm.connect()
    assert connected
    message = await comm.receive_output(timeout=3)
    await comm.disconnect()
    assert message["type"] == "websocket.close", message
    return message
