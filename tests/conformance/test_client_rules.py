"""The conformance client itself, without a server: it stays a third party's (no import of ours), it applies the
resume rule, and it notices a frame its schema refuses, so the conformance run can fail."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from realtime.views import DOCUMENT_PATH
from tests.conformance.client import Account, Document, LiveOrders

CLIENT = Path(__file__).with_name("client.py")


def live_orders(order_id: int | None = 7) -> LiveOrders:
    document = Document(yaml.safe_load(DOCUMENT_PATH.read_text()))
    client = LiveOrders(document, Account(document, "http://unused", "alice", "pw", max_wait=0), "ws://unused",
                        order_id=order_id)
    client.server_frames = document.frames(client.channel, "send")
    client.client_frames = document.frames(client.channel, "receive")
    return client


def status_frame(seq: int, order_id: int = 7) -> dict[str, Any]:
    return {"type": "order.status", "order_id": order_id, "number": "ORD-7K3M9Q2X", "seq": seq,
            "status": "confirmed", "previous": "pending", "at": "2026-11-25T10:00:00+00:00", "event_id": seq}


def test_the_client_imports_only_the_standard_library_websockets_and_jsonschema() -> None:
    tree = ast.parse(CLIENT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree)), "relative import"
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"websockets", "jsonschema"}


async def test_the_client_holds_a_gap_drops_repeats_and_applies_each_seq_once_in_order() -> None:
    client = live_orders()
    client.last[7] = 2
    for seq in (4, 2, 5, 3, 4, 6, 1):
        await client._offer(None, status_frame(seq))  # a known order: nothing is sent
    assert client.applied == {7: [3, 4, 5, 6]}
    assert (client.repeats, client.held_back) == (3, 2)
    assert client.held == {7: {}}


async def test_order_reset_moves_the_clients_position_back() -> None:
    client = live_orders()
    client.last[7] = 5
    client.held[7] = {7: status_frame(7)}
    client.account.expires_at = float("inf")

    async def reload(name: str, query: Any = None, **parameters: int) -> Any:
        assert (name, parameters) == ("order", {"order_id": 7})
        return {}

    client.account.get = reload  # type: ignore[method-assign]
    await client._reset({"type": "order.reset", "order_id": 7, "seq": 2})
    await client._offer(None, status_frame(3))
    assert client.applied == {7: [3]} and client.held == {7: {}}


def test_the_client_refuses_a_frame_its_schema_does_not_allow() -> None:
    client = live_orders()
    missing_seq = {key: value for key, value in status_frame(3).items() if key != "seq"}
    without_offset = {**status_frame(3), "at": "2026-11-25T10:00:00"}
    chat_on_an_order_socket = {"type": "chat.message", "order_id": 7, "id": 1, "sender": "a", "text": "hi",
                               "at": "2026-11-25T10:00:00+00:00"}
    for frame in (missing_seq, without_offset, chat_on_an_order_socket):
        assert client._checked(json.dumps(frame)) is None
    assert client._checked(b"{}") is None
    assert len(client.violations) == 4, client.violations
    assert client._checked(json.dumps(status_frame(3))) == status_frame(3)


def test_the_documents_close_codes_tell_the_client_what_to_do_next() -> None:
    document = live_orders().document
    assert document.then(4001, "token expired") == "refresh"
    assert document.then(4001, "credentials revoked") == "login"
    assert document.then(4004, "no such order") == "stop"
    assert document.then(1006, "") == document.then(1012, "") == "backoff"
    assert document.subprotocol("bearer") == "bearer"
    assert document.endpoint("order", order_id=7) == ("GET", "/api/orders/7/")
