"""The guest tracking page: an order's live page by its tracking link, without logging in, read-only."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from integrations import tracking
from orders import selectors
from orders.views import not_known, order_page_data, progress_steps

logger = logging.getLogger(__name__)


@require_GET
@never_cache
def tracking_page(request: HttpRequest, token: str) -> HttpResponse:
    """The customer's order page in guest mode: status, timeline, items, and the delivery (carrier, tracking number,
    promised date, ETA: what a tracking link is for); no chat, no address, no other orders, nothing of the
    customer's account."""
    try:
        order = tracking.verify(token)
    except tracking.BadTrackingToken as exc:
        logger.info("Tracking link refused: %s", exc)  # why, never the token
        return render(request, "integrations/tracking_invalid.html", status=404)
    context = {
        "guest": True,
        "order": order,
        "items": list(order.items.all()),
        "not_known": not_known(),
        "events": selectors.status_history(order.pk),
        "progress": progress_steps(),
        "support_email": settings.SUPPORT_EMAIL,
        "page_data": order_page_data(order, user="", is_staff=False, tracking=token),
    }
    return render(request, "orders/order_page.html", context)
