"""WebSocket URL routes: one consumer class per endpoint (an order's socket opened with a guest tracking token
gets the tracking one)."""

from typing import Any

from django.urls import path, re_path

from realtime.consumers import ChatConsumer, NotificationConsumer, OrderConsumer, TrackingConsumer


def by_credentials(member: Any, guest: Any) -> Any:
    """The member's consumer, or the guest's when realtime.auth found a tracking token on the socket."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await (guest if "tracking" in scope else member)(scope, receive, send)

    return app


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
    path("ws/orders/<int:order_id>/", by_credentials(OrderConsumer.as_asgi(), TrackingConsumer.as_asgi())),
    path("ws/orders/<int:order_id>/chat/", ChatConsumer.as_asgi()),
    re_path(r"", no_such_endpoint),  # type: ignore[arg-type]  # channels routes ASGI apps, not Django views
]
