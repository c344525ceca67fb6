"""Refresh-token families (one row per token login) and service API keys: in the database, because losing them
logs every client out."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class EndReason(models.TextChoices):
    LOGOUT = "logout", "logged out"
    REUSE = "reuse", "a spent refresh token came back"
    LOGOUT_EVERYWHERE = "logout_everywhere", "logged out everywhere"
    PASSWORD_CHANGED = "password_changed", "password changed"
    ADMIN = "admin", "ended by an admin"


class TokenFamily(models.Model):
    """A token login: the one refresh token that is current (by `jti`), and when the login ends.

    The family's id is the `fam` claim of its refresh and access tokens. A revoked family stays as a row (who
    ended it and why) until its last refresh token has expired; then the user's next login deletes it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_families")
    current_jti = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)
    # When the current refresh token expires: sliding with each rotation, never past the absolute lifetime.
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, choices=EndReason.choices, blank=True)

    class Meta:
        verbose_name = "token login"
        verbose_name_plural = "token logins"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class Scope(models.TextChoices):
    ORDERS_READ = "orders:read", "orders:read (see every order)"
    ORDERS_WRITE = "orders:write", "orders:write (create orders, change their status)"
    WEBHOOKS_MANAGE = "webhooks:manage", "webhooks:manage (webhook endpoints)"


class ApiKey(models.Model):
    """A shop's system calling the API (accounts.apikeys): named, scoped, stored only as a hash; revoked, never
    deleted, since the order events it made name it."""

    name = models.CharField(max_length=100)
    # The key's first characters, to tell keys apart in the admin; far too few to use it.
    prefix = models.CharField(max_length=12, editable=False)
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return self.active and scope in self.scopes
