"""The AsyncAPI document (realtime/asyncapi.yaml): valid for the official parser, served at /api/asyncapi.json, and
naming every close reason and error-frame code the consumers use, as docs/protocol.md's catalogue does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from orders.states import Status
from realtime import consumers, gate, limits
from realtime.views import DOCUMENT_PATH, asyncapi_json

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "clients" / "spec-check" / "validate.mjs"


def parse(document: Path) -> subprocess.CompletedProcess[str]:
    """The official parser (@asyncapi/parser, installed by scripts/ensure-test-deps) on `document`."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the AsyncAPI check: run `make test` (scripts/ensure-test-deps)."
    assert (VALIDATOR.parent / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        "the parser is not installed: run `make test` (scripts/ensure-test-deps runs npm ci)"
    return subprocess.run([node, str(VALIDATOR), str(document)], capture_output=True, text=True, timeout=60)


def document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT_PATH.read_text())


def test_the_official_asyncapi_parser_accepts_the_document_with_no_error_or_warning() -> None:
    result = parse(DOCUMENT_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: AsyncAPI 3.0.0, 3 channels" in result.stdout


def test_the_parser_accepts_the_served_json_too(tmp_path: Path) -> None:
    # The JSON is PyYAML's reading of the source, and YAML readers can differ: check what clients get.
    path = tmp_path / "asyncapi.json"
    path.write_bytes(asyncapi_json())
    result = parse(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_parser_check_fails_on_a_broken_document(tmp_path: Path) -> None:
    # The negative control: a message whose payload is no schema, and an operation on a channel that is not there.
    broken = document()
    broken["components"]["messages"]["pong"]["payload"] = {"type": "pong-ish"}
    broken["operations"]["sendChat"]["channel"] = {"$ref": "#/channels/missing"}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = parse(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error:" in result.stdout


@pytest.mark.django_db
def test_the_document_is_served_as_public_cacheable_json() -> None:
    response = Client().get("/api/asyncapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "public" in response["Cache-Control"]
    assert json.loads(response.content) == document()
    assert Client().post("/api/asyncapi.json").status_code == 405


def closes_in_code() -> set[tuple[int, str]]:
    """Every (code, reason) the consumers close with, read from their `self.refuse(CODE, REASON)` calls."""
    def value(name: str) -> Any:
        module, _, attribute = name.rpartition(".")
        return getattr(limits if module == "limits" else consumers, attribute)

    calls = re.findall(r"self\.refuse\((CLOSE_\w+), ([\w.]+)\)", Path(consumers.__file__).read_text())
    assert len(calls) >= 10
    return {(value(code), value(reason)) for code, reason in calls}


def close_reasons_in_code() -> set[str]:
    return {reason for _code, reason in closes_in_code()}


def test_every_close_of_the_consumers_is_in_the_document_with_its_own_reason() -> None:
    documented = [(entry["code"], entry["reason"]) for entry in document()["x-close-codes"]]
    reasons = [reason for _code, reason in documented if reason]
    assert len(reasons) == len(set(reasons)), "each close reason is distinct"
    assert set(reasons) == close_reasons_in_code()
    assert closes_in_code() <= set(documented)
    # The handshake gate's refusal of a socket without credentials is the consumers' 4001.
    assert (gate.CLOSE_UNAUTHENTICATED, gate.NOT_AUTHENTICATED) in documented


def error_codes_in_code() -> set[str]:
    return set(re.findall(r'FrameError\("(\w+)"', Path(consumers.__file__).read_text()))


def test_the_error_frame_codes_are_exactly_those_the_consumers_raise() -> None:
    schema = document()["components"]["schemas"]["errorCode"]
    assert len(schema["enum"]) == len(set(schema["enum"]))
    assert set(schema["enum"]) == error_codes_in_code() == set(schema["x-enum-descriptions"])


def test_the_protocol_docs_catalogue_names_every_close_reason_and_error_code() -> None:
    protocol = (ROOT / "docs" / "protocol.md").read_text()
    catalogue = protocol[protocol.index("## Error catalogue"):]
    for reason in close_reasons_in_code():
        assert f"`{reason}`" in catalogue, reason
    for code in error_codes_in_code():
        assert f"`{code}`" in catalogue, code


def test_the_documents_statuses_are_the_state_machines() -> None:
    assert document()["components"]["schemas"]["status"]["enum"] == list(Status.values)


def test_every_close_entry_says_what_a_client_does_next_in_the_same_fields() -> None:
    # A YAML flow mapping splits an unquoted comma into a stray key: every entry has exactly these fields.
    thens = {"refresh", "login", "reconnect", "backoff", "stop"}
    for entry in document()["x-close-codes"]:
        assert set(entry) == {"code", "reason", "then", "retry", "meaning"}, entry
        assert entry["then"] in thens, entry
    assert document()["x-close-other"]["then"] == "backoff"
    assert {scheme: value["x-subprotocol"] for scheme, value in document()["components"]["securitySchemes"].items()
            if "x-subprotocol" in value} == {"bearer": consumers.BEARER_SUBPROTOCOL,
                                             "tracking": consumers.TRACKING_SUBPROTOCOL}


def test_the_http_endpoints_the_document_names_are_the_sites() -> None:
    from django.urls import resolve

    endpoints = document()["x-http"]
    for name, entry in endpoints.items():
        if name == "openapi":
            resolve(entry)
            continue
        match = resolve(entry["path"].replace("{order_id}", "7"))
        assert match.func is not None, name
