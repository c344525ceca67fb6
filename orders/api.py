"""The JSON HTTP API for orders (a django-ninja router, mounted by config/api.py): the caller's orders (paged by
cursor, filtered by change time, status and external_ref), one order with its events, status changes, shipment and
promise changes (PATCH), and order intake with Idempotency-Key. Who may do what is orders.selectors'; the writes
are orders.services'."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Path, Query, Router, Schema
from ninja import Status as HttpStatus
from ninja.errors import HttpError, ValidationError
from pydantic import AwareDatetime, Field, field_validator

from accounts.api_auth import require_scope
from accounts.models import ApiKey, Scope
from integrations import tracking
from orders import idempotency, selectors, services
from orders.models import SHIPMENT_FIELDS, Order, OrderEvent
from orders.schemas import (
    DuplicateOrder,
    Error,
    IllegalChange,
    OrderDetailOut,
    OrderIn,
    OrderPageOut,
    OrderPatchIn,
    StatusChangeIn,
    StatusChangeOut,
    Text,
    ValidationErrorOut,
)
from orders.states import IllegalTransition, Status

logger = logging.getLogger(__name__)

router = Router(tags=["orders"])

# GET /api/orders/ pages (docs/protocol.md): `limit` defaults to 50 and may be at most 200.
ORDER_PAGE_DEFAULT = 50
ORDER_PAGE_MAX = 200
CURSOR_PREFIX = "v1:"
# Order ids are PostgreSQL bigints.
MAX_ID = 2**63 - 1

REFUSALS: dict[int | str, Any] = {401: Error, 403: Error, 422: ValidationErrorOut}
# A body that is not JSON at all (ninja's parser): 400, before any field is looked at.
WITH_BODY: dict[int | str, Any] = {400: Error, **REFUSALS}
OrderId = Path(..., ge=1, le=MAX_ID)  # type: ignore[type-arg]  # ninja types its param markers as generic classes


# --- JSON of orders and events ------------------------------------------------------------------------------

def order_json(order: Order, *, staff: bool = False, awaiting_reply: int = 0,
               tracking_url: str | None = None) -> dict[str, Any]:
    data = {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "seq": order.seq,
        "external_ref": order.external_ref,
        "currency": order.currency,
        "tracking_url": tracking_url if tracking_url is not None else tracking.tracking_url(order),
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "carrier_tracking_url": order.carrier_tracking_url,
        "promised_at": order.promised_at.isoformat() if order.promised_at else None,
        "eta": order.eta.isoformat() if order.eta else None,
        "created_at": order.created_at.isoformat(),
        "updated_at": order.updated_at.isoformat(),
        "status_changed_at": order.status_changed_at.isoformat() if order.status_changed_at else None,
    }
    if staff:
        # Staff-only fields are added here and nowhere else; customers never get them.
        data["internal_note"] = order.internal_note
        data["customer"] = order.customer.get_username()
        data["awaiting_reply"] = awaiting_reply
        data["at_risk"] = order.at_risk
    return data


def orders_json(orders: list[Order], *, staff: bool) -> list[dict[str, Any]]:
    """The orders as JSON; for staff with their chats' unanswered customer messages (one query for all)."""
    awaiting = selectors.awaiting_reply_counts([order.pk for order in orders]) if staff else {}
    urls = tracking.tracking_urls(orders)
    return [order_json(order, staff=staff, awaiting_reply=awaiting.get(order.pk, 0), tracking_url=urls[order.pk])
            for order in orders]


def event_json(event: OrderEvent) -> dict[str, Any]:
    """An event as the API shows it: the one function, so the shape lives in one place."""
    if event.kind == OrderEvent.Kind.UPDATED:
        return {"id": event.pk, "kind": event.kind, **event.to_dict(), "changes": event.changes}
    return {"id": event.pk, "kind": event.kind, **event.to_dict()}


def order_detail_json(order: Order, *, staff: bool) -> dict[str, Any]:
    items = [
        {"name": item.name, "quantity": item.quantity, "unit_price": str(item.unit_price),
         "line_total": str(item.subtotal)}
        for item in order.items.order_by("pk")
    ]
    events = selectors.event_log(order)
    seen = {"seq": order.seen_seq, "at": order.seen_at.isoformat()} if order.seen_at else None
    return {**orders_json([order], staff=staff)[0], "items": items, "events": [event_json(e) for e in events],
            "seen": seen}


# --- The list's cursor --------------------------------------------------------------------------------------

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


class OrderListQuery(Schema):
    limit: int = Field(ORDER_PAGE_DEFAULT, ge=1, le=ORDER_PAGE_MAX, description="Orders per page.")
    cursor: str | None = Field(None, max_length=100, description="The `next` of the previous page, as it was.")
    updated_since: AwareDatetime | None = Field(
        None, description="Only orders changed (`updated_at`) at or after this ISO 8601 time with its offset.")
    status: Status | None = None
    external_ref: Text | None = Field(None, max_length=100, description="Only the order with this shop reference.")

    @field_validator("cursor")
    @classmethod
    def _known_cursor(cls, value: str | None) -> str | None:
        if value is not None and decode_cursor(value) is None:
            raise ValueError("Invalid cursor: send back the \"next\" of a previous answer.")
        return value

    @field_validator("updated_since")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        # PostgreSQL takes offsets up to ±15:59, ISO 8601 up to ±23:59: compare in UTC.
        try:
            return value.astimezone(UTC) if value is not None else None
        except OverflowError:
            raise ValueError("updated_since is out of range.") from None


# --- Endpoints ----------------------------------------------------------------------------------------------

@router.get("/orders/", response={200: OrderPageOut, **REFUSALS}, url_name="api-orders", exclude_unset=True)
def list_orders(request: HttpRequest, query: Query[OrderListQuery]) -> dict[str, Any]:
    """A page of the caller's orders (staff and `orders:read` keys: all), newest first; `next` is the cursor of
    the following page. Walking the cursors returns every order exactly once, however orders change meanwhile."""
    require_scope(request, Scope.ORDERS_READ)
    viewer = request.auth  # type: ignore[attr-defined]
    # Read before the orders: whatever changes after this instant, an `updated_since` of it finds.
    as_of = timezone.now()
    page = selectors.order_page(
        viewer, limit=query.limit, before=decode_cursor(query.cursor) if query.cursor else None,
        updated_since=query.updated_since, status=query.status, external_ref=query.external_ref,
    )
    return {
        "orders": orders_json(page.orders, staff=selectors.sees_all_orders(viewer)),
        "next": encode_cursor(page.next_before) if page.next_before is not None else None,
        "as_of": as_of.isoformat(),
    }


@router.get("/orders/{order_id}/", response={200: OrderDetailOut, 404: Error, **REFUSALS}, url_name="api-order",
            exclude_unset=True)
def get_order(request: HttpRequest, order_id: int = OrderId) -> dict[str, Any]:
    """One order with its items and its events; 404 for an order that is not the caller's."""
    require_scope(request, Scope.ORDERS_READ)
    viewer = request.auth  # type: ignore[attr-defined]
    order = selectors.get_visible_order(viewer, order_id)
    if order is None:
        raise HttpError(404, "No such order.")
    return order_detail_json(order, staff=selectors.sees_all_orders(viewer))


def order_to_change(request: HttpRequest, order_id: int, change: str) -> Order:
    """The order a write asks for: an `orders:write` key or staff with `orders.change_order` (403), the order
    visible to them (404)."""
    require_scope(request, Scope.ORDERS_WRITE)
    viewer = request.auth  # type: ignore[attr-defined]
    order = selectors.get_visible_order(viewer, order_id)
    if order is None:
        raise HttpError(404, "No such order.")
    if not selectors.may_change_status(viewer):
        raise HttpError(403, f"{change} needs staff with the orders.change_order permission.")
    return order


@router.post("/orders/{order_id}/status/", url_name="api-order-status", exclude_unset=True,
             response={200: StatusChangeOut, 404: Error, 409: IllegalChange, **WITH_BODY})
def change_order_status(request: HttpRequest, payload: StatusChangeIn, order_id: int = OrderId) -> Any:
    """Move the order to `status` (staff with `orders.change_order`, or an `orders:write` key); 409 with the
    reason when the state machine does not allow it."""
    viewer = request.auth  # type: ignore[attr-defined]
    order = order_to_change(request, order_id, "Changing an order's status")
    try:
        event = services.change_status(order=order, to=payload.status, actor=viewer)
    except IllegalTransition as exc:
        return HttpStatus(409, {"detail": exc.reason, "status": exc.current, "requested": exc.requested})
    order.refresh_from_db()  # the change also moved updated_at, which a client may keep as its updated_since
    return {"order": orders_json([order], staff=True)[0], "event": event_json(event)}


@router.patch("/orders/{order_id}/", url_name="api-order-update", exclude_unset=True,
              response={200: OrderDetailOut, 404: Error, **WITH_BODY})
def update_order(request: HttpRequest, payload: OrderPatchIn, order_id: int = OrderId) -> dict[str, Any]:
    """Set the order's `carrier`, `tracking_number`, `promised_at` and `eta` (staff with `orders.change_order`, or
    an `orders:write` key): the fields sent are set, the rest kept. A change reaches open pages as an
    `order.updated` frame on the order's seq stream; a body that changes nothing records nothing."""
    viewer = request.auth  # type: ignore[attr-defined]
    order = order_to_change(request, order_id, "Changing an order")
    services.update_order(order=order, changes=payload.model_dump(exclude_unset=True), actor=viewer)
    order.refresh_from_db()
    return order_detail_json(order, staff=True)


def _owner(caller: Any) -> str:
    return f"key:{caller.pk}" if isinstance(caller, ApiKey) else f"user:{caller.pk}"


@router.post("/orders/", response={201: OrderDetailOut, 409: DuplicateOrder, **WITH_BODY})
def create_order(
    request: HttpRequest,
    payload: OrderIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1,  # type: ignore[type-arg]
                                         max_length=idempotency.MAX_KEY_LENGTH),
) -> HttpResponse:
    """Order intake (an `orders:write` key, or staff with `orders.add_order`): the customer is found or created by
    e-mail. With `Idempotency-Key`, a retry of the same request gets the first answer and creates nothing."""
    require_scope(request, Scope.ORDERS_WRITE)
    caller = request.auth  # type: ignore[attr-defined]
    if not selectors.may_create_orders(caller):
        raise HttpError(403, "Creating orders needs an orders:write API key or staff with orders.add_order.")

    def intake() -> idempotency.Answer:
        try:
            order = services.take_order(
                email=payload.customer.email, name=payload.customer.name, shipping_address=payload.shipping_address,
                currency=payload.currency, external_ref=payload.external_ref, actor=caller,
                shipment=services.Shipment(carrier=payload.carrier, tracking_number=payload.tracking_number,
                                           promised_at=payload.promised_at, eta=payload.eta),
                items=[services.NewItem(name=i.name, quantity=i.quantity, unit_price=i.unit_price)
                       for i in payload.items],
            )
        except services.DuplicateExternalRef as exc:
            body = {"detail": f"An order with this external_ref exists already: order {exc.order_id}.",
                    "order_id": exc.order_id}
            return idempotency.Answer(409, json.dumps(body))
        return idempotency.Answer(201, json.dumps(order_detail_json(order, staff=True), cls=DjangoJSONEncoder))

    if idempotency_key is None:
        answer = intake()
    else:
        body = payload.model_dump(mode="json")
        # Shipment fields left at their defaults are left out, so a request stored before they existed keeps
        # its fingerprint (a retry across the upgrade gets its first answer, not a 422).
        for name in SHIPMENT_FIELDS:
            if body.get(name) in ("", None):
                body.pop(name, None)
        fingerprint = idempotency.fingerprint(method="POST", path=request.path, body=body)
        try:
            answer, _ = idempotency.answer_once(owner=_owner(caller), key=idempotency_key,
                                                fingerprint=fingerprint, run=intake)
        except idempotency.KeyReused:
            raise ValidationError([{
                "loc": ["header", "Idempotency-Key"], "type": "idempotency_key_reused",
                "msg": "This Idempotency-Key was used with a different request; use a new key for a new order.",
            }]) from None
    return HttpResponse(answer.body, status=answer.status_code, content_type="application/json")
