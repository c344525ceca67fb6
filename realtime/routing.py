"""WebSocket URL routes."""

from django.urls import path

from realtime.consumers import ChatConsumer, NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", NotificationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/chat/", ChatConsumer.as_asgi()),
]
