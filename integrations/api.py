"""The webhook endpoints of the JSON API (a django-ninja router, mounted by config/api.py): register one (its
secret is shown once), list them, delete one. For an API key with `webhooks:manage`, or staff with the admin's
permission to change webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest
from ninja import Path, Router, Schema
from ninja import Status as HttpStatus
from ninja.errors import HttpError

from accounts.api_auth import require_scope
from accounts.models import ApiKey, Scope
from integrations import webhooks
from integrations.models import WebhookEndpoint
from orders.schemas import Error, ValidationErrorOut

router = Router(tags=["webhooks"])

REFUSALS: dict[int | str, Any] = {401: Error, 403: Error, 422: ValidationErrorOut}
EndpointId = Path(..., ge=1, le=2**63 - 1)  # type: ignore[type-arg]  # ninja types its markers as generic classes


class WebhookIn(Schema):
    url: str
    events: list[str]


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    enabled: bool
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str


class WebhookListOut(Schema):
    webhooks: list[WebhookOut]


def may_manage_webhooks(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff
                and user.has_perm("integrations.change_webhookendpoint"))


def check_caller(request: HttpRequest) -> User | None:
    """The `webhooks:manage` scope for a key, the admin's permission for a person; the user, if a person."""
    require_scope(request, Scope.WEBHOOKS_MANAGE)
    caller = request.auth  # type: ignore[attr-defined]
    if isinstance(caller, ApiKey):
        return None
    if not may_manage_webhooks(caller):
        raise HttpError(403, "Managing webhooks needs a webhooks:manage API key or staff with the "
                             "integrations.change_webhookendpoint permission.")
    return caller if isinstance(caller, User) else None


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"id": endpoint.pk, "url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled,
            "created_at": endpoint.created_at}


@router.post("/webhooks/", response={201: WebhookCreatedOut, 400: Error, **REFUSALS}, url_name="api-webhooks")
def create_webhook(request: HttpRequest, payload: WebhookIn) -> Any:
    """Register an endpoint for `order.created` and/or `order.status`; the answer carries its `whsec_` secret,
    shown this once. The URL must be https and resolve to public addresses (docs/security.md)."""
    created_by = check_caller(request)
    try:
        endpoint = webhooks.create_endpoint(url=payload.url, events=payload.events, created_by=created_by)
    except webhooks.InvalidEndpoint as exc:
        errors = [{"loc": ["body", "payload", field], "msg": message, "type": "value_error"}
                  for field, message in exc.errors.items()]
        return HttpStatus(422, {"detail": f"Invalid request: {exc}", "errors": errors})
    return HttpStatus(201, {**endpoint_json(endpoint), "secret": endpoint.secret})


@router.get("/webhooks/", response={200: WebhookListOut, **REFUSALS})
def list_webhooks(request: HttpRequest) -> Any:
    """The registered endpoints, oldest first, without their secrets."""
    check_caller(request)
    return {"webhooks": [endpoint_json(endpoint) for endpoint in WebhookEndpoint.objects.order_by("pk")]}


@router.delete("/webhooks/{endpoint_id}/", response={204: None, 404: Error, **REFUSALS}, url_name="api-webhook")
def delete_webhook(request: HttpRequest, endpoint_id: int = EndpointId) -> Any:
    """Remove an endpoint and its delivery log."""
    check_caller(request)
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise HttpError(404, "No such webhook endpoint.")
    webhooks.delete_endpoint(endpoint=endpoint)
    return HttpStatus(204, None)
