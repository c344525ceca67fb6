"""Every close carries a distinct, stable reason beside its code, so a client can tell its causes apart (two limits
share 4008; three causes share 4001). docs/protocol.md lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts import tokens
from orders.models import Order
from realtime import consumers, limits
from tests.realtime.sockets import communicator

pytestmark = pytest.mark.django_db(transaction=True)


async def refusal(path: str, subprotocols: list[str] | None = None) -> tuple[int, str]:
    comm = communicator(path, subprotocols=subprotocols)
    assert (await comm.connect())[0]
    message = await comm.receive_output(timeout=3)
    await comm.disconnect(code=message["code"])
    return message["code"], message["reason"]


async def test_refusals_at_connect_say_why(alice: Any, bob: Any, alice_order: Order) -> None:
    bob_token = await database_sync_to_async(tokens.issue_access_token)(bob)
    assert await refusal("/ws/notifications/") == (4001, "not authenticated")
    assert await refusal(f"/ws/orders/{alice_order.pk}/", ["bearer", bob_token]) == (
        4003, "not allowed to see this order")
    assert await refusal("/ws/orders/999999/", ["bearer", bob_token]) == (4004, "no such order")


def test_each_reason_is_distinct_and_documented() -> None:
    reasons = [consumers.NOT_AUTHENTICATED, consumers.TOKEN_EXPIRED, consumers.TOKEN_REFUSED,
               consumers.CREDENTIALS_REVOKED, consumers.FORBIDDEN, consumers.ACCESS_CHANGED, consumers.NOT_FOUND,
               consumers.TOO_MANY_FRAMES,
               consumers.TOO_MANY_CHAT_MESSAGES, limits.TOO_MANY_CONNECTIONS, consumers.FRAME_TOO_LARGE,
               consumers.SERVER_UNAVAILABLE]
    assert len(set(reasons)) == len(reasons)
    protocol = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for reason in reasons:
        assert f"`{reason}`" in protocol, reason
