"""The JSON API (django-ninja): its routers, authentication, error answers, OpenAPI document and docs page.

Every refusal is JSON with a "detail": 401/403 from authentication, 404, 409 from the routers, 422 with the field
"errors" for a request that does not validate. The token endpoints (/api/auth/…) are plain views in accounts/api.py
(their throttling decides the order of checks) that its router puts in the document."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from accounts.api import router as auth_router
from accounts.api_auth import BearerAuth, SessionAuth
from orders.api import router as orders_router


class JsonAPI(NinjaAPI):
    def get_content_type(self) -> str:
        # As Django's JsonResponse, which the API answered with before: JSON is UTF-8 by definition (RFC 8259).
        return "application/json"


api = JsonAPI(
    title="Order tracking API",
    version="1",
    description="Orders, their status changes and intake. Authenticate with `Authorization: Bearer <access token "
                "or API key>`, or the site's session (unsafe methods then need the CSRF token). "
                "Guide: docs/integration.md.",
    auth=[BearerAuth(), SessionAuth()],
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("/auth/", auth_router)
api.add_router("/", orders_router)


def _location(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


@api.exception_handler(ValidationError)
def invalid_request(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    # Only what a client can act on: pydantic's "ctx" and "input" may hold exceptions and echo whole bodies.
    errors = [{"loc": _location(error.get("loc", ())), "msg": str(error.get("msg", "")),
               "type": str(error.get("type", ""))} for error in exc.errors]
    first = errors[0] if errors else {"loc": [], "msg": "Invalid request."}
    where = ".".join(str(part) for part in first["loc"])
    detail = f"Invalid request: {where}: {first['msg']}" if where else f"Invalid request: {first['msg']}"
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


@api.exception_handler(HttpError)
def refused(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found."}, status=404)
