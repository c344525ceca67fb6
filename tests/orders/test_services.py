from typing import Any

import pytest
from django.db import transaction

from orders import services
from orders.models import Order, OrderEvent, StatusWriteRefused
from orders.states import IllegalTransition


def test_creating_an_order_records_event_seq_1(alice_order: Order) -> None:
    event = OrderEvent.objects.get(order=alice_order)
    assert (event.seq, event.from_status, event.to_status) == (1, "", "pending")
    assert alice_order.seq == 1


def test_change_status_writes_the_next_event_with_actor(alice_order: Order, staff: Any) -> None:
    event = services.change_status(order=alice_order, to="confirmed", actor=staff)
    assert (event.seq, event.from_status, event.to_status, event.actor) == (2, "pending", "confirmed", staff)
    alice_order.refresh_from_db()
    assert (alice_order.status, alice_order.seq) == ("confirmed", 2)


def test_illegal_change_is_refused_and_writes_nothing(alice_order: Order, staff: Any) -> None:
    with pytest.raises(IllegalTransition, match="cannot become shipped"):
        services.change_status(order=alice_order, to="shipped", actor=staff)
    alice_order.refresh_from_db()
    assert alice_order.status == "pending"
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_plain_save_of_a_new_status_is_refused_naming_change_status(alice_order: Order) -> None:
    order = Order.objects.get(pk=alice_order.pk)
    order.status = "confirmed"
    with pytest.raises(StatusWriteRefused, match=r"orders\.services\.change_status"):
        order.save()
    assert_log_is_level(alice_order, status="pending", seqs=[1])


def test_save_with_update_fields_leaving_out_a_changed_status_is_refused(alice_order: Order) -> None:
    order = Order.objects.get(pk=alice_order.pk)
    order.status = "confirmed"
    order.internal_note = "call first"
    with pytest.raises(StatusWriteRefused, match="change_status"):
        order.save(update_fields=["internal_note"])
    assert_log_is_level(alice_order, status="pending", seqs=[1])
    services.change_status(order=alice_order, to="confirmed", actor=None)  # the order is not wedged
    assert_log_is_level(alice_order, status="confirmed", seqs=[1, 2])


def test_save_naming_the_status_in_update_fields_is_refused(alice_order: Order) -> None:
    with pytest.raises(StatusWriteRefused, match="status"):
        alice_order.save(update_fields=["status"])
    with pytest.raises(StatusWriteRefused, match="seq"):
        alice_order.save(update_fields=["seq", "internal_note"])


def test_queryset_update_and_bulk_update_of_status_are_refused(alice_order: Order, bob_order: Order) -> None:
    with pytest.raises(StatusWriteRefused, match=r"QuerySet\.update\(\).*change_status"):
        Order.objects.filter(pk=alice_order.pk).update(status="shipped")
    with pytest.raises(StatusWriteRefused, match="seq"):
        Order.objects.all().update(seq=7)
    alice_order.status, bob_order.status = "confirmed", "confirmed"
    with pytest.raises(StatusWriteRefused, match=r"bulk_update\(\)"):
        Order.objects.bulk_update([alice_order, bob_order], ["status"])
    assert_log_is_level(alice_order, status="pending", seqs=[1])
    assert_log_is_level(bob_order, status="pending", seqs=[1])


def test_queryset_update_of_other_fields_still_works_and_moves_updated_at(alice_order: Order) -> None:
    before = Order.objects.get(pk=alice_order.pk).updated_at
    assert Order.objects.filter(pk=alice_order.pk).update(internal_note="fragile") == 1
    stored = Order.objects.get(pk=alice_order.pk)
    assert stored.internal_note == "fragile" and stored.updated_at > before


def test_save_with_update_fields_moves_updated_at(alice_order: Order) -> None:
    before = Order.objects.get(pk=alice_order.pk).updated_at
    alice_order.internal_note = "fragile"
    alice_order.save(update_fields=["internal_note"])
    assert Order.objects.get(pk=alice_order.pk).updated_at > before


def test_bulk_create_writes_each_orders_first_event(alice: Any, bob: Any) -> None:
    created = Order.objects.bulk_create([Order(customer=alice), Order(customer=bob)])
    for order in created:
        assert_log_is_level(order, status="pending", seqs=[1])
    services.change_status(order=created[0], to="confirmed", actor=None)
    assert_log_is_level(created[0], status="confirmed", seqs=[1, 2])


def test_save_of_other_fields_writes_them_and_records_nothing(alice_order: Order) -> None:
    alice_order.shipping_address = "2 Other Street"
    alice_order.save()
    assert Order.objects.get(pk=alice_order.pk).shipping_address == "2 Other Street"
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_change_status_keeps_the_callers_copy_saveable(alice_order: Order, staff: Any) -> None:
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    assert (alice_order.status, alice_order.seq) == ("confirmed", 2)
    alice_order.internal_note = "confirmed by phone"
    alice_order.save()
    assert Order.objects.get(pk=alice_order.pk).internal_note == "confirmed by phone"


def test_stale_copy_saving_other_fields_cannot_rewind_status_or_seq(alice_order: Order, staff: Any) -> None:
    stale = Order.objects.get(pk=alice_order.pk)
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    stale.internal_note = "written from an old copy"
    stale.save()
    assert_log_is_level(alice_order, status="confirmed", seqs=[1, 2])
    services.change_status(order=stale, to="cancelled", actor=staff)  # checked against the stored status
    assert_log_is_level(alice_order, status="cancelled", seqs=[1, 2, 3])


def assert_log_is_level(order: Order, *, status: str, seqs: list[int]) -> None:
    """The stored order and its event log agree: its status and seq are those of its last event."""
    stored = Order.objects.get(pk=order.pk)
    events = list(stored.events.order_by("seq"))
    assert [event.seq for event in events] == seqs
    assert (stored.status, stored.seq) == (status, seqs[-1]) == (events[-1].to_status, events[-1].seq)


def test_seq_is_gap_free_over_a_whole_lifecycle(alice_order: Order, staff: Any) -> None:
    for status in ["confirmed", "preparing", "shipped", "out_for_delivery", "delivered"]:
        services.change_status(order=alice_order, to=status, actor=staff)
    assert list(alice_order.events.values_list("seq", flat=True)) == [1, 2, 3, 4, 5, 6]


def test_push_is_enqueued_only_on_commit(alice_order: Order, staff: Any, django_capture_on_commit_callbacks: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr("orders.tasks.send_order_update.delay", sent.append)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        event = services.change_status(order=alice_order, to="confirmed", actor=staff)
        assert sent == []
    assert len(callbacks) == 1 and sent == [event.pk]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_pushes_nothing(alice: Any, staff: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    monkeypatch.setattr("orders.tasks.send_order_update.delay", sent.append)
    order = Order.objects.create(customer=alice)
    sent.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.change_status(order=order, to="confirmed", actor=staff)
        raise RuntimeError("boom")
    assert sent == []
    assert Order.objects.get(pk=order.pk).status == "pending"
    services.change_status(order=order, to="confirmed", actor=staff)
    assert len(sent) == 1


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_keeps_the_change_and_leaves_event_in_outbox(
    alice: Any, staff: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(event_id: int) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr("orders.tasks.send_order_update.delay", broker_down)
    # The failure starts this process's broker back-off; restored afterwards, so later tests' pushes are enqueued.
    monkeypatch.setattr("orders.tasks._broker_down_until", 0.0)
    order = Order.objects.create(customer=alice)
    event = services.change_status(order=order, to="confirmed", actor=staff)
    assert Order.objects.get(pk=order.pk).status == "confirmed"
    assert OrderEvent.objects.get(pk=event.pk).published_at is None


def test_mark_published_is_conditional(alice_order: Order) -> None:
    event = alice_order.events.get()
    assert services.mark_published(event.pk) is True
    first = OrderEvent.objects.get(pk=event.pk).published_at
    assert services.mark_published(event.pk) is False
    assert OrderEvent.objects.get(pk=event.pk).published_at == first
