"""The admin site, logging in through the site's login pages so that staff pass the same second factor there."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse


class StaffAdminSite(admin.AdminSite):
    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """One login with one second factor for the site and the admin: the admin's own page would log staff in
        by password alone. The site's login page checks `next`, so only this site's pages are returned to."""
        return redirect_to_login(request.GET.get("next") or reverse("admin:index", current_app=self.name),
                                 reverse("login"))
