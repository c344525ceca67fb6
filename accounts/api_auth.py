"""Who calls the JSON API (config/api.py): a bearer credential (an access JWT, or a service API key `otk_…`) or
the Django session, which then needs the CSRF token on unsafe methods. `request.auth` is the user or the ApiKey."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from accounts import apikeys, tokens
from accounts.models import ApiKey


class BearerAuth(HttpBearer):
    """`Authorization: Bearer <access JWT | API key>`. A bearer credential that fails is refused (401) even if a
    session cookie came too: a client is judged by the credential it chose to send."""

    def __call__(self, request: HttpRequest) -> Any:
        credential = tokens.bearer_credential(request.headers)
        if credential is None:
            return None  # the session may authenticate the request
        return self.authenticate(request, credential)

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if token.startswith(apikeys.PREFIX):
            key = apikeys.key_for_secret(token)
            if key is None:
                raise AuthenticationError(401, "Invalid or revoked API key.")
            return key
        try:
            user, _claims = tokens.user_for_token(token)
        except tokens.InvalidToken:
            raise AuthenticationError(401, "Invalid or expired access token.") from None
        request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The browser's Django session (the pages' own calls), with Django's CSRF check on unsafe methods."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)  # checked below, once we know there is a session to protect

    def __call__(self, request: HttpRequest) -> Any:
        return self.authenticate(request, None)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        if not request.user.is_authenticated:
            raise AuthenticationError(401, "Authentication required.")
        if check_csrf(request) is not None:
            raise HttpError(403, "CSRF check failed.")
        return request.user


def require_scope(request: HttpRequest, scope: str) -> None:
    """An API key needs `scope` for the endpoint: 403 naming it if it lacks it. People are judged by their
    permissions instead (orders.selectors)."""
    caller = request.auth  # type: ignore[attr-defined]
    if isinstance(caller, ApiKey) and not caller.allows(scope):
        raise HttpError(403, f"This API key does not have the {scope} scope.")
