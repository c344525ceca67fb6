"""A new password ends the user's token logins: the hook Django calls on every saved password change."""

from __future__ import annotations

from typing import Any

from accounts import tokens
from accounts.models import EndReason


class EndTokenLoginsOnPasswordChange:
    """In AUTH_PASSWORD_VALIDATORS for its `password_changed`, which Django calls after `set_password()` and
    `save()` (the admin's password form, password reset and change forms, `manage.py changepassword`), and not
    when it only re-hashes the same password. Browser sessions end by themselves: their hash is the password's.
    It checks nothing."""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            tokens.end_all_sessions(user, EndReason.PASSWORD_CHANGED)

    def get_help_text(self) -> str:
        return "Changing the password logs out every app and API client signed in with the old one."
