"""The WebSocket protocol's AsyncAPI document over HTTP: GET /api/asyncapi.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import yaml
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

# One source, kept by hand next to the consumers it describes (tests check it against their frames).
DOCUMENT_PATH = Path(__file__).with_name("asyncapi.yaml")


@cache
def asyncapi_json() -> bytes:
    """The document as JSON, read once per process: it changes only with a deploy."""
    return json.dumps(yaml.safe_load(DOCUMENT_PATH.read_text()), ensure_ascii=False).encode()


@require_GET
def asyncapi_document(request: HttpRequest) -> HttpResponse:
    # Public like the protocol docs: it holds no data, and clients fetch it before they have credentials.
    response = HttpResponse(asyncapi_json(), content_type="application/json")
    response["Cache-Control"] = "public, max-age=3600"
    return response
