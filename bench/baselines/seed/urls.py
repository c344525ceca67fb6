"""Empty HTTP URLconf for the seed baseline (it only serves WebSockets)."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
