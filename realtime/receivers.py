"""Realtime's side of domain and account changes: when who may see what changes, the affected sockets re-check
at once.

A socket's access is checked at connect and every WS_REAUTH_INTERVAL_SECONDS; these receivers make a demoted
staff member's feed, and a reassigned order's previous customer's page and chat, close within moments instead.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver
from redis.exceptions import RedisError

from accounts.signals import logins_ended
from orders.models import Order
from realtime import push

logger = logging.getLogger(__name__)


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
