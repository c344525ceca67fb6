"""The webhook endpoints of the JSON API: register (the secret is shown once), list, delete.

The views are thin shells over `*_answer` functions that take the caller and the parsed body and return
(status, JSON), so another router (django-ninja, an API-key scope `webhooks:manage`) can mount the same logic.
For now the caller is staff with the admin's webhook permissions, by bearer JWT or session (orders.api.api_view).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.api import read_json
from integrations import webhooks
from integrations.models import WebhookEndpoint
from orders.api import api_view

Answer = tuple[int, dict[str, Any] | None]


def may_manage_webhooks(user: User | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff
                and user.has_perm("integrations.change_webhookendpoint"))


def endpoint_json(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": endpoint.pk,
        "url": endpoint.url,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "created_at": endpoint.created_at.isoformat(),
    }
    if with_secret:
        data["secret"] = endpoint.secret
    return data


def create_answer(body: dict[str, Any] | None, *, created_by: User | None) -> Answer:
    if body is None:
        return 422, {"detail": "The body must be a JSON object.", "errors": {"body": "Not a JSON object."}}
    try:
        endpoint = webhooks.create_endpoint(url=body.get("url"), events=body.get("events"), created_by=created_by)
    except webhooks.InvalidEndpoint as exc:
        return 422, {"detail": "Invalid webhook endpoint.", "errors": exc.errors}
    return 201, endpoint_json(endpoint, with_secret=True)


def list_answer() -> Answer:
    return 200, {"webhooks": [endpoint_json(endpoint) for endpoint in WebhookEndpoint.objects.order_by("pk")]}


def delete_answer(endpoint_id: int) -> Answer:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return 404, {"detail": "No such webhook endpoint."}
    webhooks.delete_endpoint(endpoint=endpoint)
    return 204, None


def respond(answer: Answer) -> HttpResponse:
    status, data = answer
    return HttpResponse(status=status) if data is None else JsonResponse(data, status=status)


def forbidden() -> HttpResponse:
    return JsonResponse({"detail": "Managing webhooks needs the webhooks:manage permission."}, status=403)


@api_view
def webhook_list(request: HttpRequest) -> HttpResponse:
    """GET: the registered endpoints (without their secrets). POST {"url", "events"}: register one."""
    if not may_manage_webhooks(request.user):
        return forbidden()
    if request.method == "GET":
        return respond(list_answer())
    if request.method == "POST":
        creator = request.user if isinstance(request.user, User) else None
        return respond(create_answer(read_json(request), created_by=creator))
    return JsonResponse({"detail": "Method not allowed."}, status=405, headers={"Allow": "GET, POST"})


@api_view
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """DELETE: remove an endpoint and its delivery log."""
    if not may_manage_webhooks(request.user):
        return forbidden()
    if request.method != "DELETE":
        return JsonResponse({"detail": "Method not allowed."}, status=405, headers={"Allow": "DELETE"})
    return respond(delete_answer(endpoint_id))
