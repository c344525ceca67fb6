"""The site's login forms: the password form, where a throttled login is told so, not that its password was
wrong, and the one-time code form of the second step for staff."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts import throttling


def throttled_error(refused: throttling.Throttled) -> ValidationError:
    minutes = max(1, -(-refused.retry_after // 60))
    return ValidationError(
        f"Too many failed attempts for this account or address; try again in {minutes} minute(s).",
        code="throttled",
    )


class LoginForm(AuthenticationForm):
    def get_invalid_login_error(self) -> ValidationError:
        refused = throttling.refusal(self.request)  # type: ignore[arg-type]
        if isinstance(refused, throttling.Throttled):
            return throttled_error(refused)
        return super().get_invalid_login_error()


class CodeForm(forms.Form):
    # Checked in the view (accounts.twofactor.check_code), after the throttle has counted it.
    code = forms.CharField(label="Code", max_length=16, strip=True)
