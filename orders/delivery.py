"""The orders side of live delivery: `deliver(event)` (push, mark published, e-mail a customer who is offline or
does not see it in time) and the presence reads (who is connected) that the live layer answers.

orders imports nothing from realtime. It tells through signals (orders/signals.py) and asks through the
`Presence` reader that realtime registers in RealtimeConfig.ready() (docs/architecture.md, "The delivery
boundary").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from django.conf import settings

from orders import services
from orders.models import Order, OrderEvent
from orders.signals import event_ready


class Presence(Protocol):
    """Who is connected right now. Reads raise RedisError or OSError while the presence store is unreachable."""

    def reaches(self, *, user_id: int, order_id: int) -> bool:
        """Whether the user has a live socket that shows this order's changes."""
        ...

    def watchers(self, order_ids: Collection[int]) -> dict[int, list[str]]:
        """The usernames watching each of these orders now (one per user, however many tabs); unwatched orders
        may be left out."""
        ...


class NobodyConnected:
    """The reader until a live layer registers one: no sockets, so every offline rule applies."""

    def reaches(self, *, user_id: int, order_id: int) -> bool:
        return False

    def watchers(self, order_ids: Collection[int]) -> dict[int, list[str]]:
        return {}


_presence: Presence = NobodyConnected()


def register_presence(reader: Presence) -> None:
    global _presence
    _presence = reader


def presence() -> Presence:
    return _presence


def deliver(event: OrderEvent) -> None:
    """Push one event (its `order` loaded) to live sockets, record it published, then e-mail its customer if
    they were not connected. A failed push raises before anything is recorded, so a retry or the outbox sweep
    delivers it again. Safe to run twice: clients de-duplicate by (order_id, seq), the marks are conditional."""
    event_ready.send(sender=OrderEvent, event=event)
    services.mark_published(event.pk)
    offer_email_fallback(event)


def offer_email_fallback(event: OrderEvent) -> bool:
    """After a push: if the customer has no live socket that shows this order, enqueue the change by e-mail now;
    if they have one, check the receipt later (check_seen_later). True if an e-mail was enqueued now.

    Live means a /ws/notifications/ stream, or the order's own page or chat (`Presence.reaches`). Creation
    (the first event) is not a change and sends nothing; neither does an `order.updated` event (shipment, ETA):
    the status e-mails are about status changes, and the page shows the rest when next opened.
    """
    from orders.tasks import email_order_update  # orders.tasks imports this module

    if not event.is_status_change or event.emailed_at is not None:
        return False
    if presence().reaches(user_id=event.order.customer_id, order_id=event.order_id):
        check_seen_later(event)
        return False
    email_order_update.delay(event.pk)
    return True


def check_seen_later(event: OrderEvent) -> bool:
    """Connected is not seen (a phone asleep, a background tab, a client that lost the frame keep their socket):
    EMAIL_FALLBACK_AFTER_SECONDS from now, e-mail the change unless a receipt covers it (email_unless_seen). True
    if the check was enqueued.

    Not with eager Celery (the embedded mode, where a countdown would run it at once, before any page could answer)
    nor with the setting at 0: then only customers who are not connected get e-mails.
    """
    from orders.tasks import email_if_unseen

    delay = settings.EMAIL_FALLBACK_AFTER_SECONDS
    if delay <= 0 or email_if_unseen.app.conf.task_always_eager:
        return False
    email_if_unseen.apply_async((event.pk,), countdown=delay)
    return True


def email_unless_seen(event_id: int) -> bool:
    """The delayed check: e-mail the change (at most once) unless the customer has seen it or a later event of the
    order by now. True if it was sent."""
    event = OrderEvent.objects.filter(pk=event_id).values_list("order_id", "seq").first()
    if event is None:
        return False
    order_id, seq = event
    if Order.objects.filter(pk=order_id, seen_seq__gte=seq).exists():
        return False
    return services.email_status_change(event_id=event_id)
