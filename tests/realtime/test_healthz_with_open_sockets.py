"""/healthz's channel-layer round trip must pass while sockets are open and idle (a restarted server's normal state)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts import tokens
from realtime import health
from tests.realtime.sockets import communicator

pytestmark = pytest.mark.django_db(transaction=True)


async def test_channel_layer_check_passes_while_an_idle_socket_is_receiving(alice: Any) -> None:
    comm = communicator("/ws/notifications/",
                        subprotocols=["bearer", await database_sync_to_async(tokens.issue_access_token)(alice)])
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    # The socket's consumer now waits in the layer's receive; the check must not starve behind it.
    await health.check_channel_layer()
    await comm.disconnect()
