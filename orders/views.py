"""The live pages: home redirect, a customer's orders, one order's live page, and the staff board."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from redis.exceptions import RedisError

from orders import delivery, selectors
from orders.models import Order
from orders.states import Status

logger = logging.getLogger(__name__)

# The happy path a customer sees as steps; a cancelled order shows its history instead.
PROGRESS = [Status.PENDING, Status.CONFIRMED, Status.PREPARING, Status.SHIPPED, Status.OUT_FOR_DELIVERY,
            Status.DELIVERED]
# "My orders" shows this many per page, newest first, with links to the older ones.
MY_ORDERS_PER_PAGE = 50
# The staff board renders this many orders, the most recently changed; later changes add rows live.
BOARD_ROWS = 200


def status_labels() -> dict[str, str]:
    """Each status's name in the request's language, for the pages' JavaScript."""
    return {status.value: str(status.label) for status in Status}


def progress_steps() -> list[tuple[str, str]]:
    return [(status.value, str(status.label)) for status in PROGRESS]


def page_text() -> dict[str, str]:
    """The words the pages' JavaScript shows, in the request's language (static/js/indicator.js, order-page.js).
    `{ago}` is filled in by the browser ("12 s ago", Intl.RelativeTimeFormat in the page's language)."""
    return {
        "connecting": gettext("Connecting…"),
        "live": gettext("Live"),
        "reconnecting": gettext("Reconnecting…"),
        "offline": gettext("Offline"),
        "noNetwork": gettext("No network"),
        "linkInvalid": gettext("This link is no longer valid"),
        "logInAgain": gettext("Please log in again"),
        "notAvailable": gettext("Not available"),
        "stepDone": gettext("(done)"),
        "stepCurrent": gettext("(current)"),
        "stepToCome": gettext("(to come)"),
        "nobodyElse": gettext("Nobody else."),
        "you": gettext("You"),
        "notSent": gettext("Not connected; your message was not sent. Try again in a moment."),
        "fresh": gettext("Up to date · checked {ago}"),
        "stale": gettext("Not live · last checked {ago}"),
        "notKnown": not_known(),
    }


def not_known() -> str:
    """What the order page shows for a carrier, tracking number or date the shop has not given (yet)."""
    return gettext("Not known yet")


def order_page_data(order: Order, *, user: str, is_staff: bool, tracking: str | None = None) -> dict[str, object]:
    """The order page's data for its JavaScript, for the customer's page and a guest tracking link alike."""
    data: dict[str, object] = {
        "orderId": order.pk,
        "seq": order.seq,
        "status": order.status,
        "labels": status_labels(),
        "text": page_text(),
        "progress": [status.value for status in PROGRESS],
        "user": user,
        "isStaff": is_staff,
        "socket": socket_timing(),
        # Money is formatted in the browser in the order's currency and the page's language (Intl.NumberFormat).
        "currency": order.currency,
        # What order.updated frames change (static/js/order-page.js applies them to this).
        "shipment": {
            "carrier": order.carrier,
            "tracking_number": order.tracking_number,
            "carrier_tracking_url": order.carrier_tracking_url,
            "promised_at": order.promised_at.isoformat() if order.promised_at else None,
            "eta": order.eta.isoformat() if order.eta else None,
        },
    }
    if tracking is not None:
        data["tracking"] = tracking
    return data


def socket_timing() -> dict[str, int]:
    """How often the page's sockets ping and how long they wait for a pong (static/js/live-socket.js)."""
    return {
        "pingMs": round(settings.WS_PING_INTERVAL_SECONDS * 1000),
        "pongTimeoutMs": round(settings.WS_PONG_TIMEOUT_SECONDS * 1000),
    }


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("staff-board" if selectors.sees_all_orders(request.user) else "my-orders")


@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    # Taken before the read: after a reconnect the page asks for what changed since (docs/pages.md).
    as_of = timezone.now()
    orders = selectors.visible_orders(request.user).prefetch_related("items").order_by("-pk")
    # A page number out of range or not a number shows the last or first page, never an error.
    page = Paginator(orders, MY_ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    page_data = {"labels": status_labels(), "text": page_text(), "asOf": as_of.isoformat(), "socket": socket_timing()}
    return render(request, "orders/my_orders.html", {"page": page, "page_data": page_data})


@login_required
def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    # Someone else's order and a missing one look the same: 404.
    order = selectors.get_visible_order(request.user, order_id)
    if order is None:
        raise Http404("No such order.")
    context = {
        "order": order,
        "items": list(order.items.all()),
        "not_known": not_known(),
        "events": selectors.status_history(order.pk),
        "progress": progress_steps(),
        "support_email": settings.SUPPORT_EMAIL,
        "page_data": order_page_data(order, user=request.user.get_username(),
                                     is_staff=selectors.sees_all_orders(request.user)),
    }
    return render(request, "orders/order_page.html", context)


def watching(order_ids: list[int], *, besides: str) -> dict[int, list[str]]:
    """Who watches each order now, `besides` the viewer; the board's first state before presence frames arrive."""
    try:
        names = delivery.presence().watchers(order_ids)
    except RedisError as exc:
        # The board still works without it; presence frames fill the column when the store is back.
        logger.warning("Presence store unavailable for the staff board: %s", exc)
        return {}
    return {order_id: [name for name in users if name != besides] for order_id, users in names.items()}


@login_required
def staff_board(request: HttpRequest) -> HttpResponse:
    if not selectors.sees_all_orders(request.user):
        raise PermissionDenied("The board is for staff who may view orders.")
    # Taken before the read: the board's first reconcile asks for what changed since (docs/pages.md).
    as_of = timezone.now()
    at_risk_only = request.GET.get("at_risk") == "1"
    orders = selectors.board_orders(BOARD_ROWS, at_risk=at_risk_only)
    # The least recently changed order rendered, when the board is full: an order the board did not render
    # but finds changed later than this on a reconcile was missed, older ones were just outside the window.
    edge = orders[-1] if len(orders) == BOARD_ROWS else None
    edge_changed_at = edge.status_changed_at.isoformat() if edge and edge.status_changed_at else None
    order_ids = [order.pk for order in orders]
    unread = selectors.awaiting_reply_counts(order_ids)
    watchers = watching(order_ids, besides=request.user.get_username())
    rows = [(order, unread.get(order.pk, 0), watchers.get(order.pk, [])) for order in orders]
    context = {
        "rows": rows,
        "at_risk_only": at_risk_only,
        # No silent cap: past the window the board says how many orders there are and where the rest are.
        "total": selectors.order_count() if edge else len(orders),
        "page_data": {
            "labels": status_labels(),
            "text": page_text(),
            "user": request.user.get_username(),
            "asOf": as_of.isoformat(),
            "windowEdge": {"id": edge.pk, "statusChangedAt": edge_changed_at} if edge else None,
            "socket": socket_timing(),
        },
    }
    return render(request, "orders/staff_board.html", context)
