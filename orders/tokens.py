"""JWT access and refresh tokens for the API and WebSockets: issued and verified with PyJWT, algorithm pinned."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

ACCESS = "access"
REFRESH = "refresh"


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type, or its user is gone or inactive."""


def _issue(user: AbstractBaseUser, token_type: str, lifetime: timedelta) -> str:
    now = timezone.now()
    claims = {
        "sub": str(user.pk),
        "type": token_type,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=settings.JWT_ALGORITHM)


def issue_access_token(user: AbstractBaseUser) -> str:
    return _issue(user, ACCESS, settings.JWT_ACCESS_LIFETIME)


def issue_refresh_token(user: AbstractBaseUser) -> str:
    return _issue(user, REFRESH, settings.JWT_REFRESH_LIFETIME)


def access_lifetime_seconds() -> int:
    return int(settings.JWT_ACCESS_LIFETIME.total_seconds())


def decode_token(token: str, *, expected_type: str) -> dict[str, Any]:
    """Verify signature (pinned algorithm), exp/nbf/iat, issuer, audience and token type."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[settings.JWT_ALGORITHM],
            issuer=settings.JWT_ISSUER,
            audience=settings.JWT_AUDIENCE,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "type"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if claims.get("type") != expected_type:
        raise InvalidToken(f"expected a {expected_type} token")
    if not isinstance(claims["sub"], str) or not claims["sub"].isdigit():
        raise InvalidToken("malformed subject")
    return claims


def user_for_token(token: str, *, expected_type: str = ACCESS) -> tuple[AbstractBaseUser, dict[str, Any]]:
    """The active user a valid token names, with the token's claims."""
    claims = decode_token(token, expected_type=expected_type)
    user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
    if user is None:
        raise InvalidToken("unknown or inactive user")
    return user, claims
