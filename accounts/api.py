"""The token endpoints of the JSON API: log in, refresh (rotate), log out; throttled. Plain views (the throttle
decides the order of the checks, and their answers predate the ninja API), put in the API's OpenAPI document by
`router` at the end."""

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
from ninja import Router, Schema

from accounts import throttling, tokens, twofactor
from accounts.models import EndReason
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


def _storable(text: str) -> bool:
    """Whether PostgreSQL can compare `text` at all: not with NUL, nor with lone surrogates (valid JSON escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


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
    """Username and password; staff add "otp", the current code of their authenticator app."""
    body = read_json(request)
    if body is None or not isinstance(body.get("username"), str) or not isinstance(body.get("password"), str):
        return error(400, "Send a JSON object with \"username\" and \"password\".")
    username, password = body["username"], body["password"]
    if len(username) > MAX_USERNAME_LENGTH or len(password) > MAX_PASSWORD_LENGTH:
        return error(400, "Username or password too long.")
    if not (_storable(username) and _storable(password)):
        return error(400, "Username or password has characters no account can have (NUL, lone surrogates).")
    # The throttle (accounts.throttling, the first auth backend) counts the attempt before any password check.
    user = authenticate(request, username=username, password=password)
    refused = throttling.refusal(request)
    if refused is not None:
        raise refused
    if user is None or not user.is_active:
        return error(401, "Invalid username or password.")
    throttling.succeeded(request, username=username)
    if twofactor.required(user):
        wrong_code = _second_factor(request, user, body.get("otp"))
        if wrong_code is not None:
            return wrong_code
    return token_pair_json(tokens.start_session(user))


def _second_factor(request: HttpRequest, user: Any, otp: Any) -> HttpResponse | None:
    """Staff get tokens only with a code from their confirmed authenticator app: a password alone is no login
    here, and no enrolment either (that is the site's login page, so a stolen password cannot enrol a device
    over the API). None when the code is right."""
    device = twofactor.confirmed_device(user)
    if device is None:
        return error(401, "Staff accounts need two-factor login: set up an authenticator app by logging in on the "
                          "site first (/accounts/login/), then send its code as \"otp\".",
                     code="otp_enrolment_required")
    if otp is None:
        return error(401, "This account needs a one-time code: send \"otp\" with the 6-digit code from your "
                          "authenticator app.", code="otp_required")
    if not isinstance(otp, str):
        return error(400, "\"otp\" must be a string of digits.")
    try:
        twofactor.check_code(request, user=user, device=device, code=otp)
    except twofactor.CodeRefused as exc:
        return error(401, exc.message, code=f"otp_{exc.code}")
    # The code's counted attempt succeeded too.
    throttling.succeeded(request, username=user.get_username())
    return None


@token_endpoint
def refresh_token(request: HttpRequest) -> HttpResponse:
    """Rotate: the refresh token sent is spent and a new pair comes back; sending a spent one logs out."""
    body = read_json(request)
    if body is None or not isinstance(body.get("refresh"), str):
        return error(400, "Send a JSON object with \"refresh\".")
    try:
        throttling.take(request)
    except Unavailable as exc:
        # A refresh needs a signed token, not a guess: without the counters (Redis away) refreshes go on
        # unthrottled rather than log every API client out. The families themselves are in the database.
        logger.warning("Refresh throttle not checked, auth state unavailable: %s", exc)
    try:
        pair = tokens.rotate_refresh_token(body["refresh"])
    except tokens.RefreshReused:
        logger.warning("Refresh token reuse from %s: its session is revoked.", throttling.client_ip(request))
        return error(401, "This refresh token was already used; the session is revoked. Log in again.")
    except tokens.LoginTooOld:
        return error(401, "This login has reached its absolute lifetime; log in again.")
    except tokens.InvalidToken:
        return error(401, "Invalid or expired refresh token.")
    try:
        throttling.succeeded(request)
    except Unavailable as exc:
        # The token is already rotated: answering 503 now would lose the new pair and spend the login.
        logger.warning("Refresh not forgiven, auth state unavailable: %s", exc)
    return token_pair_json(pair)


def _tokens_sent(request: HttpRequest, body: dict[str, Any]) -> list[tuple[str, str]]:
    """The bearer access token and the body's refresh token, those that were sent, with their types."""
    sent: list[tuple[str, str]] = []
    access = tokens.bearer_credential(request.headers)
    if access is not None:
        sent.append((access, tokens.ACCESS))
    if isinstance(body.get("refresh"), str):
        sent.append((body["refresh"], tokens.REFRESH))
    return sent


@token_endpoint
def logout(request: HttpRequest) -> HttpResponse:
    """Revoke the session of the bearer access token and/or the refresh token sent; 204 either way once valid.
    With `"everywhere": true`, every token login of that user ends (and their sockets close).

    Token-only: browser sessions log out at /accounts/logout/.
    """
    body = read_json(request)
    if body is None:
        return error(400, "Send a JSON object (optionally with \"refresh\" and \"everywhere\").")
    everywhere = body.get("everywhere", False)
    if not isinstance(everywhere, bool):
        return error(400, "\"everywhere\" must be true or false.")
    sent = _tokens_sent(request, body)
    if not sent:
        return error(401, "Send a bearer access token or a refresh token.")
    if everywhere:
        return _logout_everywhere(sent)
    revoked = 0
    for token, token_type in sent:
        try:
            claims = tokens.decode_token(token, expected_type=token_type)
        except tokens.InvalidToken:
            continue
        if not tokens.family_alive(claims):
            continue  # already logged out (or revoked): nothing this token may still end
        tokens.revoke_family(claims)
        revoked += 1
    if not revoked:
        return error(401, "Invalid or expired token.")
    return HttpResponse(status=204)


def _logout_everywhere(sent: list[tuple[str, str]]) -> HttpResponse:
    # Only a login still in force may end the others: a spent or revoked token (a thief's copy, say) may not.
    for token, token_type in sent:
        try:
            user = tokens.user_of_live_login(token, token_type=token_type)
        except tokens.InvalidToken:
            continue
        ended = tokens.end_all_sessions(user, EndReason.LOGOUT_EVERYWHERE)
        logger.info("User %s logged out everywhere: %d token logins ended.", user.pk, ended)
        return HttpResponse(status=204)
    return error(401, "Send a valid access token or the current refresh token of a login still in force.")


# --- In the OpenAPI document ----------------------------------------------------------------------------------
# The views above answer for themselves (their bodies are read by them, not by ninja): these operations only
# route to them and describe them.

class TokenPairOut(Schema):
    access: str
    refresh: str
    expires_in: int


class Refusal(Schema):
    detail: str
    code: str | None = None


class LoginIn(Schema):
    username: str
    password: str
    otp: str | None = None


class RefreshIn(Schema):
    refresh: str


class LogoutIn(Schema):
    refresh: str | None = None
    everywhere: bool = False


def _body(schema: type[Schema]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema.model_json_schema()}}}}


THROTTLED: dict[int | str, Any] = {400: Refusal, 401: Refusal, 429: Refusal, 503: Refusal}
router = Router(tags=["auth"], auth=None)


@router.post("/token/", response={200: TokenPairOut, **THROTTLED}, url_name="api-token", openapi_extra=_body(LoginIn))
def token_operation(request: HttpRequest) -> HttpResponse:
    """Log in: username and password (staff add "otp", their authenticator app's code) → an access and a refresh
    token. Throttled per username and per address."""
    return obtain_token(request)


@router.post("/refresh/", response={200: TokenPairOut, **THROTTLED}, url_name="api-refresh",
             openapi_extra=_body(RefreshIn))
def refresh_operation(request: HttpRequest) -> HttpResponse:
    """Rotate: the refresh token sent is spent and a new pair comes back; a spent one revokes its login."""
    return refresh_token(request)


@router.post("/logout/", response={204: None, **THROTTLED}, url_name="api-logout", openapi_extra=_body(LogoutIn))
def logout_operation(request: HttpRequest) -> HttpResponse:
    """End the login of the bearer access token and/or the refresh token sent; `everywhere` ends all of them."""
    return logout(request)
