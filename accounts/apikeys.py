"""Service API keys: issue one (its secret shown once), find the key a request presents, revoke."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from accounts.models import ApiKey, Scope

PREFIX = "otk_"
# last_used_at is a hint for people ("is this key still in use?"): one write a minute per key is plenty.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_NAME_LENGTH = 100


class BadScopes(ValueError):
    """Scopes that are not ours, or none at all."""


def hash_secret(secret: str) -> str:
    # The secret has 256 random bits: a fast hash is enough (there is nothing to guess), and it can be looked up.
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(scopes: list[str]) -> list[str]:
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in Scope.values]
    if unknown or not cleaned:
        raise BadScopes(f"Unknown or missing scope(s) {', '.join(unknown) or '(none)'}; "
                        f"choose from {', '.join(Scope.values)}.")
    return cleaned


def issue_api_key(*, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key and its secret: the secret is returned once and only its hash is stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=secret[:12], hashed_key=hash_secret(secret),
                                scopes=parse_scopes(scopes))
    return key, secret


def key_for_secret(secret: str) -> ApiKey | None:
    """The active key with this secret (and its use noted), or None for a wrong or revoked one."""
    if not secret.startswith(PREFIX):
        return None
    key = ApiKey.objects.filter(hashed_key=hash_secret(secret), revoked_at=None).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def revoke_api_key(key: ApiKey) -> bool:
    """Revoke `key` at once; False if it already was."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now()))
