"""The site's login pages: the password page, and for staff the second step that asks for the authenticator
app's code (or sets the app up on a first login). The admin logs in here too (accounts.admin_site)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import RedirectURLMixin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import FormView

from accounts import throttling, twofactor
from accounts.forms import CodeForm, LoginForm, throttled_error
from accounts.state import Unavailable

logger = logging.getLogger(__name__)


class LoginView(auth_views.LoginView):
    """Django's login page; a password that needs a second factor leads on to the code page instead of in."""

    authentication_form = LoginForm

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        user = form.get_user()
        if not twofactor.required(user):
            return super().form_valid(form)
        try:
            # The password was right, so it is not a failed attempt; the code is counted as one of its own.
            throttling.succeeded(self.request, username=user.get_username())
        except Unavailable as exc:
            logger.warning("Successful password not forgiven, auth state unavailable: %s", exc)
        twofactor.begin_login(self.request, user)
        return HttpResponseRedirect(f"{reverse('login-code')}?{urlencode({'next': self.get_success_url()})}")


@method_decorator([sensitive_post_parameters(), csrf_protect, never_cache], name="dispatch")
class SecondFactorView(RedirectURLMixin, FormView):  # type: ignore[type-arg]  # generic in the stubs only
    """Step two for staff: the code from their authenticator app; without a confirmed app yet, set one up here
    (QR code and secret), confirmed by its first code. Either way the user is logged in only by a right code."""

    form_class = CodeForm
    template_name = "registration/login_code.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        pending = twofactor.pending_login(request)
        if pending is None:
            messages.info(request, "Your login expired before its code was entered; log in again.")
            return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': self.get_success_url()})}")
        self.pending = pending
        self.device = twofactor.confirmed_device(self.pending.user)
        self.enrolling = self.device is None
        if self.device is None:
            self.device = twofactor.enrolment_device(self.pending.user)
        return super().dispatch(request, *args, **kwargs)

    def get_default_redirect_url(self) -> str:
        return resolve_url("/")

    def form_valid(self, form: CodeForm) -> HttpResponse:
        try:
            device = twofactor.check_code(self.request, user=self.pending.user, device=self.device,
                                          code=form.cleaned_data["code"])
        except throttling.Throttled as exc:
            form.add_error(None, throttled_error(exc))
            return self.form_invalid(form)
        except twofactor.CodeRefused as exc:
            form.add_error("code", ValidationError(exc.message, code=exc.code))
            return self.form_invalid(form)
        if self.enrolling:
            twofactor.confirm_enrolment(device)
        # user_logged_in gives back the code's counted attempt (accounts.throttling).
        twofactor.finish_login(self.request, self.pending, device)
        return HttpResponseRedirect(self.get_success_url())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            enrolling=self.enrolling,
            username=self.pending.user.get_username(),
            next=self.get_redirect_url(),
        )
        if self.enrolling:
            context.update(secret=twofactor.secret(self.device), qr_svg=twofactor.qr_code_svg(self.device))
        return context
