"""Admin: each user's token logins, listed on the user's page; "log out everywhere" and, for superusers, "reset
two-factor login" (a lost phone) as actions on users. TOTP devices have their own admin pages (django-otp)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import tokens
from accounts.models import EndReason, TokenFamily

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
