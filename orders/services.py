"""Writes: new orders (intake), status changes (state machine, OrderEvent), shipment and promise changes
(`order.updated` events), the outbox mark, delivery receipts, chat messages, status e-mails, at-risk flags and
their notices."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from accounts.models import ApiKey
from orders import promises
from orders.carriers import carrier_tracking_url
from orders.models import SHIPMENT_FIELDS, STATUS_STAMP, TEXT_LIMITS, ChatMessage, Order, OrderEvent, OrderItem
from orders.signals import chat_message_posted, order_at_risk, status_changed
from orders.states import Status, check_transition

logger = logging.getLogger(__name__)

# Who changes an order: a person, a shop's system (its API key), or nobody in particular (a shell, a migration).
Actor = User | ApiKey | None


def _stamp_actor(event: OrderEvent, actor: Actor) -> None:
    if isinstance(actor, ApiKey):
        event.api_key = actor
    else:
        event.actor = actor


@dataclass(frozen=True)
class NewItem:
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Shipment:
    """An order's shipment and promise at intake (all optional)."""

    carrier: str = ""
    tracking_number: str = ""
    promised_at: datetime | None = None
    eta: datetime | None = None


class DuplicateExternalRef(Exception):
    """An order with this `external_ref` exists already; `order_id` is its id."""

    def __init__(self, order_id: int) -> None:
        super().__init__(f"Order {order_id} already has this external_ref.")
        self.order_id = order_id


def customer_for_email(*, email: str, name: str) -> User:
    """The customer with this e-mail address, or a new one without a password (they follow their orders by
    tracking link, or set a password through the site later)."""
    users = get_user_model().objects
    existing = users.filter(email__iexact=email).order_by("pk").first()
    if existing is not None:
        return existing
    first, _, last = name.strip().partition(" ")
    # The address is the username: unique, so two intakes for one new customer at once make one account.
    username = email.lower()[:150]
    with transaction.atomic():
        customer, created = users.get_or_create(
            username=username, defaults={"email": email, "first_name": first[:150], "last_name": last[:150]}
        )
        if created:
            customer.set_unusable_password()
            customer.save(update_fields=["password"])
    return customer


def create_order(
    *,
    customer: User,
    items: list[NewItem],
    shipping_address: str = "",
    currency: str = "EUR",
    external_ref: str = "",
    shipment: Shipment = Shipment(),
    actor: Actor,
) -> Order:
    """Write a new order with its items and its first event (seq 1, `pending`) in one transaction, which
    `status_changed` has pushed (staff streams) once it commits. DuplicateExternalRef if the shop's
    `external_ref` is taken."""
    try:
        with transaction.atomic():
            order = Order(customer=customer, shipping_address=shipping_address, currency=currency,
                          external_ref=external_ref, carrier=shipment.carrier.strip(),
                          tracking_number=shipment.tracking_number.strip(), promised_at=shipment.promised_at,
                          eta=shipment.eta)
            order.save()  # writes the first event and sends status_changed (Order.save)
            OrderItem.objects.bulk_create(
                [OrderItem(order=order, name=item.name, quantity=item.quantity, unit_price=item.unit_price)
                 for item in items]
            )
            first = OrderEvent.objects.get(order=order, seq=1)
            _stamp_actor(first, actor)
            first.save(update_fields=["actor", "api_key"])
    except IntegrityError:
        existing = Order.objects.filter(external_ref=external_ref).values_list("pk", flat=True).first()
        if external_ref and existing is not None:
            raise DuplicateExternalRef(existing) from None
        raise
    return order


def take_order(
    *,
    email: str,
    name: str,
    items: list[NewItem],
    shipping_address: str = "",
    currency: str = "EUR",
    external_ref: str = "",
    shipment: Shipment = Shipment(),
    actor: Actor,
) -> Order:
    """Intake: a shop's order for the customer with this e-mail address (found, or made without a password), in
    one transaction. DuplicateExternalRef, before any customer is made, if `external_ref` is taken."""
    with transaction.atomic():
        taken = Order.objects.filter(external_ref=external_ref).values_list("pk", flat=True).first()
        if external_ref and taken is not None:
            raise DuplicateExternalRef(taken)
        customer = customer_for_email(email=email, name=name)
        return create_order(customer=customer, items=items, shipping_address=shipping_address, currency=currency,
                            external_ref=external_ref, shipment=shipment, actor=actor)


def change_status(*, order: Order, to: str, actor: Actor) -> OrderEvent:
    """Move `order` to status `to` on behalf of `actor` and return the event that records it.

    The one way a status changes (API, admin form and bulk actions, shell): lock the row, check the state
    machine (IllegalTransition with a reason if not allowed), stamp the next seq, write the Order and its
    OrderEvent in one transaction. `status_changed` then has the push enqueued when that transaction commits.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        check_transition(locked.status, to)
        now = timezone.now()
        event = OrderEvent(order=locked, seq=locked.seq + 1, from_status=locked.status, to_status=to)
        _stamp_actor(event, actor)
        Order.objects.filter(pk=locked.pk).write_status_stamp(status=to, seq=event.seq, at=now)
        event.save()
        status_changed.send(sender=Order, event=event)
    order.refresh_from_db(fields=[*STATUS_STAMP, "updated_at"])
    return event


def _as_json(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def update_order(*, order: Order, changes: Mapping[str, str | datetime | None], actor: Actor) -> OrderEvent | None:
    """Change the order's shipment and promise fields (carrier, tracking_number, promised_at, eta) on behalf of
    `actor`; return the `updated` event that records what actually changed, or None when nothing did (no event).

    The one way these fields change (API PATCH, admin form, shell): lock the row, compare with what is stored,
    stamp the next seq, write the Order and its OrderEvent in one transaction. The event rides the order's seq
    stream like a status change, so the push, `after_seq` replay and webhooks all read it from the same log.
    Text is stripped; times must be timezone-aware (ValueError otherwise, as for an unknown field).
    """
    unknown = sorted(set(changes) - set(SHIPMENT_FIELDS))
    if unknown:
        raise ValueError(f"update_order changes only {', '.join(SHIPMENT_FIELDS)}, not {', '.join(unknown)}.")
    wanted: dict[str, str | datetime | None] = {}
    for name, value in changes.items():
        if name in ("carrier", "tracking_number"):
            if not isinstance(value, str | None):
                raise ValueError(f"{name} must be text.")
            text = (value or "").strip()  # None clears it, as ""
            if len(text) > TEXT_LIMITS[name]:
                raise ValueError(f"{name} is too long.")
            wanted[name] = text
        else:
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise ValueError(f"{name} must be a timezone-aware datetime or None.")
            wanted[name] = value
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        changed = {name: value for name, value in wanted.items() if getattr(locked, name) != value}
        if not changed:
            return None
        recorded: dict[str, str | None] = {name: _as_json(value) for name, value in changed.items()}
        if {"carrier", "tracking_number"} & set(changed):
            carrier = str(changed.get("carrier", locked.carrier))
            recorded["carrier_tracking_url"] = carrier_tracking_url(
                carrier, str(changed.get("tracking_number", locked.tracking_number)))
        event = OrderEvent(order=locked, seq=locked.seq + 1, kind=OrderEvent.Kind.UPDATED, from_status=locked.status,
                           to_status=locked.status, changes=recorded)
        _stamp_actor(event, actor)
        Order.objects.filter(pk=locked.pk).write_update(seq=event.seq, at=timezone.now(), fields=changed)
        event.save()
        status_changed.send(sender=Order, event=event)
    order.refresh_from_db(fields=[*STATUS_STAMP, *SHIPMENT_FIELDS, "updated_at"])
    return event


def mark_published(event_id: int) -> bool:
    """Record the first successful push of an event; a re-run changes nothing and returns False."""
    return bool(OrderEvent.objects.filter(pk=event_id, published_at=None).update(published_at=timezone.now()))


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt that moved an order's `seen_seq`: the customer saw event `seq` (and every one before it)
    at `at`; `committed_at` is when that event was written, for the commit-to-seen latency."""

    order_id: int
    seq: int
    at: datetime
    committed_at: datetime | None


def mark_seen(*, order_id: int, seq: int, customer_id: int | None) -> Receipt | None:
    """Record that the order's customer has been shown its events up to `seq` (a `seen` frame); None if that
    changes nothing.

    `customer_id` is who says so: the receipt counts only if they are the order's customer (staff watching do not
    stand in for them); None is a guest whose tracking link for this order the caller has checked. Sent for every
    frame a page shows, so it is one conditional UPDATE: it moves only forward (a stale or repeated receipt matches
    no row) and never past the order's own `seq`. Only a receipt that moved reads the event's commit time.
    """
    orders = Order.objects.filter(pk=order_id, seen_seq__lt=seq, seq__gte=seq)
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
    at = timezone.now()
    if not orders.write_receipt(seq=seq, at=at):
        return None
    committed_at = OrderEvent.objects.filter(order_id=order_id, seq=seq).values_list("created_at", flat=True).first()
    return Receipt(order_id=order_id, seq=seq, at=at, committed_at=committed_at)


CHAT_MAX_LENGTH = 2000


class ChatRateLimited(Exception):
    """The sender posted CHAT_MESSAGES_PER_MINUTE messages in the last minute (all their tabs together)."""


def post_chat_message(*, order_id: int, sender: User, text: str) -> ChatMessage:
    """Store a chat message from an authenticated sender; once committed, `chat_message_posted` has it delivered
    to the order's chat room."""
    # Counted in the database, so the limit holds per user across tabs and server processes.
    recent = ChatMessage.objects.filter(sender=sender, created_at__gte=timezone.now() - timedelta(minutes=1))
    if recent.count() >= settings.CHAT_MESSAGES_PER_MINUTE:
        raise ChatRateLimited
    message = ChatMessage.objects.create(order_id=order_id, sender=sender, text=text.strip()[:CHAT_MAX_LENGTH])
    transaction.on_commit(partial(chat_message_posted.send, sender=ChatMessage, message=message))
    return message


def email_status_change(*, event_id: int) -> bool:
    """E-mail the customer one status change, at most once: claim the event, send, release the claim on failure."""
    from integrations.tracking import tracking_url

    event = OrderEvent.objects.select_related("order__customer").filter(pk=event_id).first()
    if event is None or not event.is_status_change:
        return False
    customer = event.order.customer
    if not customer.email:
        logger.info("Order %s: customer %s has no e-mail address; status e-mail skipped", event.order, customer.pk)
        return False
    if not OrderEvent.objects.filter(pk=event_id, emailed_at=None).update(emailed_at=timezone.now()):
        return False
    # In the site's language (LANGUAGE_CODE): no per-customer language is stored (docs/pages.md).
    with translation.override(settings.LANGUAGE_CODE):
        context: dict[str, object] = {
            "language": settings.LANGUAGE_CODE,
            "name": customer.get_short_name() or customer.get_username(),
            "order": event.order,
            "status": str(Status(event.to_status).label),
            "previous": str(Status(event.from_status).label),
            # The guest link works without logging in (integrations/tracking.py); the order page needs the account.
            "tracking_url": tracking_url(event.order),
            "page_url": settings.SITE_URL + reverse("order-page", args=[event.order_id]) if settings.SITE_URL else "",
            "support_email": settings.SUPPORT_EMAIL,
        }
        subject = render_to_string("emails/status_change_subject.txt", context).strip()
        context["subject"] = subject
        message = EmailMultiAlternatives(subject, render_to_string("emails/status_change.txt", context),
                                         to=[customer.email])
        message.attach_alternative(render_to_string("emails/status_change.html", context), "text/html")
    try:
        message.send()
    except Exception:
        # Not sent: give the claim back so the task's retry can send it. The error propagates to the retry.
        OrderEvent.objects.filter(pk=event_id).update(emailed_at=None)
        raise
    return True


def flag_orders_at_risk(*, now: datetime) -> list[Order]:
    """The at-risk check: flag each open order that will probably miss its promise (orders/promises.py), and
    offer the notice again to flagged customers whose notice e-mail never went out (a broker down at commit)."""
    margin = timedelta(minutes=settings.AT_RISK_MARGIN_MINUTES)
    found = promises.orders_missing_promise(now=now, dwells=promises.usual_dwells(now=now), margin=margin)
    flagged = [late.order for late in found if flag_at_risk(order=late.order, expected=late.expected, now=now)]
    if flagged:
        logger.info("%d order(s) will probably miss their promise: %s", len(flagged),
                    ", ".join(order.number for order in flagged))
    # A day of second chances, then the log line of the failed task is all (a bad address fails every time).
    for order in promises.flagged_unnotified(flagged_since=now - timedelta(days=1), flagged_before=now):
        order_at_risk.send(sender=Order, order=order)
    return flagged


def flag_at_risk(*, order: Order, expected: datetime, now: datetime) -> bool:
    """Flag an open order at risk of missing its promise, once: stamp `at_risk_since`, move its `eta` to the
    expected delivery (an `order.updated` event: open pages get the new ETA live, `after_seq` replays it) and have
    the customer's notice e-mailed once this commits. An ETA already later than the estimate (staff's word) stays.
    False when the order was flagged already or is no longer on its way."""
    with transaction.atomic():
        claimed = Order.objects.filter(pk=order.pk, at_risk_since=None, status__in=promises.EN_ROUTE)
        if not claimed.update(at_risk_since=now):
            return False
        current = Order.objects.values_list("eta", flat=True).get(pk=order.pk)
        eta = promises.whole_minute_after(expected)
        update_order(order=order, changes={"eta": max(eta, current) if current else eta}, actor=None)
        order.refresh_from_db(fields=["at_risk_since", "at_risk_notified_at"])
        order_at_risk.send(sender=Order, order=order)
    return True


def email_at_risk_notice(*, order_id: int) -> bool:
    """E-mail the customer of an at-risk order its one proactive notice with the new ETA: claim, send, release the
    claim on failure (the task's retry sends it). False when sent already, closed meanwhile, or no address."""
    from integrations.tracking import tracking_url

    order = Order.objects.select_related("customer").filter(pk=order_id).first()
    if order is None or order.at_risk_since is None or order.status not in promises.EN_ROUTE:
        return False
    customer = order.customer
    if not customer.email:
        logger.info("Order %s: customer %s has no e-mail address; at-risk notice skipped", order, customer.pk)
        return False
    # The claim leaves updated_at alone: an e-mail is no change of the order that pages or boards must fetch.
    unsent = Order.objects.filter(pk=order_id, at_risk_notified_at=None)
    if not unsent.update(at_risk_notified_at=timezone.now(), updated_at=F("updated_at")):
        return False
    with translation.override(settings.LANGUAGE_CODE):
        context: dict[str, object] = {
            "language": settings.LANGUAGE_CODE,
            "name": customer.get_short_name() or customer.get_username(),
            "order": order,
            "promised_at": order.promised_at,
            "eta": order.eta,
            "tracking_url": tracking_url(order),
            "page_url": settings.SITE_URL + reverse("order-page", args=[order.pk]) if settings.SITE_URL else "",
            "support_email": settings.SUPPORT_EMAIL,
        }
        subject = render_to_string("emails/at_risk_subject.txt", context).strip()
        context["subject"] = subject
        message = EmailMultiAlternatives(subject, render_to_string("emails/at_risk.txt", context), to=[customer.email])
        message.attach_alternative(render_to_string("emails/at_risk.html", context), "text/html")
    try:
        message.send()
    except Exception:
        Order.objects.filter(pk=order_id).update(at_risk_notified_at=None, updated_at=F("updated_at"))
        raise
    return True
