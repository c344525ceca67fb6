"""Admin: orders with filters and search, a change form that refuses illegal changes and answers chats, bulk actions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.contrib.auth.models import User
from django.db.models import OuterRef, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from integrations.admin import rotate_tracking_links, tracking_link
from orders import delivery, selectors, services
from orders.models import SHIPMENT_FIELDS, TEXT_LIMITS, ChatMessage, Order, OrderEvent, OrderItem
from orders.states import IllegalTransition, Status, check_transition

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups
    from django_stubs_ext import StrOrPromise


class OrderAdminForm(forms.ModelForm):
    # Not written by the form: OrderAdmin.save_model changes it through services.change_status.
    status = forms.ChoiceField(choices=Status.choices, initial=Status.PENDING)
    # Not a model field: a staff answer posted to the order's chat when the form is saved.
    reply = forms.CharField(
        label=_("Reply to customer"),
        required=False,
        max_length=services.CHAT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Sent to the order's chat as you when you save; the customer sees it live (or on their next "
                    "visit)."),
    )

    # Not written by the form either: OrderAdmin.save_model changes them through services.update_order, which
    # records the order.updated event that open pages are pushed.
    carrier = forms.CharField(max_length=TEXT_LIMITS["carrier"], required=False,
                              help_text="E.g. DHL, UPS, FedEx, DPD, GLS, USPS, Royal Mail: those link the tracking "
                                        "number to the carrier's tracking page.")
    tracking_number = forms.CharField(max_length=TEXT_LIMITS["tracking_number"], required=False)
    promised_at = forms.SplitDateTimeField(required=False, widget=AdminSplitDateTime,
                                           label="Promised delivery", help_text="What the customer was promised.")
    eta = forms.SplitDateTimeField(required=False, widget=AdminSplitDateTime, label="ETA",
                                   help_text="When delivery is now expected.")

    class Meta:
        model = Order
        fields = ["customer", "external_ref", "shipping_address", "internal_note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["status"].initial = self.instance.status
            for name in SHIPMENT_FIELDS:
                self.fields[name].initial = getattr(self.instance, name)

    def shipment(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in SHIPMENT_FIELDS}

    def clean_status(self) -> str:
        status: str = self.cleaned_data["status"]
        if self.instance.pk is not None and status != self.instance.status:
            try:
                check_transition(self.instance.status, status)
            except IllegalTransition as exc:
                raise forms.ValidationError(exc.reason) from None
        return status


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    extra = 0


class OrderEventInline(admin.TabularInline):
    """The order's status timeline, read-only: events are written only by orders.services."""

    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ["seq", "kind", "from_status", "to_status", "changes", "actor", "api_key", "created_at", "published_at"]
    readonly_fields = fields  # type: ignore[assignment]  # names only, no field groups
    ordering = ["-seq"]
    verbose_name = _("status event")
    verbose_name_plural = _("Status timeline")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# An order's change form shows this many of its latest chat messages; the rest are a link away, paged.
CHAT_INLINE_LIMIT = 50


class RecentChatFormSet(BaseInlineFormSet):
    def get_queryset(self) -> Any:
        latest = super().get_queryset().order_by("-created_at", "-id")[:CHAT_INLINE_LIMIT]
        return list(reversed(latest))


class ChatMessageInline(admin.TabularInline):
    """The order's latest chat messages, oldest first (all of them: "Chat history" above, paged); answer with
    the form's "Reply to customer" field."""

    model = ChatMessage
    formset = RecentChatFormSet
    extra = 0
    can_delete = False
    fields = ["created_at", "sender", "text"]
    readonly_fields = fields  # type: ignore[assignment]  # names only, no field groups

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def staff_user(request: HttpRequest) -> User:
    """The admin's user: the admin site lets only logged-in staff in, never the anonymous user."""
    return cast(User, request.user)


def _bulk_change(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order], to: str
) -> None:
    """Change each selected order through the service; report how many moved and which were skipped and why."""
    changed, skipped = 0, []
    for order in queryset.order_by("pk"):
        try:
            services.change_status(order=order, to=to, actor=staff_user(request))
            changed += 1
        except IllegalTransition as exc:
            skipped.append(f"{order.number}: {exc.reason}")
    if changed:
        done = ngettext("%(count)d order is now %(status)s.", "%(count)d orders are now %(status)s.", changed)
        modeladmin.message_user(request, done % {"count": changed, "status": Status(to).label}, messages.SUCCESS)
    if skipped:
        # The reasons are the state machine's, in English (orders/states.py).
        left = ngettext("Skipped %(count)d order: ", "Skipped %(count)d orders: ", len(skipped))
        modeladmin.message_user(request, left % {"count": len(skipped)} + "; ".join(skipped), messages.WARNING)


@admin.action(description=_("Confirm selected orders"))
def confirm_orders(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    _bulk_change(modeladmin, request, queryset, Status.CONFIRMED)


@admin.action(description=_("Start preparing selected orders"))
def prepare_orders(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    _bulk_change(modeladmin, request, queryset, Status.PREPARING)


@admin.action(description=_("Mark selected orders shipped"))
def ship_orders(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    _bulk_change(modeladmin, request, queryset, Status.SHIPPED)


@admin.action(description=_("Cancel selected orders"))
def cancel_orders(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]) -> None:
    _bulk_change(modeladmin, request, queryset, Status.CANCELLED)


def last_chat_from_staff() -> Subquery:
    """Per order: whether its latest chat message came from staff (None: no chat yet)."""
    latest = ChatMessage.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-id")
    return Subquery(latest.values("sender__is_staff")[:1])


class AwaitingReplyFilter(admin.SimpleListFilter):
    """The support queue: orders whose chat ends with a customer's message."""

    title = _("chat")
    parameter_name = "chat"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("awaiting", _("Awaiting staff reply")), ("answered", _("Answered"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "awaiting":
            return queryset.filter(last_chat_from_staff=False)  # type: ignore[misc]  # OrderAdmin's annotation
        if self.value() == "answered":
            return queryset.filter(last_chat_from_staff=True)  # type: ignore[misc]  # OrderAdmin's annotation
        return queryset


class AtRiskFilter(admin.SimpleListFilter):
    """Open orders that will probably miss their promise (the at-risk check, orders/promises.py)."""

    title = _("promise")
    parameter_name = "at_risk"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", gettext("At risk")), ("no", gettext("Not at risk"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Order]) -> QuerySet[Order]:
        if self.value() == "yes":
            return selectors.at_risk_orders(queryset)
        if self.value() == "no":
            return queryset.exclude(pk__in=selectors.at_risk_orders(Order.objects.all()).values("pk"))
        return queryset


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    form = OrderAdminForm
    list_display = ["number", "customer", "status", "seq", "seen_by_customer", "status_changed_at", "created_at",
                    "awaiting_reply", "at_risk"]
    list_filter = ["status", AwaitingReplyFilter, AtRiskFilter, "created_at"]
    search_fields = ["number", "external_ref", "customer__username", "customer__email", "customer__last_name"]
    readonly_fields = ["number", "seq", "seen_by_customer", "status_changed_at", "created_at", "updated_at",
                       "tracking_link", "carrier_tracking_link", "watching_now", "chat_history", "at_risk_since",
                       "at_risk_notified_at"]
    list_select_related = ["customer"]
    inlines = [OrderItemInline, OrderEventInline, ChatMessageInline]
    actions = [confirm_orders, prepare_orders, ship_orders, cancel_orders, rotate_tracking_links]
    tracking_link = tracking_link
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        orders: QuerySet[Order] = super().get_queryset(request).annotate(last_chat_from_staff=last_chat_from_staff())
        return orders

    @admin.display(description=_("Awaiting reply"), boolean=True, ordering="last_chat_from_staff")
    def awaiting_reply(self, obj: Order) -> bool:
        return getattr(obj, "last_chat_from_staff", None) is False

    @admin.display(description=_("At risk"), boolean=True, ordering="at_risk_since")
    def at_risk(self, obj: Order) -> bool:
        return obj.at_risk

    # The form shows status and the shipment fields but never writes them to the model: save_model changes them
    # through the services.
    exclude = ["status", *SHIPMENT_FIELDS]

    def get_fields(self, request: HttpRequest, obj: Order | None = None) -> _FieldGroups:
        fields = [name for name in super().get_fields(request, obj) if name != "status"]
        return [*fields[:1], "status", *fields[1:]]  # right after the customer, where it was

    def save_model(self, request: HttpRequest, obj: Order, form: Any, change: bool) -> None:
        status = form.cleaned_data["status"]
        if not change:
            obj.status = status  # a new order starts at the chosen status (its event 1)
            for name, value in form.shipment().items():  # and with its shipment, in that event too
                setattr(obj, name, value.strip() if isinstance(value, str) else value)
        super().save_model(request, obj, form, change)
        if change and status != obj.status:
            try:
                services.change_status(order=obj, to=status, actor=staff_user(request))
            except IllegalTransition as exc:  # another change won the row lock since the form was checked
                refused = gettext("Status not changed: %(reason)s") % {"reason": exc.reason}
                self.message_user(request, refused, messages.ERROR)
        if change:
            # Only what differs is recorded (one order.updated event); an unchanged form records nothing.
            services.update_order(order=obj, changes=form.shipment(), actor=staff_user(request))
        reply = form.cleaned_data.get("reply", "").strip()
        if reply:
            services.post_chat_message(order_id=obj.pk, sender=staff_user(request), text=reply)
            sent = gettext("Reply sent to %(customer)s's chat.") % {"customer": obj.customer.get_username()}
            self.message_user(request, sent, messages.SUCCESS)

    @admin.display(description=_("Seen by customer"), ordering="seen_seq")
    def seen_by_customer(self, obj: Order) -> str:
        """The customer's delivery receipt (orders.services.mark_seen): which of the order's events they were shown."""
        if obj.seen_at is None:
            return gettext("not yet")
        at = date_format(localtime(obj.seen_at), "DATETIME_FORMAT")
        if obj.seen_seq >= obj.seq:
            return gettext("all (seq %(seq)d), %(at)s") % {"seq": obj.seen_seq, "at": at}
        return gettext("up to seq %(seen)d of %(seq)d, %(at)s") % {"seen": obj.seen_seq, "seq": obj.seq, "at": at}

    @admin.display(description=_("Carrier tracking"))
    def carrier_tracking_link(self, obj: Order) -> str:
        url = obj.carrier_tracking_url
        if url is None:
            return "-" if not obj.tracking_number else gettext("no known tracking page for this carrier")
        return format_html('<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', url, obj.tracking_number)

    @admin.display(description=_("Chat history"))
    def chat_history(self, obj: Order) -> str:
        if obj.pk is None:
            return "-"
        count = obj.chat_messages.count()
        url = reverse("admin:orders_chatmessage_changelist") + f"?order__id__exact={obj.pk}"
        if count > CHAT_INLINE_LIMIT:
            shown = gettext("the latest %(shown)d of %(count)d shown below") % {"shown": CHAT_INLINE_LIMIT,
                                                                                "count": count}
        else:
            shown = ngettext("%(count)d message, shown below", "%(count)d messages, all shown below",
                             count) % {"count": count}
        return format_html('{}; <a href="{}">{}</a>', shown, url, gettext("all messages, paged"))

    @admin.display(description=_("Watching now"))
    def watching_now(self, obj: Order) -> str:
        """Who has this order's page or chat open right now (delivery.presence), so staff know who will see a reply."""
        if obj.pk is None:
            return "-"
        try:
            watchers = delivery.presence().watchers([obj.pk]).get(obj.pk, [])
        except RedisError:
            return gettext("unknown (presence store unavailable)")
        return ", ".join(watchers) or gettext("nobody")


@admin.register(ChatMessage)
class ChatMessageAdmin(admin.ModelAdmin):
    """Every chat message, paged and searchable; read-only (staff answer from the order's change form)."""

    list_display = ["created_at", "order", "sender", "text"]
    list_filter = [("sender__is_staff", admin.BooleanFieldListFilter)]
    search_fields = ["order__number", "text"]
    list_select_related = ["order", "sender"]
    list_per_page = 100
    raw_id_fields = ["order", "sender"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    """The outbox, for ops: which events were pushed and when."""

    list_display = ["order", "seq", "kind", "from_status", "to_status", "actor", "api_key", "created_at",
                    "published_at"]
    list_filter = ["kind", "to_status", ("published_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__number"]
    list_select_related = ["order", "actor", "api_key"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
