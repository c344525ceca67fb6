"""The live pages: home redirect, a customer's orders, one order's live page, and the staff board."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
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
# The staff board's page: this many orders, the most recently changed first; later changes add rows live.
BOARD_PAGE_SIZE = 50
BOARD_SEARCH_MAX = 100
# Rows one read of /staff/rows/ renders (a reconnecting board asks in batches of this many).
BOARD_ROWS_PER_READ = 100


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
    text = {**page_text(), "newOrders": gettext("New orders since this page was loaded: {numbers}.")}
    page_data = {"labels": status_labels(), "text": text, "asOf": as_of.isoformat(), "socket": socket_timing(),
                 # Only the first page shows new orders (newest first); the others say there are some.
                 "addsOrders": page.number == 1}
    return render(request, "orders/my_orders.html", {"page": page, "page_data": page_data})


@login_required
def my_order_cards(request: HttpRequest) -> HttpResponse:
    """Cards of the viewer's own orders (`?id=` repeated), as "My orders" renders them: for orders it adds live."""
    order_ids = [int(value) for value in request.GET.getlist("id")[:MY_ORDERS_PER_PAGE] if value.isdigit()]
    orders = selectors.visible_orders(request.user).filter(pk__in=order_ids).prefetch_related("items")
    return render(request, "orders/order_cards.html", {"orders": orders.order_by("-pk")})


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


def board_text() -> dict[str, str]:
    """The staff board's JavaScript words, in the request's language (static/js/staff-board.js, board-rows.js).
    `{number}`, `{status}`, `{count}` are filled in by the browser."""
    return {
        **page_text(),
        "justChanged": gettext("(just changed)"),
        "newMessage": gettext("(new message)"),
        "isNow": gettext("{number} is now {status}."),
        "stuck": gettext("Stuck: {orders}"),
        "changing": gettext("Changing…"),
        "changed": gettext("Changed to {status}."),
        "refused": gettext("Not changed: {reason}"),
        "failed": gettext("Not changed: the server did not answer ({reason}). Try again."),
        "leftFilter": gettext("(now {status}: not shown by this filter after a reload)"),
        "missed": gettext("{count} other orders changed since this page was loaded."),
        "showLatest": gettext("Show the latest"),
        "seen": gettext("Seen"),
        "notYet": gettext("Not yet"),
    }


def _board_filter(request: HttpRequest) -> selectors.BoardFilter:
    return selectors.BoardFilter(
        search=request.GET.get("q", "").strip()[:BOARD_SEARCH_MAX],
        statuses=frozenset(status for status in request.GET.getlist("status") if status in Status.values),
        include_closed=request.GET.get("closed") == "1",
        awaiting_reply=request.GET.get("chat") == "awaiting",
        at_risk=request.GET.get("at_risk") == "1",
    )


def _board_url(request: HttpRequest, **place: str) -> str:
    """The board with the request's filter, at `place` (after= or before=; none: the first page)."""
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    query.update(place)
    return "?" + query.urlencode() if query else "?"


def board_rows_context(orders: list[Order], *, viewer: str) -> list[dict[str, object]]:
    """What templates/orders/board_row.html shows of each order: its chat and who is watching it."""
    order_ids = [order.pk for order in orders]
    chats = selectors.chat_summaries(order_ids)
    watchers = watching(order_ids, besides=viewer)
    return [{"order": order, "chat": chats.get(order.pk), "watchers": watchers.get(order.pk, [])}
            for order in orders]


def _staff_only(request: HttpRequest) -> None:
    if not selectors.sees_all_orders(request.user):
        raise PermissionDenied("The board is for staff who may view orders.")


@login_required
def staff_board(request: HttpRequest) -> HttpResponse:
    _staff_only(request)
    # Taken before the read: the board's first reconcile asks for what changed since (docs/pages.md).
    as_of = timezone.now()
    board = _board_filter(request)
    page = selectors.board_page(
        board, limit=BOARD_PAGE_SIZE, after=selectors.BoardCursor.parse(request.GET.get("after")),
        before=selectors.BoardCursor.parse(request.GET.get("before")),
    )
    # The board adds rows live only on the first page of a view a status frame can decide (no search, no
    # support queue, not only orders at risk): elsewhere it says that other orders changed (docs/pages.md).
    adds_rows = page.start == 0 and not board.search and not board.awaiting_reply and not board.at_risk
    # The least recently changed row, when more follow: an order the board did not render but finds changed
    # later than this on a reconcile was missed, older ones are on later pages.
    edge = page.orders[-1] if page.next_after else None
    edge_changed_at = edge.status_changed_at.isoformat() if edge and edge.status_changed_at else None
    shown = board.shown_statuses()
    context = {
        "rows": board_rows_context(page.orders, viewer=request.user.get_username()),
        "page": page,
        "shown_first": page.start + 1,
        "shown_last": page.start + len(page.orders),
        "board": board,
        "status_filters": [(status.value, str(status.label), page.counts[status.value], status.value in board.statuses)
                           for status in Status],
        "statuses": [(status.value, str(status.label)) for status in Status],
        "may_change_status": selectors.may_change_status(request.user),
        "first_url": _board_url(request),
        "next_url": _board_url(request, after=page.next_after.text()) if page.next_after else None,
        "previous_url": _board_url(request, before=page.previous_before.text()) if page.previous_before else None,
        "page_data": {
            "labels": status_labels(),
            "text": board_text(),
            "user": request.user.get_username(),
            "asOf": as_of.isoformat(),
            "addsRows": adds_rows,
            "shownStatuses": sorted(shown),
            "windowEdge": {"id": edge.pk, "statusChangedAt": edge_changed_at} if edge else None,
            "firstUrl": _board_url(request),
            "socket": socket_timing(),
        },
    }
    return render(request, "orders/staff_board.html", context)


@login_required
def staff_board_rows(request: HttpRequest) -> HttpResponse:
    """Board rows rendered as the board renders them (`?id=` repeated): for rows the board adds or refreshes
    live, so a row's customer, chat and watchers come from one read, with the chat's `last_id` mark."""
    _staff_only(request)
    order_ids = [int(value) for value in request.GET.getlist("id")[:BOARD_ROWS_PER_READ] if value.isdigit()]
    orders = selectors.board_rows(order_ids)
    context = {"rows": board_rows_context(orders, viewer=request.user.get_username()),
               "statuses": [(status.value, str(status.label)) for status in Status],
               "may_change_status": selectors.may_change_status(request.user)}
    return render(request, "orders/board_rows.html", context)


@login_required
def staff_board_counts(request: HttpRequest) -> JsonResponse:
    """The board's counts per status for its filter (its query string), re-read after status changes."""
    _staff_only(request)
    board = _board_filter(request)
    counts, _ = selectors.board_counts(board)
    return JsonResponse({"counts": counts, "total": sum(counts[status] for status in board.shown_statuses())})
