"""Writes: status changes (state machine, OrderEvent), the outbox mark, chat messages, status e-mails."""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orders.models import STATUS_STAMP, ChatMessage, Order, OrderEvent
from orders.signals import chat_message_posted, status_changed
from orders.states import Status, check_transition

logger = logging.getLogger(__name__)


def change_status(*, order: Order, to: str, actor: AbstractBaseUser | None) -> OrderEvent:
    """Move `order` to status `to` on behalf of `actor` and return the event that records it.

    The one way a status changes (API, admin form and bulk actions, shell): lock the row, check the state
    machine (IllegalTransition with a reason if not allowed), stamp the next seq, write the Order and its
    OrderEvent in one transaction. `status_changed` then has the push enqueued when that transaction commits.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        check_transition(locked.status, to)
        now = timezone.now()
        event = OrderEvent(order=locked, seq=locked.seq + 1, from_status=locked.status, to_status=to, actor=actor)
        Order.objects.filter(pk=locked.pk).write_status_stamp(status=to, seq=event.seq, at=now)
        event.save()
        status_changed.send(sender=Order, event=event)
    order.refresh_from_db(fields=[*STATUS_STAMP, "updated_at"])
    return event


def mark_published(event_id: int) -> bool:
    """Record the first successful push of an event; a re-run changes nothing and returns False."""
    return bool(OrderEvent.objects.filter(pk=event_id, published_at=None).update(published_at=timezone.now()))


CHAT_MAX_LENGTH = 2000


class ChatRateLimited(Exception):
    """The sender posted CHAT_MESSAGES_PER_MINUTE messages in the last minute (all their tabs together)."""


def post_chat_message(*, order_id: int, sender: AbstractBaseUser, text: str) -> ChatMessage:
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
    event = OrderEvent.objects.select_related("order__customer").filter(pk=event_id).first()
    if event is None or not event.from_status:
        return False
    customer = event.order.customer
    if not customer.email:
        logger.info("Order %s: customer %s has no e-mail address; status e-mail skipped", event.order, customer.pk)
        return False
    if not OrderEvent.objects.filter(pk=event_id, emailed_at=None).update(emailed_at=timezone.now()):
        return False
    status, previous = Status(event.to_status).label, Status(event.from_status).label
    lines = [
        f"Hello {customer.get_short_name() or customer.get_username()},",
        "",
        f"Your order {event.order.number} is now {status.lower()} (it was {previous.lower()}).",
    ]
    if settings.SITE_URL:
        page = settings.SITE_URL + reverse("order-page", args=[event.order_id])
        lines += ["", f"Follow it live and chat with us: {page}"]
    try:
        send_mail(f"Order {event.order.number}: {status}", "\n".join(lines) + "\n", None, [customer.email])
    except Exception:
        # Not sent: give the claim back so the task's retry can send it. The error propagates to the retry.
        OrderEvent.objects.filter(pk=event_id).update(emailed_at=None)
        raise
    return True
