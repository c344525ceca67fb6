"""`/livez`, `/readyz`, `/healthz` and `/metrics` answered ahead of the other middleware, for callers inside the
network.

Load balancers, container health checks and Prometheus call a web process by its address (`10.0.3.7:8000`,
`127.0.0.1:8000`) over plain HTTP, so host validation (ALLOWED_HOSTS) and the HTTPS redirect would refuse them.
Keep them all off the public edge: deploy/app-locations.inc answers each with 404.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from realtime.health import healthz, livez, readyz
from realtime.metrics import metrics_view

PROBES: dict[str, Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]] = {
    "/livez": livez, "/readyz": readyz, "/healthz": healthz, "/metrics": metrics_view,
}


class ProbeMiddleware:
    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        view = PROBES.get(request.path_info)
        if view is None or request.method not in ("GET", "HEAD"):
            return await self.get_response(request)
        response = view(request)
        if inspect.isawaitable(response):
            response = await response
        return response
