"""Prometheus metrics of the web processes: what is counted, the /metrics view, the registry both web and worker
processes report through (the worker's own metrics and exporter: worker/metrics.py).

Every process keeps its own counters. With PROMETHEUS_MULTIPROC_DIR set (the image sets it) the processes of
one container or host share a directory of files that prometheus-client sums on scrape: uvicorn's --workers
and celery's prefork children then report as one. Prometheus scrapes each web process at /metrics and each
celery worker at the small HTTP exporter started on CELERY_METRICS_PORT (docs/operations.md, "Metrics").
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

WS_CONNECTIONS = Gauge(
    "orders_ws_connections", "Open (authenticated) WebSocket connections.", ["endpoint"],
    # Summed over live processes only: a crashed process's sockets are gone with it.
    multiprocess_mode="livesum",
)
WS_FRAMES_SENT = Counter("orders_ws_frames_sent_total", "Frames pushed to WebSocket clients.", ["endpoint"])
EVENTS_PUBLISHED = Counter(
    "orders_events_published_total", "Order status events sent to the channel layer (re-sends included)."
)
EVENT_DELIVERY_SECONDS = Histogram(
    "orders_event_delivery_seconds",
    "From the event's commit (OrderEvent.created_at) to its live order.status frame leaving a web process.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
EVENT_SEEN_SECONDS = Histogram(
    "orders_event_seen_seconds",
    "From the event's commit (OrderEvent.created_at) to the customer's first `seen` receipt of it: the latency as "
    "customers experience it, a page that was away included.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 21600.0, 86400.0),
)
WS_HANDSHAKES_REFUSED = Counter(
    "orders_ws_handshakes_refused_total",
    "WebSocket handshakes the gate refused: rate_per_ip, rate_total, origin, no_credentials.", ["reason"],
)


def endpoint_of(scope: dict[str, Any]) -> str:
    """The WebSocket endpoint's label: notifications, order or chat (never the order id: bounded cardinality)."""
    path = scope.get("path", "")
    if path.startswith("/ws/notifications/"):
        return "notifications"
    if path.endswith("/chat/"):
        return "chat"
    return "order"


def socket_opened(consumer: Any) -> None:
    consumer.metrics_endpoint = endpoint_of(consumer.scope)
    WS_CONNECTIONS.labels(consumer.metrics_endpoint).inc()


def socket_closed(consumer: Any) -> None:
    # Only sockets counted as opened are counted as closed (refused sockets never were).
    endpoint = getattr(consumer, "metrics_endpoint", None)
    if endpoint is not None:
        WS_CONNECTIONS.labels(endpoint).dec()
        consumer.metrics_endpoint = None


def frame_sent(consumer: Any) -> None:
    WS_FRAMES_SENT.labels(getattr(consumer, "metrics_endpoint", None) or endpoint_of(consumer.scope)).inc()


def status_delivered(message: dict[str, Any]) -> None:
    """A live order.status frame went out; its message carries the event's `created_at` (epoch seconds)."""
    created_at = message.get("created_at")
    if isinstance(created_at, (int, float)):
        EVENT_DELIVERY_SECONDS.observe(max(0.0, time.time() - created_at))


def event_seen(*, committed_at: datetime | None, seen_at: datetime) -> None:
    """A receipt moved an order's seen seq: observed once per seq (a repeated or stale receipt moves nothing)."""
    if committed_at is not None:
        EVENT_SEEN_SECONDS.observe(max(0.0, (seen_at - committed_at).total_seconds()))


def event_published() -> None:
    EVENTS_PUBLISHED.inc()


def handshake_refused(reason: str) -> None:
    WS_HANDSHAKES_REFUSED.labels(reason).inc()


def registry() -> CollectorRegistry:
    """This process's registry, or in multiprocess mode one that sums the files of every process."""
    if not MULTIPROCESS:
        return REGISTRY
    collecting = CollectorRegistry()
    multiprocess.MultiProcessCollector(collecting)
    return collecting


def metrics_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
