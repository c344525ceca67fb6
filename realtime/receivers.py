"""Realtime's side of the orders and accounts boundary: it delivers what the orders domain tells (its signals),
answers what orders asks (`LivePresence`, registered in RealtimeConfig.ready()), and has sockets re-check their
access when who may see what changes.

A socket's access is checked at connect and every WS_REAUTH_INTERVAL_SECONDS; the re-check receivers make a
demoted staff member's feed, and a reassigned order's previous customer's page and chat, close within moments
instead.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver
from redis.exceptions import RedisError

from accounts.signals import logins_ended
from orders.models import ChatMessage, Order, OrderEvent
from orders.signals import chat_message_posted, event_ready, orders_stuck
from realtime import presence, push

logger = logging.getLogger(__name__)


@receiver(event_ready, dispatch_uid="realtime.push_event")
def push_event(sender: Any, event: OrderEvent, **kwargs: Any) -> None:
    """A status event goes to its customer, its order's watchers and staff; an error fails the delivery."""
    push.publish_event(event)


@receiver(chat_message_posted, dispatch_uid="realtime.push_chat_message")
def push_chat_message(sender: Any, message: ChatMessage, **kwargs: Any) -> None:
    push.publish_chat_message(message)


@receiver(orders_stuck, dispatch_uid="realtime.push_stuck_orders")
def push_stuck_orders(sender: Any, orders: list[Order], **kwargs: Any) -> None:
    push.publish_stuck_orders(orders)


class LivePresence:
    """orders.delivery.Presence, answered from realtime.presence (reads prune silent members and tell staff)."""

    def reaches(self, *, user_id: int, order_id: int) -> bool:
        return presence.is_reachable(user_id=user_id, order_id=order_id)

    def watchers(self, order_ids: Collection[int]) -> dict[int, list[str]]:
        if len(order_ids) > 1:
            # Only watched orders have a room, so a board of many orders costs a read per watched one.
            rooms = {presence.order_id_of(room) for room in presence.store().rooms()}
            order_ids = [order_id for order_id in order_ids if order_id in rooms]
        return {order_id: [watcher.username for watcher in presence.watchers(order_id)] for order_id in order_ids}


def recheck_on_commit(groups: list[str]) -> None:
    transaction.on_commit(partial(_recheck, groups))


def _recheck(groups: list[str]) -> None:
    try:
        push.publish_access_recheck(groups)
    except (RedisError, OSError, TimeoutError) as exc:
        # The periodic re-check still closes them, within WS_REAUTH_INTERVAL_SECONDS.
        logger.warning("Access re-check of %s not sent: %s", ", ".join(groups), exc)


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="realtime.recheck_user_sockets")
def recheck_user_sockets(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """A user saved (staff status, active, password): their sockets check whether they still may see what they do."""
    if not created and not raw:
        recheck_on_commit([push.access_group(instance.pk)])


@receiver(logins_ended, dispatch_uid="realtime.recheck_ended_logins")
def recheck_ended_logins(sender: Any, user_id: int, **kwargs: Any) -> None:
    """Token logins ended (logout, log out everywhere, reuse): their sockets close now, not at the next re-check."""
    recheck_on_commit([push.access_group(user_id)])


@receiver(m2m_changed, sender=get_user_model().groups.through, dispatch_uid="realtime.recheck_user_groups")
@receiver(m2m_changed, sender=get_user_model().user_permissions.through, dispatch_uid="realtime.recheck_user_perms")
def recheck_user_permissions(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear") and not reverse:
        recheck_on_commit([push.access_group(instance.pk)])


@receiver(post_save, sender=Order, dispatch_uid="realtime.recheck_order_sockets")
def recheck_order_sockets(sender: Any, instance: Order, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """An order saved (its customer may have changed): its page and chat sockets check they may still see it."""
    if not created and not raw:
        recheck_on_commit([push.order_group(instance.pk), push.chat_group(instance.pk)])
