"""The seed's NotificationConsumer: ?token=<jwt> auth, joins user_<id>, relays user_notification."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jwt
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.models import AnonymousUser


@dataclass(frozen=True)
class TokenUser:
    """Stand-in for the seed's DB user: only what the consumer reads."""

    id: int
    is_anonymous: bool = False


@database_sync_to_async
def get_user_from_token(token: str) -> TokenUser | AnonymousUser:
    # Seed code, except the user is taken from the token instead of User.objects.get().
    # Kept behind database_sync_to_async so the thread-pool hop per connect stays as in the seed.
    try:
        payload = jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])
        return TokenUser(id=int(payload["user_id"]))
    except Exception:  # noqa: BLE001 - as in the seed: any bad token is anonymous
        return AnonymousUser()


class NotificationConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        # Parse ?token=... from query string (verbatim from the seed's SecureChatConsumer)
        query_string = self.scope["query_string"].decode()
        params = dict(p.split("=") for p in query_string.split("&") if "=" in p)
        token = params.get("token", "")
        self.scope["user"] = await get_user_from_token(token)
        if self.scope["user"].is_anonymous:
            await self.close(code=4001)
            return
        self.room_group_name = f"user_{self.scope['user'].id}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        if hasattr(self, "room_group_name"):
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def user_notification(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(event["payload"]))
