"""Refresh-token families: one row per token login, in the database because losing them logs every client out."""

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
