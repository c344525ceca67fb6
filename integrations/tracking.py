"""Guest tracking links: a signed token per order that shows its live page without logging in.

A token is `trk_<order id>.<version>.<signature>`, the signature an HMAC (django.core.signing, keyed by
SECRET_KEY) of the id and the order's TrackingKey version. Rotating the version (the admin) invalidates every
earlier link; a link also stops working TRACKING_LINK_DAYS_AFTER_CLOSED days after the order is delivered or
cancelled. Nothing is stored per link, so checking one costs a row read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from integrations.models import TrackingKey
from orders.models import Order
from orders.states import Status

TOKEN_PREFIX = "trk_"
TOKEN_SHAPE = re.compile(r"trk_([0-9]{1,18})\.([0-9]{1,9})\.([A-Za-z0-9_-]{20,100})")
CLOSED = (Status.DELIVERED, Status.CANCELLED)
SIGNER_SALT = "integrations.tracking"


class BadTrackingToken(Exception):
    """A tracking token that is malformed, tampered with, rotated out or expired (the reason, never the token)."""


def _signature(order_id: int, version: int) -> str:
    return signing.Signer(salt=SIGNER_SALT, algorithm="sha256").signature(f"{order_id}.{version}")


def version_of(order: Order | int) -> int:
    order_id = order if isinstance(order, int) else order.pk
    return TrackingKey.objects.filter(order_id=order_id).values_list("version", flat=True).first() or 0


def tracking_token(order: Order, version: int | None = None) -> str:
    version = version_of(order) if version is None else version
    return f"{TOKEN_PREFIX}{order.pk}.{version}.{_signature(order.pk, version)}"


def tracking_path(order: Order) -> str:
    return reverse("tracking-page", args=[tracking_token(order)])


def tracking_url(order: Order, version: int | None = None) -> str:
    """SITE_URL + /t/<token>; a path relative to the site when SITE_URL is unset."""
    return settings.SITE_URL + reverse("tracking-page", args=[tracking_token(order, version)])


def tracking_urls(orders: Iterable[Order]) -> dict[int, str]:
    """Each order's tracking URL, with one query for all their versions (a list of orders)."""
    orders = list(orders)
    versions = dict(TrackingKey.objects.filter(order__in=orders).values_list("order_id", "version"))
    return {order.pk: tracking_url(order, versions.get(order.pk, 0)) for order in orders}


def order_id_of_token(token: str) -> int | None:
    """The order a token claims to be for, from its form alone (unverified): to tell "another order" from
    "tampered" only after the signature has been checked."""
    match = TOKEN_SHAPE.fullmatch(token)
    return int(match.group(1)) if match else None


def expired(order: Order) -> bool:
    if order.status not in CLOSED or order.status_changed_at is None:
        return False
    return timezone.now() >= order.status_changed_at + timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_CLOSED)


def verify(token: str) -> Order:
    """The order a token is good for now, or BadTrackingToken."""
    match = TOKEN_SHAPE.fullmatch(token or "")
    if match is None:
        raise BadTrackingToken("malformed")
    order_id, version, sig = int(match.group(1)), int(match.group(2)), match.group(3)
    if not constant_time_compare(sig, _signature(order_id, version)):
        raise BadTrackingToken("bad signature")
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise BadTrackingToken("no such order")
    if version != version_of(order_id):
        raise BadTrackingToken("rotated")
    if expired(order):
        raise BadTrackingToken("expired")
    return order


def rotate(*, order: Order) -> str:
    """Invalidate the order's earlier tracking links; returns its new token. Pages open on them close at once
    (integrations.receivers)."""
    with transaction.atomic():
        key, _ = TrackingKey.objects.select_for_update().get_or_create(order=order)
        key.version += 1
        key.rotated_at = timezone.now()
        key.save()
    return tracking_token(order)
