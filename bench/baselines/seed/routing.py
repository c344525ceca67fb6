"""WebSocket URL routing of the seed baseline."""

from __future__ import annotations

from django.urls import URLPattern, re_path

from bench.baselines.seed import consumers

websocket_urlpatterns: list[URLPattern] = [
    re_path(r"ws/notifications/$", consumers.NotificationConsumer.as_asgi()),
]
