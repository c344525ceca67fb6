"""The token endpoints of the JSON API: log in, refresh (rotate), log out; throttled, with the JSON answers
(error, body parsing) the rest of the API shares."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts import throttling, tokens
from accounts.state import Unavailable

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]

# Django's username field is 150 characters; a password longer than this is not a password.
MAX_USERNAME_LENGTH = 150
MAX_PASSWORD_LENGTH = 1024


def error(http_status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=http_status)


def throttled(exc: throttling.Throttled) -> JsonResponse:
    response = error(429, "Too many failed attempts; try again later.", retry_after=exc.retry_after)
    response["Retry-After"] = str(exc.retry_after)
    return response


def unavailable() -> JsonResponse:
    # The store behind the check is down: refuse rather than let an unchecked request through.
    response = error(503, "Authentication is temporarily unavailable.")
    response["Retry-After"] = "5"
    return response


def read_json(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def token_endpoint(view: View) -> View:
    """A POST-only, token-only (so CSRF-exempt) endpoint whose refusals are translated here, once:
    Throttled → 429 with Retry-After, Unavailable → 503."""

    @csrf_exempt
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except throttling.Throttled as exc:
            return throttled(exc)
        except Unavailable:
            return unavailable()

    return wrapper


def token_pair_json(pair: tokens.TokenPair) -> JsonResponse:
    return JsonResponse({"access": pair.access, "refresh": pair.refresh, "expires_in": pair.expires_in})


@token_endpoint
def obtain_token(request: HttpRequest) -> HttpResponse:
    body = read_json(request)
    if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return error(400, "Send a JSON object with \"username\" and \"password\".")
    username, password = body["username"], body["password"]
    if len(username) > MAX_USERNAME_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return error(400, "Username or password too long.")
    # The throttle (accounts.throttling, the first auth backend) counts the attempt before any password check.
    user = authenticate(request, username=username, password=password)
    refused = throttling.refusal(request)
    if refused is not None:
        raise refused
    if user is None or not user.is_active:
        return error(401, "Invalid username or password.")
    throttling.succeeded(request, username=username)
    return token_pair_json(tokens.start_session(user))


@token_endpoint
def refresh_token(request: HttpRequest) -> HttpResponse:
    """Rotate: the refresh token sent is spent and a new pair comes back; sending a spent one logs out."""
    body = read_json(request)
    if body is None or not isinstance(body.get("refresh"), str):
        return error(400, "Send a JSON object with \"refresh\".")
    throttling.take(request)
    try:
        pair = tokens.rotate_refresh_token(body["refresh"])
    except tokens.RefreshReused:
        logger.warning("Refresh token reuse from %s: its session is revoked.", throttling.client_ip(request))
        return error(401, "This refresh token was already used; the session is revoked. Log in again.")
    except tokens.InvalidToken:
        return error(401, "Invalid or expired refresh token.")
    throttling.succeeded(request)
    return token_pair_json(pair)


@token_endpoint
def logout(request: HttpRequest) -> HttpResponse:
    """Revoke the session of the bearer access token and/or the refresh token sent; 204 either way once valid.

    Token-only: browser sessions log out at /accounts/logout/.
    """
    body = read_json(request)
    if body is None:
        return error(400, "Send a JSON object (optionally with \"refresh\").")
    header = request.headers.get("Authorization", "")
    candidates: list[tuple[str, str]] = []
    if header.startswith("Bearer "):
        candidates.append((header.removeprefix("Bearer ").strip(), tokens.ACCESS))
    if isinstance(body.get("refresh"), str):
        candidates.append((body["refresh"], tokens.REFRESH))
    if not candidates:
        return error(401, "Send a bearer access token or a refresh token.")
    revoked = 0
    for token, token_type in candidates:
        try:
            claims = tokens.decode_token(token, expected_type=token_type)
        except tokens.InvalidToken:
            continue
        tokens.revoke_family(claims)
        revoked += 1
    if not revoked:
        return error(401, "Invalid or expired token.")
    return HttpResponse(status=204)
