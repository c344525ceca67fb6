"""JWT access and refresh tokens: signing keys (HS256 or RS256, with previous keys during rotation), issue,
verify with the algorithm pinned per key, and refresh-token families with rotation, reuse detection and logout.

A login starts a *family*: one refresh token is current at a time. Refreshing swaps it for a new one; a
refresh token that was already swapped (stolen, or replayed) revokes the whole family, and so does logout.
Access tokens name their family, so a revoked family's access tokens stop working at once.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from accounts.state import Rotation, auth_state

ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "type", "jti"]


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type, revoked, or its user is gone or inactive."""


class RefreshReused(InvalidToken):
    """A refresh token that was already exchanged came back: its whole family is now revoked."""


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


def _issue(user: AbstractBaseUser, token_type: str, lifetime: timedelta, *, family: str | None,
           jti: str | None = None) -> str:
    now = timezone.now()
    claims: dict[str, Any] = {
        "sub": str(user.pk),
        "type": token_type,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "jti": jti or uuid.uuid4().hex,
    }
    if family is not None:
        claims["fam"] = family
    ring = key_ring()
    return jwt.encode(claims, ring.signing.key, algorithm=ring.signing.algorithm, headers={"kid": ring.signing.kid})


def _lifetime_seconds(lifetime: timedelta) -> int:
    return int(lifetime.total_seconds())


def access_lifetime_seconds() -> int:
    return _lifetime_seconds(settings.JWT_ACCESS_LIFETIME)


def issue_access_token(user: AbstractBaseUser, *, family: str | None = None) -> str:
    """An access token; without a family (server-side tools, tests) it is revocable only by expiring."""
    return _issue(user, ACCESS, settings.JWT_ACCESS_LIFETIME, family=family)


def start_session(user: AbstractBaseUser) -> TokenPair:
    """Log in: a new refresh-token family whose first refresh token is the current one."""
    family, jti = uuid.uuid4().hex, uuid.uuid4().hex
    auth_state().family_start(family, jti, _lifetime_seconds(settings.JWT_REFRESH_LIFETIME))
    return TokenPair(
        access=issue_access_token(user, family=family),
        refresh=_issue(user, REFRESH, settings.JWT_REFRESH_LIFETIME, family=family, jti=jti),
        expires_in=access_lifetime_seconds(),
    )


def issue_refresh_token(user: AbstractBaseUser) -> str:
    return start_session(user).refresh


def rotate_refresh_token(token: str) -> TokenPair:
    """Exchange the family's current refresh token for a new pair; a stale one revokes the family."""
    user, claims = user_for_token(token, expected_type=REFRESH)
    new_jti = uuid.uuid4().hex
    answer = auth_state().family_rotate(claims["fam"], claims["jti"], new_jti,
                                        _lifetime_seconds(settings.JWT_REFRESH_LIFETIME))
    if answer is Rotation.REUSED:
        raise RefreshReused("refresh token reused; its family is revoked")
    if answer is Rotation.REVOKED:
        raise InvalidToken("refresh token revoked")
    return TokenPair(
        access=issue_access_token(user, family=claims["fam"]),
        refresh=_issue(user, REFRESH, settings.JWT_REFRESH_LIFETIME, family=claims["fam"], jti=new_jti),
        expires_in=access_lifetime_seconds(),
    )


def revoke_family(claims: dict[str, Any]) -> None:
    """Logout: the token's family (its refresh token and every access token from it) stops working."""
    if isinstance(claims.get("fam"), str):
        auth_state().family_revoke(claims["fam"])


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
    if not isinstance(claims["jti"], str) or not isinstance(claims.get("fam", ""), str):
        raise InvalidToken("malformed token id")
    if expected_type == REFRESH and "fam" not in claims:
        raise InvalidToken("refresh token without a family")
    return claims


def user_for_token(token: str, *, expected_type: str = ACCESS) -> tuple[AbstractBaseUser, dict[str, Any]]:
    """The active user a valid, unrevoked token names, with the token's claims.

    May raise `accounts.state.Unavailable` when the family store does not answer; callers fail closed.
    """
    claims = decode_token(token, expected_type=expected_type)
    if expected_type == ACCESS and "fam" in claims and not auth_state().family_alive(claims["fam"]):
        raise InvalidToken("session revoked")
    user = get_user_model().objects.filter(pk=claims["sub"], is_active=True).first()
    if user is None:
        raise InvalidToken("unknown or inactive user")
    return user, claims
