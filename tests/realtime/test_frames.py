"""Frames keep the protocol's names (docs/protocol.md), and an event's fields are the same in the `order.status`
frame and in the JSON API, built once by OrderEvent.to_dict()."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orders import api, services
from orders.models import Order
from realtime import frames

pytestmark = pytest.mark.django_db


def test_status_frame_and_api_event_share_the_event_fields(staff: Any, alice_order: Order) -> None:
    event = services.change_status(order=alice_order, to="confirmed", actor=staff)
    frame = json.loads(json.dumps(frames.status_frame(event)))
    served = api.event_json(event)

    assert list(frame) == ["type", "order_id", "number", "seq", "status", "previous", "at", "event_id"]
    assert list(served) == ["id", "kind", "seq", "status", "previous", "at"]
    assert frame == {
        "type": "order.status", "order_id": alice_order.pk, "number": alice_order.number, "seq": 2,
        "status": "confirmed", "previous": "pending", "at": event.created_at.isoformat(), "event_id": event.pk}
    assert {key: frame[key] for key in ("seq", "status", "previous", "at")} == event.to_dict()
    assert served == {"id": event.pk, "kind": "status", **event.to_dict()}


def test_the_first_event_has_no_previous_status(alice_order: Order) -> None:
    first = alice_order.events.get(seq=1)
    assert frames.status_frame(first)["previous"] is None
    assert api.event_json(first)["previous"] is None


def test_small_frames_keep_their_protocol_names() -> None:
    assert frames.PONG == {"type": "pong"}
    assert frames.reset_frame(7, 3) == {"type": "order.reset", "order_id": 7, "seq": 3}
    assert frames.error_frame("bad_json", "no") == {"type": "error", "code": "bad_json", "detail": "no"}
