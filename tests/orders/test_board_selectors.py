"""The staff board's reads (orders/selectors.py): search by each field, status filters, closed orders, the support
queue, counts per status, paging with its total, and the chat summaries the unread counts come from."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import selectors, services
from orders.models import ChatMessage, Order
from orders.selectors import BoardCursor, BoardFilter, board_page
from tests.helpers import make_order, make_user

pytestmark = pytest.mark.django_db


def numbers(page: selectors.BoardPage) -> list[str]:
    return [order.number for order in page.orders]


def moved(order: Order, *path: str, actor: Any = None) -> Order:
    for status in path:
        services.change_status(order=order, to=status, actor=actor)
    return order


@pytest.fixture
def carol() -> Any:
    carol = make_user("carol")
    carol.first_name, carol.last_name, carol.email = "Carol", "Quinteros", "carol.q@shop-mail.example"
    carol.save()
    return carol


def test_search_finds_an_order_by_its_number_customer_email_or_external_ref(alice: Any, carol: Any) -> None:
    mine = make_order(carol)
    Order.objects.filter(pk=mine.pk).update(external_ref="SHOP-77123")
    other = make_order(alice)
    for search in [mine.number, mine.number[-5:].lower(), "carol", "Quinteros", "shop-mail.example", "shop-77123",
                   "carol 77123"]:
        assert numbers(board_page(BoardFilter(search=search), limit=10)) == [mine.number], search
    assert numbers(board_page(BoardFilter(search="alice"), limit=10)) == [other.number]
    assert numbers(board_page(BoardFilter(search="nobody-like-this"), limit=10)) == []


def test_closed_orders_are_hidden_unless_asked_for_or_filtered_by(alice: Any) -> None:
    open_order = make_order(alice)
    delivered = moved(make_order(alice), "confirmed", "preparing", "shipped", "out_for_delivery", "delivered")
    cancelled = moved(make_order(alice), "cancelled")
    assert numbers(board_page(BoardFilter(), limit=10)) == [open_order.number]
    assert set(numbers(board_page(BoardFilter(include_closed=True), limit=10))) == {
        open_order.number, delivered.number, cancelled.number}
    assert numbers(board_page(BoardFilter(statuses=frozenset({"delivered"})), limit=10)) == [delivered.number]


def test_status_filter_shows_only_those_statuses_and_counts_cover_every_status(alice: Any, bob: Any) -> None:
    pending = [make_order(alice) for _ in range(3)]
    confirmed = [moved(make_order(bob), "confirmed") for _ in range(2)]
    moved(make_order(bob), "cancelled")
    page = board_page(BoardFilter(statuses=frozenset({"confirmed"})), limit=10)
    assert set(numbers(page)) == {order.number for order in confirmed}
    assert page.total == 2
    # Counts per status whatever the status filter, so staff see what each filter would show.
    assert page.counts == {"pending": 3, "confirmed": 2, "preparing": 0, "shipped": 0, "out_for_delivery": 0,
                           "delivered": 0, "cancelled": 1}
    both = board_page(BoardFilter(statuses=frozenset({"pending", "confirmed"})), limit=10)
    assert both.total == 5 and len(both.orders) == 5
    assert board_page(BoardFilter(), limit=10).total == 5  # open orders: the cancelled one is closed
    # Counts follow the search.
    assert board_page(BoardFilter(search="alice"), limit=10).counts["pending"] == len(pending)
    assert board_page(BoardFilter(search="alice"), limit=10).counts["confirmed"] == 0


def test_the_support_queue_is_the_orders_whose_chat_ends_with_the_customer(alice: Any, bob: Any,
                                                                          staff: Any) -> None:
    asked, answered, silent = make_order(alice), make_order(bob), make_order(bob)
    ChatMessage.objects.create(order=asked, sender=alice, text="Where is it?")
    ChatMessage.objects.create(order=answered, sender=bob, text="Hello?")
    ChatMessage.objects.create(order=answered, sender=staff, text="On its way.")
    page = board_page(BoardFilter(awaiting_reply=True), limit=10)
    assert numbers(page) == [asked.number] and page.total == 1
    assert silent.number not in numbers(page)


def test_pages_are_most_recently_changed_first_with_the_total_and_where_each_starts(alice: Any,
                                                                                   staff: Any) -> None:
    orders = [make_order(alice) for _ in range(7)]
    moved(orders[0], "confirmed", actor=staff)  # the oldest, changed last: first on the board
    expected = [orders[0].number] + [order.number for order in reversed(orders[1:])]
    first = board_page(BoardFilter(), limit=3)
    assert numbers(first) == expected[:3] and first.total == 7 and first.start == 0
    assert first.previous_before is None and first.next_after is not None
    second = board_page(BoardFilter(), limit=3, after=BoardCursor.parse(first.next_after.text()))
    assert numbers(second) == expected[3:6] and second.start == 3 and second.total == 7
    third = board_page(BoardFilter(), limit=3, after=second.next_after)
    assert numbers(third) == expected[6:] and third.start == 6 and third.next_after is None
    # Back from the third page: the second again.
    assert third.previous_before is not None
    back = board_page(BoardFilter(), limit=3, before=BoardCursor.parse(third.previous_before.text()))
    assert numbers(back) == expected[3:6] and back.start == 3 and back.next_after is not None
    # Every order exactly once over all pages: no silent cap.
    assert numbers(first) + numbers(second) + numbers(third) == expected


def test_an_order_changing_while_staff_page_through_makes_no_other_order_skip_or_repeat(alice: Any) -> None:
    orders = [make_order(alice) for _ in range(6)]
    first = board_page(BoardFilter(), limit=3)
    moved(orders[-1], "confirmed")  # the newest was on the first page; it moves to the top again
    moved(orders[1], "confirmed")  # one on the second page moves to the top
    second = board_page(BoardFilter(), limit=3, after=first.next_after)
    assert numbers(second) == [orders[2].number, orders[0].number]
    assert set(numbers(first)) | set(numbers(second)) | {orders[1].number} == {o.number for o in orders}


def test_a_cursor_that_is_not_one_is_ignored_and_one_past_the_end_shows_the_first_page(alice: Any) -> None:
    order = make_order(alice)
    for text in ["", "x", "1.2.3", "12", "n.", ".5", "9" * 40 + ".1", "-5.3"]:
        assert BoardCursor.parse(text) is None, text
    assert BoardCursor.parse("n.7") == BoardCursor(None, 7)
    cursor = BoardCursor.of(order)
    assert BoardCursor.parse(cursor.text()) == cursor  # microseconds survive the round trip
    past = board_page(BoardFilter(), limit=3, after=BoardCursor(None, 0))
    assert numbers(past) == [order.number] and past.start == 0


def test_a_board_page_is_two_queries_however_many_orders_and_filters(alice: Any, bob: Any) -> None:
    for _ in range(30):
        make_order(alice if _ % 2 else bob)
    board = BoardFilter(search="a", statuses=frozenset({"pending"}), awaiting_reply=False)
    with CaptureQueriesContext(connection) as queries:
        page = board_page(board, limit=20, after=None)
        [order.customer.get_username() for order in page.orders]
    assert len(queries) == 2


def test_chat_summaries_give_unread_counts_the_latest_message_and_its_id_in_one_query(
    alice: Any, bob: Any, staff: Any
) -> None:
    mine, other, quiet = make_order(alice), make_order(bob), make_order(bob)
    for sender, text in [(alice, "hi"), (staff, "hello"), (alice, "where is it?"), (alice, "any news?")]:
        last = ChatMessage.objects.create(order=mine, sender=sender, text=text)
    answered = ChatMessage.objects.create(order=other, sender=bob, text="ok")
    answered_reply = ChatMessage.objects.create(order=other, sender=staff, text="Thanks!")
    with CaptureQueriesContext(connection) as queries:
        summaries = selectors.chat_summaries([mine.pk, other.pk, quiet.pk])
    assert len(queries) == 1
    assert summaries[mine.pk] == selectors.ChatSummary(unread=2, last_id=last.pk, last_text="any news?",
                                                       last_sender="alice")
    assert summaries[other.pk] == selectors.ChatSummary(unread=0, last_id=answered_reply.pk, last_text="Thanks!",
                                                        last_sender="staff")
    assert answered.pk < answered_reply.pk
    assert quiet.pk not in summaries
