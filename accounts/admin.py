"""Admin: each user's token logins, listed on the user's page; "log out everywhere" and, for superusers, "reset
two-factor login" (a lost phone) as actions on users; service API keys (created with their secret shown once, listed,
revoked). TOTP devices have their own admin pages (django-otp)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import apikeys, tokens
from accounts.models import ApiKey, EndReason, Scope, TokenFamily

User = get_user_model()


class TokenFamilyInline(admin.TabularInline):
    """Read-only: a token login is started by logging in and ended by the action below, never edited."""

    model = TokenFamily
    fields = ("created_at", "rotated_at", "expires_at", "revoked_at", "revoke_reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(User)


@admin.register(User)
class AccountUserAdmin(UserAdmin):
    inlines = [TokenFamilyInline]
    actions = ["end_token_logins", "reset_two_factor"]

    @admin.action(description="Log out everywhere: end the selected users' token logins", permissions=["change"])
    def end_token_logins(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        ended = sum(tokens.end_all_sessions(user, EndReason.ADMIN) for user in queryset)
        self.message_user(request, f"Ended {ended} token login(s) of {queryset.count()} user(s); their open "
                                   "sockets close within the re-check interval.", messages.SUCCESS)

    @admin.action(description="Reset two-factor login (lost phone): remove the selected users' authenticator apps "
                              "and end their token logins", permissions=["reset_two_factor"])
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # Their sessions end too: a session counts as verified only while its device exists (accounts.twofactor).
        # The app on the lost phone may also hold API tokens, so those end with it.
        removed, _ = TOTPDevice.objects.filter(user__in=queryset).delete()
        ended = sum(tokens.end_all_sessions(user, EndReason.ADMIN) for user in queryset)
        self.message_user(request, f"Removed {removed} authenticator app(s) and ended {ended} token login(s) of "
                                   f"{queryset.count()} user(s); each sets up a new app at their next login.",
                          messages.SUCCESS)

    def has_reset_two_factor_permission(self, request: HttpRequest) -> bool:
        # Not any staff with "change user": resetting someone's second factor is taking over their login's half.
        return bool(request.user.is_superuser)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """A key's secret exists only in the page that answers its creation; afterwards it is a name, a prefix and a
    hash. Keys are revoked, not deleted: the order events they made name them."""

    form = ApiKeyForm
    list_display = ["name", "prefix", "scope_list", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    @admin.display(description="scopes")
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, secret = apikeys.issue_api_key(name=obj.name, scopes=form.cleaned_data["scopes"])
        obj.__dict__.update({field.attname: getattr(key, field.attname) for field in ApiKey._meta.concrete_fields})
        obj._state.adding = False
        request.new_api_key_secret = secret  # type: ignore[attr-defined]  # for response_add, this request only

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        # The secret is shown in this answer and nowhere else: not in a message (a cookie), not in a redirect.
        context = {**self.admin_site.each_context(request), "opts": self.opts, "key": obj,
                   "secret": request.new_api_key_secret, "title": "API key created"}  # type: ignore[attr-defined]
        response = TemplateResponse(request, "admin/accounts/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected API keys (at once, for good)", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = sum(apikeys.revoke_api_key(key) for key in queryset)
        self.message_user(request, f"Revoked {revoked} API key(s); requests with them now get 401.", messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
