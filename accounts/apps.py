from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import throttling, tokens

        tokens.key_ring()  # a bad or weak JWT key refuses the start, not the first login
        assert throttling  # imported to connect user_logged_in to forgiving a counted login attempt


class StaffAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with its default site replaced (Django's documented way): it logs in on the site's
    login pages, with their second factor for staff."""

    default = False  # "accounts" alone still means AccountsConfig
    default_site = "accounts.admin_site.StaffAdminSite"
