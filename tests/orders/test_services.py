from typing import Any

import pytest
from django.db import transaction

from orders import services
from orders.models import Order, OrderEvent
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


def test_plain_save_with_new_status_records_the_event_through_the_signal(alice_order: Order) -> None:
    order = Order.objects.get(pk=alice_order.pk)
    order.status = "confirmed"
    order.save()
    assert list(order.events.values_list("seq", "to_status")) == [(1, "pending"), (2, "confirmed")]


def test_plain_save_with_illegal_status_raises_and_writes_nothing(alice_order: Order) -> None:
    order = Order.objects.get(pk=alice_order.pk)
    order.status = "delivered"
    with pytest.raises(IllegalTransition):
        order.save()
    assert Order.objects.get(pk=alice_order.pk).status == "pending"
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_save_without_status_change_records_nothing(alice_order: Order) -> None:
    alice_order.shipping_address = "2 Other Street"
    alice_order.save()
    assert OrderEvent.objects.filter(order=alice_order).count() == 1


def test_stale_instance_cannot_rewind_seq_or_skip_the_state_machine(alice_order: Order, staff: Any) -> None:
    stale = Order.objects.get(pk=alice_order.pk)
    services.change_status(order=alice_order, to="confirmed", actor=staff)
    stale.status = "cancelled"  # stale thinks it is pending; confirmed → cancelled is legal too
    stale.save()
    assert list(Order.objects.get(pk=alice_order.pk).events.values_list("seq", flat=True)) == [1, 2, 3]


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
    with pytest.raises(RuntimeError):
        with transaction.atomic():
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
