"""The site's and the admin's login forms: a throttled login is told so, not that its password was wrong."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts import throttling


class ThrottleAwareLoginMixin:
    request: object

    def get_invalid_login_error(self) -> ValidationError:
        refused = throttling.refusal(self.request)  # type: ignore[arg-type]
        if isinstance(refused, throttling.Throttled):
            minutes = max(1, -(-refused.retry_after // 60))
            return ValidationError(
                f"Too many failed attempts for this account or address; try again in {minutes} minute(s).",
                code="throttled",
            )
        return super().get_invalid_login_error()  # type: ignore[misc]


class LoginForm(ThrottleAwareLoginMixin, AuthenticationForm):
    pass


class AdminLoginForm(ThrottleAwareLoginMixin, AdminAuthenticationForm):
    pass
