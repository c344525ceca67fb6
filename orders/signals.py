"""Routes every Order save (admin form, shell, API) through the status-change services."""

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from orders import services
from orders.models import Order


@receiver(pre_save, sender=Order, dispatch_uid="orders.prepare_status_change")
def prepare_status_change(sender: type[Order], instance: Order, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        services.prepare_status_change(order=instance)


@receiver(post_save, sender=Order, dispatch_uid="orders.record_status_change")
def record_status_change(sender: type[Order], instance: Order, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        services.record_status_change(order=instance)
