"""JWT access and refresh tokens: signing keys (HS256 or RS256, with previous keys during rotation), issue,
verify with the algorithm pinned per key, and refresh-token families with rotation, reuse detection and logout.

A login starts a *family* (accounts.models.TokenFamily, in the database): one refresh token is current at a
time. Refreshing swaps it for a new one; a refresh token that was already swapped (stolen, or replayed)
revokes the whole family, and so do logout, "log out everywhere", a password change and the admin. Access
tokens name their family, so a revoked family's access tokens stop working at once. However often it is
refreshed, a family ends JWT_REFRESH_ABSOLUTE_LIFETIME after its login.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

from accounts.models import EndReason, TokenFamily
from accounts.signals import logins_ended

ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "type", "jti"]


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type, revoked, or its user is gone or inactive."""


class RefreshReused(InvalidToken):
    """A refresh token that was already exchanged came back: its whole family is now revoked."""


class LoginTooOld(InvalidToken):
    """The family is older than JWT_REFRESH_ABSOLUTE_LIFETIME: however recently refreshed, it ends."""


@dataclass(frozen=True)
class VerifyingKey:
    kid: str
    algorithm: str
    key: Any


@dataclass(frozen=True)
class KeyRing:
    signing: VerifyingKey  # its `key` is the secret or private key used to sign
    verifying: dict[str, VerifyingKey]  # by kid: the current key first, then previous ones


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


def _kid(material: bytes) -> str:
    # A fingerprint, not the key: lets a verifier pick the key without trying each one.
    return hashlib.sha256(material).hexdigest()[:16]


def _hmac_key(secret: str) -> VerifyingKey:
    return VerifyingKey(_kid(b"HS256:" + secret.encode()), "HS256", secret)


def _rsa_public_key(pem: str) -> VerifyingKey:
    """A verifying key from a PEM public key, or from a private key's public half."""
    data = pem.encode()
    key: Any
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise ImproperlyConfigured("RS256 keys must be RSA keys of at least 2048 bits.")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return VerifyingKey(_kid(b"RS256:" + der), "RS256", key)


def _previous_keys(value: str) -> list[VerifyingKey]:
    """JWT_PREVIOUS_SIGNING_KEYS: PEM blocks are RS256 keys; whatever else, split on commas, HS256 secrets."""
    pems = re.findall(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", value, flags=re.DOTALL)
    rest = re.sub(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", "", value, flags=re.DOTALL)
    secrets = [item.strip() for item in rest.split(",") if item.strip()]
    if any(len(secret.encode()) < 32 for secret in secrets):
        # Also what a secret containing a comma turns into: refuse it rather than verify with a fragment.
        raise ImproperlyConfigured("Each previous HS256 key in JWT_PREVIOUS_SIGNING_KEYS needs at least 32 bytes.")
    return [_rsa_public_key(pem) for pem in pems] + [_hmac_key(secret) for secret in secrets]


@lru_cache(maxsize=8)
def _key_ring(algorithm: str, signing_key: str, private_key: str, previous: str) -> KeyRing:
    if algorithm == "RS256":
        private = serialization.load_pem_private_key(private_key.encode(), password=None)
        current = _rsa_public_key(private_key)
        signing = VerifyingKey(current.kid, "RS256", private)
    else:
        current = signing = _hmac_key(signing_key)
    verifying = {current.kid: current}
    for key in _previous_keys(previous):
        verifying.setdefault(key.kid, key)
    return KeyRing(signing=signing, verifying=verifying)


def key_ring() -> KeyRing:
    return _key_ring(settings.JWT_ALGORITHM, settings.JWT_SIGNING_KEY, settings.JWT_PRIVATE_KEY,
                     settings.JWT_PREVIOUS_SIGNING_KEYS)


def _issue(user: User, token_type: str, expires_at: datetime, *, family: str | None,
           jti: str | None = None) -> str:
    now = timezone.now()
    claims: dict[str, Any] = {
        "sub": str(user.pk),
        "type": token_type,
        "iat": now,
        "nbf": now,
        "exp": expires_at,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "jti": jti or uuid.uuid4().hex,
    }
    if family is not None:
        claims["fam"] = family
    ring = key_ring()
    return jwt.encode(claims, ring.signing.key, algorithm=ring.signing.algorithm, headers={"kid": ring.signing.kid})


def access_lifetime_seconds() -> int:
    return int(settings.JWT_ACCESS_LIFETIME.total_seconds())


def issue_access_token(user: User, *, family: str | None = None) -> str:
    """An access token; without a family (server-side tools, tests) it is revocable only by expiring."""
    return _issue(user, ACCESS, timezone.now() + settings.JWT_ACCESS_LIFETIME, family=family)


def _pair(user: User, family: TokenFamily) -> TokenPair:
    """Access and refresh tokens of the family's current refresh token; neither outlives the family."""
    now = timezone.now()
    # Whole seconds, as the JWT's exp claim keeps it: expires_in then never promises more than the token lasts.
    access_expires_at = min(now + settings.JWT_ACCESS_LIFETIME, family.expires_at).replace(microsecond=0)
    return TokenPair(
        access=_issue(user, ACCESS, access_expires_at, family=family.pk.hex),
        refresh=_issue(user, REFRESH, family.expires_at, family=family.pk.hex, jti=family.current_jti),
        expires_in=max(int((access_expires_at - now).total_seconds()), 0),
    )


def start_session(user: User) -> TokenPair:
    """Log in: a new refresh-token family whose first refresh token is the current one."""
    now = timezone.now()
    # The user's families whose last refresh token has expired are of no use any more, revoked or not.
    TokenFamily.objects.filter(user=user, expires_at__lt=now).delete()
    family = TokenFamily.objects.create(
        user=user, current_jti=uuid.uuid4().hex, created_at=now,
        expires_at=min(now + settings.JWT_REFRESH_LIFETIME, now + settings.JWT_REFRESH_ABSOLUTE_LIFETIME),
    )
    return _pair(user, family)


def issue_refresh_token(user: User) -> str:
    return start_session(user).refresh


def rotate_refresh_token(token: str) -> TokenPair:
    """Exchange the family's current refresh token for a new pair; a stale one revokes the family.

    The swap is one conditional UPDATE (`WHERE current_jti = <the token's>`): of two refreshes racing with
    the same token exactly one wins, and the other is a reuse.
    """
    user, claims = user_for_token(token, expected_type=REFRESH)
    now = timezone.now()
    family = TokenFamily.objects.filter(pk=claims["fam"], user=user).first()
    if family is None or family.revoked_at is not None:
        raise InvalidToken("refresh token revoked")
    ends_at = family.created_at + settings.JWT_REFRESH_ABSOLUTE_LIFETIME
    if now >= ends_at:
        raise LoginTooOld("the login reached its absolute lifetime")
    new_jti, expires_at = uuid.uuid4().hex, min(now + settings.JWT_REFRESH_LIFETIME, ends_at)
    rotated = TokenFamily.objects.filter(pk=family.pk, current_jti=claims["jti"], revoked_at=None).update(
        current_jti=new_jti, rotated_at=now, expires_at=expires_at)
    if not rotated:
        if _revoke(TokenFamily.objects.filter(pk=family.pk), EndReason.REUSE):
            raise RefreshReused("refresh token reused; its family is revoked")
        raise InvalidToken("refresh token revoked")  # by a logout that came in between
    family.current_jti, family.rotated_at, family.expires_at = new_jti, now, expires_at
    return _pair(user, family)


def _revoke(families: models.QuerySet[TokenFamily], reason: EndReason) -> int:
    """End the families not already ended; how many that was."""
    return families.filter(revoked_at=None).update(revoked_at=timezone.now(), revoke_reason=reason)


def revoke_family(claims: dict[str, Any], reason: EndReason = EndReason.LOGOUT) -> None:
    """Logout: the token's family (its refresh token and every access token from it) stops working."""
    if "fam" in claims and _revoke(TokenFamily.objects.filter(pk=claims["fam"], user_id=claims["sub"]), reason):
        logins_ended.send(sender=TokenFamily, user_id=int(claims["sub"]))


def end_all_sessions(user: User, reason: EndReason) -> int:
    """Log out everywhere: every token login of the user ends, and so do their open sockets."""
    ended = _revoke(TokenFamily.objects.filter(user=user), reason)
    if ended:
        logins_ended.send(sender=TokenFamily, user_id=user.pk)
    return ended


def family_alive(claims: dict[str, Any]) -> bool:
    """Whether the token's family (if it names one) is still in force; one primary-key read."""
    if "fam" not in claims:
        return True
    return TokenFamily.objects.filter(pk=claims["fam"], user_id=claims["sub"], revoked_at=None).exists()


def _verifying_key(token: str) -> VerifyingKey:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    ring = key_ring()
    if kid is None:
        # Tokens from before key ids were stamped: only the current key may have signed them.
        return ring.verifying[ring.signing.kid]
    if not isinstance(kid, str) or kid not in ring.verifying:
        raise InvalidToken("unknown signing key")
    return ring.verifying[kid]


def _is_family_id(value: Any) -> bool:
    try:
        return isinstance(value, str) and uuid.UUID(hex=value).hex == value
    except ValueError:
        return False


def bearer_credential(headers: Mapping[str, str]) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` header (the scheme is case-insensitive, RFC 9110),
    "" for a bearer header without one, None for no header or another scheme."""
    scheme, _, credential = headers.get("Authorization", "").strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else None


def decode_token(token: str, *, expected_type: str) -> dict[str, Any]:
    """Verify signature (algorithm pinned by the key), exp/nbf/iat, issuer, audience and token type."""
    key = _verifying_key(token)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            issuer=settings.JWT_ISSUER,
            audience=settings.JWT_AUDIENCE,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if claims.get("type") != expected_type:
        raise InvalidToken(f"expected a {expected_type} token")
    subject = claims["sub"]
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()) or len(subject) > 18:
        raise InvalidToken("malformed subject")
    if not isinstance(claims["jti"], str) or not _is_family_id(claims.get("fam", uuid.UUID(int=0).hex)):
        raise InvalidToken("malformed token id")
    if expected_type == REFRESH and "fam" not in claims:
        raise InvalidToken("refresh token without a family")
    return claims


def user_for_token(token: str, *, expected_type: str = ACCESS) -> tuple[User, dict[str, Any]]:
    """The active user a valid token names, with the token's claims; for an access token, its family must not
    be revoked. One query: the user, joined with the family when the token names one."""
    claims = decode_token(token, expected_type=expected_type)
    users = get_user_model().objects.filter(pk=claims["sub"], is_active=True)
    if expected_type == ACCESS and "fam" in claims:
        users = users.filter(token_families__pk=claims["fam"], token_families__revoked_at=None)
    user = users.first()
    if user is None:
        raise InvalidToken("unknown or inactive user, or session revoked")
    return user, claims


def user_of_live_login(token: str, *, token_type: str) -> User:
    """The user of a token whose login is still in force: an access token of an unrevoked family, or its
    family's current (not yet spent) refresh token."""
    user, claims = user_for_token(token, expected_type=token_type)
    if token_type == REFRESH and not TokenFamily.objects.filter(
        pk=claims["fam"], user=user, current_jti=claims["jti"], revoked_at=None
    ).exists():
        raise InvalidToken("refresh token spent or revoked")
    return user
