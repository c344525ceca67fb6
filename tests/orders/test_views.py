"""The live pages over Django's test client: who sees what, redirects, and the admin link back."""

import html
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from orders import services
from orders.models import ChatMessage, Order
from tests.helpers import make_order
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db


def client_for(user: Any) -> Client:
    client = Client()
    force_login_verified(client, user)
    return client


def test_home_sends_customers_to_their_orders_and_staff_to_the_board(alice: Any, staff: Any) -> None:
    assert client_for(alice).get("/").url == "/orders/"
    assert client_for(staff).get("/").url == "/staff/"


def test_staff_without_the_view_order_permission_get_my_orders_not_the_board(alice_order: Order) -> None:
    support = get_user_model().objects.create_user("support", is_staff=True)
    client = client_for(support)
    assert client.get("/").url == "/orders/"
    assert client.get("/staff/").status_code == 403
    assert client.get(f"/orders/{alice_order.pk}/").status_code == 404


def test_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get("/orders/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert "Log in" in Client().get("/accounts/login/").content.decode()


def test_my_orders_lists_only_the_customers_own_orders(alice: Any, alice_order: Order, bob_order: Order) -> None:
    page = client_for(alice).get("/orders/").content.decode()
    assert alice_order.number in page and bob_order.number not in page


def test_my_orders_shows_a_long_history_page_by_page_and_says_how_many_there_are(alice: Any) -> None:
    orders = [make_order(alice) for _ in range(105)]
    client = client_for(alice)
    first = client.get("/orders/").content.decode()
    assert "Orders 1–50 of 105" in first and "Page 1 of 3" in first and 'href="?page=2"' in first
    assert orders[-1].number in first and orders[-50].number in first and orders[-51].number not in first
    last = client.get("/orders/?page=3").content.decode()
    assert "Orders 101–105 of 105" in last and orders[0].number in last and orders[5].number not in last
    # A page that is not a number, or past the end, shows the first or the last page instead of an error.
    assert orders[-1].number in client.get("/orders/?page=abc").content.decode()
    assert orders[0].number in client.get("/orders/?page=99").content.decode()


def test_my_orders_with_one_page_shows_no_pager(alice: Any, alice_order: Order) -> None:
    page = client_for(alice).get("/orders/").content.decode()
    assert alice_order.number in page and "Pages of orders" not in page and "Orders 1–" not in page


def test_order_page_shows_items_history_and_the_seq_to_resume_from(alice: Any, staff: Any,
                                                                   alice_order: Order) -> None:
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    page = client_for(alice).get(f"/orders/{alice_order.pk}/").content.decode()
    assert "Beans" in page and 'data-seq="2"' in page and '"seq": 2' in page


def test_customer_gets_404_for_another_customers_order_and_a_missing_one(alice: Any, bob_order: Order) -> None:
    client = client_for(alice)
    assert client.get(f"/orders/{bob_order.pk}/").status_code == 404
    assert client.get("/orders/999999/").status_code == 404


def test_staff_board_is_for_staff_only_and_counts_unanswered_customer_messages(
    alice: Any, staff: Any, alice_order: Order, bob_order: Order
) -> None:
    assert client_for(alice).get("/staff/").status_code == 403
    for sender, text in [(alice, "hi"), (staff, "hello"), (alice, "where is it?"), (alice, "any news?")]:
        ChatMessage.objects.create(order=alice_order, sender=sender, text=text)
    response = client_for(staff).get("/staff/")
    page = response.content.decode()
    assert alice_order.number in page and bob_order.number in page
    assert f"/admin/orders/order/{alice_order.pk}/change/" in page
    unread = {row["order"].pk: row["chat"].unread if row["chat"] else 0 for row in response.context["rows"]}
    assert unread == {alice_order.pk: 2, bob_order.pk: 0}
    assert "any news?" in page  # the support queue's preview: the latest message


def test_admin_change_page_links_to_the_live_page(staff: Any, alice_order: Order) -> None:
    page = client_for(staff).get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    assert f'href="/orders/{alice_order.pk}/"' in page


def test_error_pages_and_logout_are_the_sites_own(alice: Any, bob_order: Order) -> None:
    from django.test import RequestFactory
    from django.views.defaults import server_error

    client = client_for(alice)
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert b"Page not found" in missing.content and b'class="site-header"' in missing.content
    # Someone else's order is the same 404 page.
    other = client.get(f"/orders/{bob_order.pk}/")
    assert other.status_code == 404 and b"Page not found" in other.content
    forbidden = client.get("/staff/")
    assert forbidden.status_code == 403 and b"Not allowed" in forbidden.content
    # The 500 page renders with no request context at all, as Django's handler gives it none.
    broken = server_error(RequestFactory().get("/"))
    assert broken.status_code == 500 and b"Something went wrong" in broken.content

    logged_out = client.post("/accounts/logout/")
    assert logged_out.status_code == 200
    assert b"You are logged out" in logged_out.content and b"Django administration" not in logged_out.content
    assert client.get("/orders/").status_code == 302


def test_the_board_pages_through_every_order_with_links_and_the_total(staff: Any, alice: Any,
                                                                     monkeypatch: Any) -> None:
    from orders import views

    client = client_for(staff)
    orders = [make_order(alice) for _ in range(5)]
    first = client.get("/staff/").content.decode()
    assert "Orders 1–5 of" in first and 'rel="next"' not in first  # everything fits: no pager
    monkeypatch.setattr(views, "BOARD_PAGE_SIZE", 2)
    first = client.get("/staff/?q=alice").content.decode()
    assert "Orders 1–2 of <span id=\"board-total\">5</span>" in first
    assert orders[-1].number in first and orders[-3].number not in first
    next_url = re.search(r'href="(\?[^"]*after=[^"]*)" rel="next"', first)
    assert next_url is not None and "q=alice" in next_url.group(1)
    second = client.get("/staff/" + html.unescape(next_url.group(1))).content.decode()
    assert "Orders 3–4 of" in second and orders[-3].number in second and orders[-1].number not in second
    assert 'rel="prev"' in second
    last_url = re.search(r'href="(\?[^"]*after=[^"]*)" rel="next"', second)
    assert last_url is not None
    last = client.get("/staff/" + html.unescape(last_url.group(1))).content.decode()
    assert "Orders 5–5 of" in last and orders[0].number in last and 'rel="next"' not in last


def test_the_board_searches_filters_and_counts_per_status(staff: Any, alice: Any, bob: Any) -> None:
    client = client_for(staff)
    mine, theirs = make_order(alice), make_order(bob)
    services.change_status(order=theirs, to="cancelled", actor=staff)
    page = client.get("/staff/").content.decode()
    assert mine.number in page and theirs.number not in page  # closed: hidden by default
    assert re.search(r'data-status="cancelled">1<', page) and re.search(r'data-status="pending">1<', page)
    assert theirs.number in client.get("/staff/?closed=1").content.decode()
    assert theirs.number in client.get("/staff/?status=cancelled").content.decode()
    searched = client.get("/staff/", {"q": "bob@example.com", "closed": "1"}).content.decode()
    assert theirs.number in searched and mine.number not in searched
    assert client.get("/staff/counts/", {"q": "bob"}).json() == {
        "counts": {"pending": 0, "confirmed": 0, "preparing": 0, "shipped": 0, "out_for_delivery": 0,
                   "delivered": 0, "cancelled": 1}, "total": 0}


def test_board_rows_are_rendered_for_the_board_with_their_chat_mark_for_staff_only(
    staff: Any, alice: Any, alice_order: Order, bob_order: Order
) -> None:
    message = ChatMessage.objects.create(order=alice_order, sender=alice, text="Any news?")
    rows = client_for(staff).get(f"/staff/rows/?id={alice_order.pk}&id=nope&id=999999").content.decode()
    assert f'data-order-id="{alice_order.pk}"' in rows and bob_order.number not in rows
    assert f'data-chat-id="{message.pk}"' in rows and 'data-count="1"' in rows and "Any news?" in rows
    assert 'class="status-change"' in rows  # staff who may change orders get the form
    assert client_for(alice).get(f"/staff/rows/?id={alice_order.pk}").status_code == 403
    assert client_for(alice).get("/staff/counts/").status_code == 403


def test_staff_who_may_only_view_orders_get_the_board_without_the_status_form(alice_order: Order) -> None:
    viewer = get_user_model().objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    page = client_for(viewer).get("/staff/").content.decode()
    assert alice_order.number in page and 'class="status-change"' not in page


def test_the_board_and_the_admin_speak_german(staff: Any, alice_order: Order) -> None:
    client = client_for(staff)
    board = client.get("/staff/", headers={"accept-language": "de"}).content.decode()
    assert "Alle Bestellungen, live" in board and "Geschlossene Bestellungen zeigen" in board
    assert "Im Admin öffnen" in board and 'data-label="Kunde"' in board
    admin = client.get(f"/admin/orders/order/{alice_order.pk}/change/", headers={"accept-language": "de"})
    text = admin.content.decode()
    assert "Live-Seite ansehen" in text and "Sichern" in text  # ours, and Django's own German


def test_my_order_cards_render_only_the_customers_own_orders(alice: Any, alice_order: Order,
                                                             bob_order: Order) -> None:
    cards = client_for(alice).get(f"/orders/cards/?id={alice_order.pk}&id={bob_order.pk}&id=x").content.decode()
    assert f'data-order-id="{alice_order.pk}"' in cards and "1 item" in cards
    assert bob_order.number not in cards


def test_the_boards_queries_do_not_grow_with_its_rows(staff: Any, alice: Any, bob: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(staff)

    def queries_for_board() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/staff/", {"q": "example.com"}).status_code == 200
        return len(queries)

    first = make_order(alice)
    ChatMessage.objects.create(order=first, sender=alice, text="hello")
    few = queries_for_board()
    for i in range(20):
        order = make_order(bob if i % 2 else alice)
        ChatMessage.objects.create(order=order, sender=order.customer, text="where is it?")
    assert queries_for_board() == few
