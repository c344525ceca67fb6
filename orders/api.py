"""The JSON HTTP API: tokens, the caller's orders, one order with its events, and staff status changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from orders import selectors, services, tokens
from orders.models import Order, OrderEvent
from orders.states import IllegalTransition

View = Callable[..., JsonResponse]


def error(status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def read_json(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def api_view(view: View) -> View:
    """Authenticate by `Authorization: Bearer <access>` or the session (with CSRF on unsafe methods)."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
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


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "seq": order.seq,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
    }


def event_json(event: OrderEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "seq": event.seq,
        "status": event.to_status,
        "previous": event.from_status or None,
        "at": event.created_at.isoformat(),
    }


@csrf_exempt
@require_POST
def obtain_token(request: HttpRequest) -> JsonResponse:
    body = read_json(request)
    if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return error(400, "Send a JSON object with \"username\" and \"password\".")
    user = authenticate(request, username=body["username"], password=body["password"])
    if user is None or not user.is_active:
        return error(401, "Invalid username or password.")
    return JsonResponse(
        {
            "access": tokens.issue_access_token(user),
            "refresh": tokens.issue_refresh_token(user),
            "expires_in": tokens.access_lifetime_seconds(),
        }
    )


@csrf_exempt
@require_POST
def refresh_token(request: HttpRequest) -> JsonResponse:
    body = read_json(request)
    if body is None or not isinstance(body.get("refresh"), str):
        return error(400, "Send a JSON object with \"refresh\".")
    try:
        user, _claims = tokens.user_for_token(body["refresh"], expected_type=tokens.REFRESH)
    except tokens.InvalidToken:
        return error(401, "Invalid or expired refresh token.")
    return JsonResponse({"access": tokens.issue_access_token(user), "expires_in": tokens.access_lifetime_seconds()})


@require_GET
@api_view
def order_list(request: HttpRequest) -> JsonResponse:
    orders = selectors.visible_orders(request.user).order_by("-created_at")[:200]
    return JsonResponse({"orders": [order_json(order) for order in orders]})


@require_GET
@api_view
def order_detail(request: HttpRequest, order_id: int) -> JsonResponse:
    order = selectors.get_visible_order(request.user, order_id)
    if order is None:
        return error(404, "No such order.")
    events = selectors.events_after(order.pk, 0)
    return JsonResponse({**order_json(order), "events": [event_json(event) for event in events]})


@require_POST
@api_view
def order_change_status(request: HttpRequest, order_id: int) -> JsonResponse:
    order = selectors.get_visible_order(request.user, order_id)
    if order is None:
        return error(404, "No such order.")
    if not request.user.is_staff:
        return error(403, "Only staff may change an order's status.")
    body = read_json(request)
    if body is None or not isinstance(body.get("status"), str):
        return error(400, "Send a JSON object with \"status\".")
    try:
        event = services.change_status(order=order, to=body["status"], actor=request.user)
    except IllegalTransition as exc:
        return error(409, exc.reason, status=exc.current, requested=exc.requested)
    return JsonResponse({"order": order_json(order), "event": event_json(event)})
