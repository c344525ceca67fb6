"""The JSON HTTP API for orders: the caller's orders (paged by cursor, filtered by change time and status), one
order with its events, and staff status changes. The token endpoints are in accounts/api.py."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import tokens
from accounts.api import View, error, read_json
from orders import selectors, services
from orders.models import Order, OrderEvent
from orders.states import IllegalTransition, Status

logger = logging.getLogger(__name__)

# GET /api/orders/ pages (docs/protocol.md): `limit` defaults to 50 and may be at most 200.
ORDER_PAGE_DEFAULT = 50
ORDER_PAGE_MAX = 200
CURSOR_PREFIX = "v1:"


def api_view(view: View) -> View:
    """Authenticate by `Authorization: Bearer <access>` or the session (with CSRF on unsafe methods)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            try:
                request.user, _claims = tokens.user_for_token(header.removeprefix("Bearer ").strip())
            except tokens.InvalidToken:
                return error(401, "Invalid or expired access token.")
        elif request.user.is_authenticated:
            csrf_failure = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
            if csrf_failure is not None:
                return error(403, "CSRF check failed.")
        else:
            return error(401, "Authentication required.")
        return view(request, *args, **kwargs)

    return wrapper


def order_json(order: Order, *, staff: bool = False, awaiting_reply: int = 0) -> dict[str, Any]:
    data = {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "seq": order.seq,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "status_changed_at": order.status_changed_at.isoformat() if order.status_changed_at else None,
    }
    if staff:
        # Staff-only fields are added here and nowhere else; customers never get them.
        data["internal_note"] = order.internal_note
        data["customer"] = order.customer.get_username()
        data["awaiting_reply"] = awaiting_reply
    return data


def orders_json(orders: list[Order], *, staff: bool) -> list[dict[str, Any]]:
    """The orders as JSON; for staff with their chats' unanswered customer messages (one query for all)."""
    awaiting = selectors.awaiting_reply_counts([order.pk for order in orders]) if staff else {}
    return [order_json(order, staff=staff, awaiting_reply=awaiting.get(order.pk, 0)) for order in orders]


def event_json(event: OrderEvent) -> dict[str, Any]:
    return {"id": event.pk, **event.to_dict()}


def encode_cursor(before: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{before}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The order id a cursor continues below, or None if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    digits = text.removeprefix(CURSOR_PREFIX)
    # An id fits PostgreSQL's bigint: at most 19 digits.
    if not text.startswith(CURSOR_PREFIX) or not digits.isdigit() or not digits.isascii() or len(digits) > 19:
        return None
    return int(digits)


def parse_time(raw: str) -> datetime | None:
    """An ISO 8601 time with its offset; None if it is not one (a naive time would be ambiguous)."""
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        return None
    return parsed if parsed is not None and timezone.is_aware(parsed) else None


@require_GET
@api_view
def order_list(request: HttpRequest) -> HttpResponse:
    """A page of the caller's orders (staff: all), newest first; `next` is the cursor of the following page."""
    params = request.GET
    limit_raw = params.get("limit", str(ORDER_PAGE_DEFAULT))
    if not (limit_raw.isdigit() and limit_raw.isascii() and 1 <= int(limit_raw) <= ORDER_PAGE_MAX):
        return error(400, f"limit must be a whole number from 1 to {ORDER_PAGE_MAX}.")
    before = None
    if "cursor" in params:
        before = decode_cursor(params["cursor"])
        if before is None:
            return error(400, "Invalid cursor: send back the \"next\" of a previous answer.")
    updated_since = None
    if "updated_since" in params:
        updated_since = parse_time(params["updated_since"])
        if updated_since is None:
            return error(400, "updated_since must be an ISO 8601 time with its offset, e.g. "
                              "2026-11-25T10:00:00Z (URL-encode a \"+\" offset as %2B).")
    status = params.get("status")
    if status is not None and status not in Status.values:
        return error(400, f"Unknown status; one of: {', '.join(Status.values)}.")
    # Read before the orders: whatever changes after this instant, an `updated_since` of it finds.
    as_of = timezone.now()
    page = selectors.order_page(
        request.user, limit=int(limit_raw), before=before, updated_since=updated_since, status=status
    )
    return JsonResponse({
        "orders": orders_json(page.orders, staff=selectors.sees_all_orders(request.user)),
        "next": encode_cursor(page.next_before) if page.next_before is not None else None,
        "as_of": as_of.isoformat(),
    })


@require_GET
@api_view
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = selectors.get_visible_order(request.user, order_id)
    if order is None:
        return error(404, "No such order.")
    events = selectors.events_after(order.pk, 0)
    return JsonResponse(
        {**orders_json([order], staff=selectors.sees_all_orders(request.user))[0],
         "events": [event_json(event) for event in events]}
    )


@require_POST
@api_view
def order_change_status(request: HttpRequest, order_id: int) -> HttpResponse:
    order = selectors.get_visible_order(request.user, order_id)
    if order is None:
        return error(404, "No such order.")
    if not selectors.may_change_status(request.user):
        return error(403, "Changing an order's status needs staff with the orders.change_order permission.")
    body = read_json(request)
    if body is None or not isinstance(body.get("status"), str):
        return error(400, "Send a JSON object with \"status\".")
    try:
        event = services.change_status(order=order, to=body["status"], actor=request.user)
    except IllegalTransition as exc:
        return error(409, exc.reason, status=exc.current, requested=exc.requested)
    order.refresh_from_db()  # the change also moved updated_at, which a client may keep as its updated_since
    return JsonResponse({"order": orders_json([order], staff=True)[0], "event": event_json(event)})
