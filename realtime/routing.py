"""WebSocket URL routes: one consumer class per endpoint."""

from typing import Any

from django.urls import path, re_path

from realtime.consumers import ChatConsumer, NotificationConsumer, OrderConsumer


async def no_such_endpoint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A path no route matches: refused before the handshake, with HTTP 404 where the server lets the app answer
    one (ASGI's websocket.http.response extension: uvicorn), else a plain refusal (403: daphne). Never a 500."""
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        body = b'{"detail": "No such WebSocket endpoint."}'
        await send({"type": "websocket.http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close"})

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/chat/", ChatConsumer.as_asgi()),
    re_path(r"", no_such_endpoint),  # type: ignore[arg-type]  # channels routes ASGI apps, not Django views
]
