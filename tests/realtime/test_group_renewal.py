"""Open sockets stay in their channel-layer groups past `group_expiry` (channels_redis drops a member that long after
its group_add): a staff board or customer page open for more than a day keeps receiving pushes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers

from orders import services
from orders.models import Order
from tests.realtime.sockets import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]

GROUP_EXPIRY = 2


@pytest.fixture
def short_group_expiry(settings: Any) -> None:
    layers = settings.CHANNEL_LAYERS
    config = {**layers["default"]["CONFIG"], "group_expiry": GROUP_EXPIRY}
    settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": config}}
    channel_layers.backends = {}
    # Only the renewal may keep these sockets receiving: no position check steps in during the test.
    settings.WS_POSITION_CHECK_SECONDS = 3600


@pytest.mark.usefixtures("short_group_expiry")
async def test_sockets_open_longer_than_group_expiry_still_receive_pushes(
    alice: Any, staff: Any, alice_order: Order
) -> None:
    sockets = [
        await Socket.open(f"/ws/orders/{alice_order.pk}/", alice),
        await Socket.open("/ws/notifications/", alice),
        await Socket.open("/ws/notifications/", staff),
    ]
    # The subject is elapsed time: the layer drops members whose group_add is older than group_expiry.
    await asyncio.sleep(GROUP_EXPIRY * 2 + 1)
    await database_sync_to_async(services.change_status)(order=alice_order, to="confirmed", actor=staff)
    for socket in sockets:
        frame = await socket.next("order.status", timeout=10)
        assert (frame["order_id"], frame["seq"]) == (alice_order.pk, 2)
    for socket in sockets:
        await socket.close()
