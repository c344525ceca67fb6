"""WebSocket URL routes: one consumer class per endpoint."""

from django.urls import path

from realtime.consumers import ChatConsumer, NotificationConsumer, OrderConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/", OrderConsumer.as_asgi()),
    path("ws/orders/<int:order_id>/chat/", ChatConsumer.as_asgi()),
]
