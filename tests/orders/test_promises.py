"""The delivery estimator: usual stays per status from the event log, the expected delivery, the promise check.
Events are written at chosen times and `now` is passed in: the clock is the test's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orders import promises
from tests.helpers import make_order, with_history

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
DWELLS = {"pending": 1 * H, "confirmed": 2 * H, "preparing": 4 * H, "shipped": 24 * H, "out_for_delivery": 3 * H}


# --- pure arithmetic ---------------------------------------------------------------------------------------

def test_percentile_is_the_nearest_rank_so_always_an_observed_stay() -> None:
    stays = [timedelta(minutes=m) for m in (50, 10, 40, 20, 30)]
    assert promises.percentile(stays, 50) == timedelta(minutes=30)
    assert promises.percentile(stays, 90) == timedelta(minutes=50)
    assert promises.percentile(stays, 1) == timedelta(minutes=10)
    assert promises.percentile(stays[:4], 50) == timedelta(minutes=20)


def test_percentile_of_nothing_or_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        promises.percentile([], 50)
    with pytest.raises(ValueError):
        promises.percentile([H], 0)


def test_too_few_stays_fall_back_to_the_default() -> None:
    few = promises.usual_dwell([H, 3 * H], default=10 * H, pct=50, min_samples=3)
    assert few == promises.Dwell(usual=10 * H, samples=2, observed=False)
    enough = promises.usual_dwell([H, 3 * H, 2 * H], default=10 * H, pct=50, min_samples=3)
    assert enough == promises.Dwell(usual=2 * H, samples=3, observed=True)


def test_expected_delivery_adds_what_is_left_here_and_every_usual_stay_ahead() -> None:
    # Preparing for 1 h of its usual 4: 3 h left, then shipped 24 h and out for delivery 3 h.
    expected = promises.expected_delivery(status="preparing", entered_at=NOW - H, now=NOW, dwells=DWELLS)
    assert expected == NOW + 30 * H


def test_an_overstayed_status_moves_the_estimate_on_with_the_clock() -> None:
    entered = NOW - 10 * H  # shipped 10 h ago, usually 24 h there; later it has overstayed
    assert promises.expected_delivery(status="shipped", entered_at=entered, now=NOW, dwells=DWELLS) == NOW + 17 * H
    later = NOW + 30 * H
    assert promises.expected_delivery(status="shipped", entered_at=entered, now=later, dwells=DWELLS) == later + 3 * H


def test_closed_orders_have_no_expected_delivery() -> None:
    for status in ("delivered", "cancelled"):
        assert promises.expected_delivery(status=status, entered_at=NOW, now=NOW, dwells=DWELLS) is None


def test_a_promise_is_missed_only_beyond_the_margin() -> None:
    margin = timedelta(minutes=30)
    promised = NOW
    assert not promises.misses_promise(expected=NOW + margin, promised_at=promised, margin=margin)
    assert promises.misses_promise(expected=NOW + margin + timedelta(seconds=1), promised_at=promised, margin=margin)
    assert not promises.misses_promise(expected=None, promised_at=promised, margin=margin)
    assert not promises.misses_promise(expected=NOW + 9 * H, promised_at=None, margin=margin)


# --- the event log -----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_stays_are_measured_from_entering_a_status_to_moving_on(alice: Any, staff: Any) -> None:
    start = NOW - 48 * H
    steps = [("confirmed", start + H), ("preparing", start + 4 * H), ("shipped", start + 9 * H)]
    with_history(make_order(alice), steps, created=start, actor=staff)
    stays = promises.observed_dwells(since=NOW - 72 * H, now=NOW, limit=100)
    assert stays["pending"] == [H]
    assert stays["confirmed"] == [3 * H]
    assert stays["preparing"] == [5 * H]
    assert stays["shipped"] == [] and stays["out_for_delivery"] == [], "a stay still going on is no sample"


@pytest.mark.django_db
def test_cancellations_and_stays_that_ended_before_the_window_are_not_samples(alice: Any, staff: Any) -> None:
    with_history(make_order(alice), [("cancelled", NOW - 2 * H)], created=NOW - 5 * H, actor=staff)
    with_history(make_order(alice), [("confirmed", NOW - 40 * H)], created=NOW - 41 * H, actor=staff)
    with_history(make_order(alice), [("confirmed", NOW - 10 * H)], created=NOW - 12 * H, actor=staff)
    stays = promises.observed_dwells(since=NOW - 24 * H, now=NOW, limit=100)
    assert stays["pending"] == [2 * H]


@pytest.mark.django_db
def test_only_the_latest_stays_up_to_the_limit_are_read(alice: Any, staff: Any) -> None:
    for hours in (1, 2, 3):
        with_history(make_order(alice), [("confirmed", NOW - hours * H)], created=NOW - 2 * hours * H, actor=staff)
    assert promises.observed_dwells(since=NOW - 24 * H, now=NOW, limit=2)["pending"] == [H, 2 * H]


@pytest.mark.django_db
def test_usual_dwells_use_the_history_where_there_is_enough_and_the_defaults_elsewhere(
    alice: Any, staff: Any, settings: Any
) -> None:
    settings.AT_RISK_MIN_SAMPLES, settings.AT_RISK_DWELL_PERCENTILE = 3, 50
    settings.AT_RISK_DEFAULT_DWELL_MINUTES = {**settings.AT_RISK_DEFAULT_DWELL_MINUTES, "pending": 600}
    for minutes in (10, 20, 90):
        created = NOW - H - timedelta(minutes=minutes)
        with_history(make_order(alice), [("confirmed", NOW - H)], created=created, actor=staff)
    dwells = promises.usual_dwells(now=NOW)
    assert dwells["pending"] == promises.Dwell(usual=timedelta(minutes=20), samples=3, observed=True)
    default_confirmed = timedelta(minutes=settings.AT_RISK_DEFAULT_DWELL_MINUTES["confirmed"])
    assert dwells["confirmed"] == promises.Dwell(usual=default_confirmed, samples=0, observed=False)
    settings.AT_RISK_MIN_SAMPLES = 4
    assert promises.usual_dwells(now=NOW)["pending"].usual == timedelta(minutes=600)


@pytest.mark.django_db
def test_a_shipment_or_eta_change_during_a_stay_does_not_end_it(alice: Any, staff: Any) -> None:
    from orders import services
    from orders.models import OrderEvent

    order = with_history(make_order(alice), [("confirmed", NOW - 5 * H)], created=NOW - 6 * H, actor=staff)
    update = services.update_order(order=order, changes={"carrier": "DHL"}, actor=staff)
    assert update is not None
    OrderEvent.objects.filter(pk=update.pk).update(created_at=NOW - 4 * H)
    event = services.change_status(order=order, to="preparing", actor=staff)
    OrderEvent.objects.filter(pk=event.pk).update(created_at=NOW - H)
    assert promises.observed_dwells(since=NOW - 24 * H, now=NOW, limit=10)["confirmed"] == [4 * H]
