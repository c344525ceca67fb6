"""Admin: webhook endpoints (enable, disable), their deliveries with every attempt (resend), and the orders' tracking
links (shown on the order, rotated by an action)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from integrations import tasks, tracking, webhooks
from integrations.models import EVENT_TYPES, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders.models import Order


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=[(name, name) for name in EVENT_TYPES],
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "description", "enabled"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if "url" in cleaned and "events" in cleaned:
            try:
                cleaned["url"], cleaned["events"] = webhooks.clean_endpoint(cleaned["url"], list(cleaned["events"]))
            except webhooks.InvalidEndpoint as exc:
                for field, message in exc.errors.items():
                    self.add_error(field, message)
        return cleaned


@admin.action(description="Enable selected endpoints")
def enable_endpoints(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
    count = queryset.update(enabled=True, disabled_at=None, disabled_reason="", failing_since=None)
    modeladmin.message_user(request, f"{count} endpoint(s) enabled. Resend what they missed from Deliveries.")


@admin.action(description="Disable selected endpoints")
def disable_endpoints(modeladmin: admin.ModelAdmin, request: HttpRequest,
                      queryset: QuerySet[WebhookEndpoint]) -> None:
    count = queryset.filter(enabled=True).update(enabled=False, disabled_at=timezone.now(),
                                                 disabled_reason=f"Disabled by {request.user.get_username()}.")
    modeladmin.message_user(request, f"{count} endpoint(s) disabled.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "events", "enabled", "failing_since", "disabled_at", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    readonly_fields = ["secret", "failing_since", "disabled_at", "disabled_reason", "created_at", "created_by",
                       "deliveries_link"]
    actions = [enable_endpoints, disable_endpoints]

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool) -> None:
        if not change and isinstance(request.user, User):
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Deliveries")
    def deliveries_link(self, obj: WebhookEndpoint) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:integrations_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">{} deliveries</a>', url, obj.deliveries.count())

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Staff learn here too (besides the e-mail) that an endpoint was switched off for failing.
        disabled = WebhookEndpoint.objects.filter(enabled=False).exclude(disabled_reason="").count()
        if disabled and request.method == "GET":
            self.message_user(request, f"{disabled} endpoint(s) are disabled; see “disabled reason”.",
                              messages.WARNING)
        return super().changelist_view(request, extra_context)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "response_status", "duration_ms", "error")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Resend selected deliveries (same webhook-id)")
def resend_deliveries(modeladmin: admin.ModelAdmin, request: HttpRequest,
                      queryset: QuerySet[WebhookDelivery]) -> None:
    ids = webhooks.resend(queryset)
    for delivery_id in ids:
        transaction.on_commit(partial(tasks.enqueue_delivery, delivery_id))
    modeladmin.message_user(request, f"{len(ids)} delivery(ies) queued again.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["webhook_id", "endpoint", "event_type", "event", "status", "attempts", "next_attempt_at",
                    "delivered_at", "created_at"]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["webhook_id", "endpoint__url", "event__order__number"]
    list_select_related = ["endpoint", "event"]
    fields = readonly_fields = ("webhook_id", "endpoint", "event", "event_type", "status", "attempts",
                                "next_attempt_at", "enqueued_at", "leased_until", "delivered_at", "created_at",
                                "payload")
    inlines = [WebhookAttemptInline]
    actions = [resend_deliveries]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Read-only pages; the resend action asks for the change permission.
        return obj is None and super().has_change_permission(request, obj)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    """Every attempt, newest first: what each receiver answered, how fast, and the errors."""

    list_display = ["at", "delivery", "response_status", "duration_ms", "error"]
    list_filter = ["response_status"]
    search_fields = ["delivery__webhook_id", "delivery__endpoint__url"]
    list_select_related = ["delivery"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# On the order admin (orders/admin.py): the order's tracking link, and an action that replaces it.

@admin.display(description="Tracking link")
def tracking_link(modeladmin: admin.ModelAdmin, obj: Order) -> str:
    if obj.pk is None:
        return "-"
    url = tracking.tracking_url(obj)
    return format_html('<a href="{}" rel="noreferrer">{}</a><br><span class="help">Anyone with this link sees the '
                       "order's status, read-only. “Rotate tracking links” replaces it.</span>", url, url)


@admin.action(description="Rotate tracking links (earlier links stop working)")
def rotate_tracking_links(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    orders = list(queryset)
    for order in orders:
        tracking.rotate(order=order)
    modeladmin.message_user(request, f"{len(orders)} tracking link(s) replaced; the old ones no longer open.",
                            messages.SUCCESS)
