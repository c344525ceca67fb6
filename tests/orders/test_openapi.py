"""The API's OpenAPI document and docs page, and a schemathesis run against that document on the real WSGI app:
whatever schemathesis sends, no answer is a 5xx, and every answer's status, content type and body are the
document's."""

from typing import Any

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from accounts import apikeys
from config.headers import CONTENT_SECURITY_POLICY
from config.wsgi import application
from tests.conftest import make_order, make_user


def test_openapi_document_lists_every_endpoint_with_its_security(db: None) -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths["/api/orders/"]) == {"get", "post"}
    assert "get" in paths["/api/orders/{order_id}/"] and "post" in paths["/api/orders/{order_id}/status/"]
    assert {"BearerAuth", "SessionAuth"} <= set(document["components"]["securitySchemes"])
    intake = paths["/api/orders/"]["post"]
    assert {"201", "409", "422"} <= set(intake["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in intake["parameters"])


def test_docs_page_loads_its_assets_from_this_site_under_our_policy(db: None) -> None:
    page = Client().get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html and "/static/ninja/swagger-ui-init.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    assert page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # No inline script to allow: every <script> has a src, or is data (type="application/json").
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening


@pytest.fixture
def api_schema(db: None) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", application)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def secret(db: None) -> str:
    """A key with every scope, and orders for it to find (ids 1.. exist in the test database)."""
    alice = make_user("alice")
    for _ in range(3):
        make_order(alice)
    return apikeys.issue_api_key(name="schemathesis", scopes=["orders:read", "orders:write"])[1]


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))
def test_no_request_the_schema_allows_gets_a_5xx_or_an_answer_off_the_schema(case: Any, secret: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {secret}"},
        checks=[not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
                checks.response_schema_conformance],
    )
