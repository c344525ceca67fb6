import pytest

from orders.states import TRANSITIONS, IllegalTransition, Status, check_transition

HAPPY_PATH = ["pending", "confirmed", "preparing", "shipped", "out_for_delivery", "delivered"]


def test_happy_path_is_allowed_step_by_step() -> None:
    for current, following in zip(HAPPY_PATH, HAPPY_PATH[1:], strict=False):
        check_transition(current, following)


@pytest.mark.parametrize("current", ["pending", "confirmed", "preparing"])
def test_cancel_is_allowed_before_shipping(current: str) -> None:
    check_transition(current, "cancelled")


@pytest.mark.parametrize("current", ["shipped", "out_for_delivery", "delivered", "cancelled"])
def test_cancel_is_refused_once_shipped_or_finished(current: str) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(current, "cancelled")


def test_skipping_a_step_is_refused_with_a_reason_naming_the_allowed_steps() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition("pending", "shipped")
    assert "pending" in caught.value.reason and "confirmed or cancelled" in caught.value.reason


def test_unknown_and_same_status_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="not a known status"):
        check_transition("pending", "teleported")
    with pytest.raises(IllegalTransition, match="already pending"):
        check_transition("pending", "pending")


def test_every_status_has_a_transition_entry_and_only_known_targets() -> None:
    assert set(TRANSITIONS) == set(Status.values)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status.values)


def test_the_protocol_doc_lists_every_status_and_transition() -> None:
    from pathlib import Path

    from orders.states import TRANSITIONS, Status

    text = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    table = text.split("| status | label | may become |", 1)[1].split("\n\n", 1)[0]
    documented = {}
    for line in table.strip().splitlines()[1:]:
        status, label, targets = (cell.strip() for cell in line.strip("|").split("|"))
        documented[status.strip("`")] = (label, {t.strip(" `") for t in targets.split(",") if "`" in t})
    assert documented == {s.value: (str(s.label), set(TRANSITIONS[s])) for s in Status}
