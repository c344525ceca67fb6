"""The only code that changes an order's status: checks the state machine, writes the OrderEvent, enqueues its push."""

from __future__ import annotations

import logging
from functools import partial

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from orders.models import ChatMessage, Order, OrderEvent
from orders.states import check_transition

logger = logging.getLogger(__name__)


def change_status(*, order: Order, to: str, actor: AbstractBaseUser | None) -> OrderEvent:
    """Move `order` to status `to` on behalf of `actor`; raise IllegalTransition with a reason if not allowed.

    Used by the API and the admin's bulk actions. A plain `order.save()` takes the same path through the
    signal receivers, which call `prepare_status_change` and `record_status_change` below.
    """
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        check_transition(locked.status, to)
        locked.status = to
        locked.changed_by = actor
        locked.save(update_fields=["status"])
        event = locked.last_event
    order.status, order.seq, order.status_changed_at = locked.status, locked.seq, locked.status_changed_at
    return event


def prepare_status_change(*, order: Order) -> None:
    """Before an Order is written: lock its row, refuse an illegal change, stamp the next seq.

    Runs inside Order.save()'s transaction, so the row lock holds until the event is written.
    """
    if order._state.adding:
        order.seq = 1
        order.status_changed_at = timezone.now()
        order._pending_change = ("", order.status)
        return
    current_status, current_seq = (
        Order.objects.select_for_update().filter(pk=order.pk).values_list("status", "seq").get()
    )
    # Never let a stale in-memory seq overwrite the stored one.
    order.seq = current_seq
    if order.status == current_status:
        order._pending_change = None
        return
    check_transition(current_status, order.status)
    order.seq = current_seq + 1
    order.status_changed_at = timezone.now()
    order._pending_change = (current_status, order.status)


def record_status_change(*, order: Order) -> OrderEvent | None:
    """After an Order is written: record the OrderEvent stamped by prepare_status_change and enqueue its push."""
    change = order.__dict__.pop("_pending_change", None)
    if change is None:
        return None
    previous, current = change
    event = OrderEvent.objects.create(
        order=order, seq=order.seq, from_status=previous, to_status=current, actor=order.changed_by
    )
    order.last_event = event
    order.changed_by = None
    # Nothing is pushed for a change that rolls back.
    transaction.on_commit(partial(enqueue_publish, event.pk))
    return event


def enqueue_publish(event_id: int) -> None:
    """Hand an event to the push worker; if the broker is down the outbox sweep sends it later."""
    from orders.tasks import send_order_update

    try:
        send_order_update.delay(event_id)
    except BrokerUnavailable:
        logger.warning("Broker unavailable; event %s stays in the outbox for the next sweep", event_id)


def mark_published(event_id: int) -> bool:
    """Record the first successful push of an event; a re-run changes nothing and returns False."""
    return bool(OrderEvent.objects.filter(pk=event_id, published_at=None).update(published_at=timezone.now()))


CHAT_MAX_LENGTH = 2000


def post_chat_message(*, order_id: int, sender: AbstractBaseUser, text: str) -> ChatMessage:
    """Store a chat message from an authenticated sender and broadcast it to the order's chat room."""
    from realtime import push

    message = ChatMessage.objects.create(order_id=order_id, sender=sender, text=text.strip()[:CHAT_MAX_LENGTH])
    transaction.on_commit(partial(push.publish_chat_message, message))
    return message
