"""StreamPositions on its own: the per-connection rules that make each order's frames arrive once and in order."""

from __future__ import annotations

from realtime.limits import FrameBudget
from realtime.streams import Live, StreamPositions


def test_the_next_seq_is_sent_a_repeat_dropped_and_a_jump_is_a_gap() -> None:
    stream = StreamPositions()
    stream.start_at(7, 2)
    assert stream.live(7, 3) is Live.SEND
    stream.sent(7, 3)
    assert stream.live(7, 3) is Live.DROP and stream.live(7, 1) is Live.DROP
    assert stream.live(7, 5) is Live.GAP


def test_a_staff_stream_sends_the_first_frame_it_hears_of_an_order_and_counts_from_there() -> None:
    stream = StreamPositions(unknown_start=None)
    assert stream.live(9, 4) is Live.SEND
    stream.sent(9, 4)
    assert stream.live(9, 4) is Live.DROP and stream.live(9, 6) is Live.GAP


def test_a_customer_stream_starts_an_unknown_order_at_zero() -> None:
    stream = StreamPositions(unknown_start=0)
    assert stream.live(3, 1) is Live.SEND
    assert stream.live(3, 2) is Live.GAP


def test_subscribe_after_a_live_frame_of_the_same_run_replays_only_what_follows() -> None:
    stream = StreamPositions(unknown_start=0)
    stream.begin_replay(5, 2)  # the connection replayed from 2 ...
    stream.sent(5, 3)
    stream.sent(5, 4)  # ... and sent 3 and 4
    assert stream.resume_from(5, 2) == 4, "3 and 4 already reached the client in this run"
    assert stream.resume_from(5, 3) == 4
    assert stream.resume_from(5, 0) == 0, "before the run began: everything from 0 is due"
    assert stream.resume_from(6, 1) == 1, "an order this connection never sent"


def test_a_replay_that_continues_what_was_sent_keeps_its_run() -> None:
    stream = StreamPositions()
    stream.begin_replay(1, 0)
    stream.sent(1, 1)
    stream.begin_replay(1, 1)
    assert stream.first[1] == 1
    stream.begin_replay(1, 5)
    assert stream.first[1] == 6, "a jump starts a new run"


def test_the_position_check_finds_what_is_behind_and_what_is_ahead_of_the_log() -> None:
    stream = StreamPositions()
    stream.start_at(2, 3)
    assert stream.behind(2, 5) == 3 and stream.behind(2, 3) is None
    assert stream.ahead(2, 1) and not stream.ahead(2, 3)
    stream.reset(2, 1)
    assert stream.last_sent(2) == 1 and not stream.ahead(2, 1)
    staff = StreamPositions(unknown_start=None)
    assert staff.behind(8, 4) == 3, "a staff stream that never sent it starts at its latest event"
    assert not staff.ahead(8, 0)


def test_the_frame_budget_allows_a_burst_then_refills_over_time() -> None:
    budget = FrameBudget(per_second=0, burst=3)
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    budget.per_second = 1000
    budget.updated_at -= 0.01  # ten milliseconds later: ten frames' worth, capped at the burst
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
