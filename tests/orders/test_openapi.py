"""The API's OpenAPI document and docs page, and a schemathesis run against that document on the real WSGI app:
whatever schemathesis sends (valid requests and invalid ones), no answer is a 5xx, and every answer's status,
content type and body are the document's. (Driven by hand with @given: schemathesis' pytest plugin does not run
on our pytest.)"""

from typing import Any

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks

from accounts import apikeys
from config.headers import CONTENT_SECURITY_POLICY
from config.wsgi import application
from tests.helpers import make_order, make_user


def test_openapi_document_lists_every_endpoint_with_its_security(db: None) -> None:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths["/api/orders/"]) == {"get", "post"}
    assert "get" in paths["/api/orders/{order_id}/"] and "post" in paths["/api/orders/{order_id}/status/"]
    login = paths["/api/auth/token/"]["post"]
    assert not login.get("security")  # no credentials needed to log in
    assert "password" in login["requestBody"]["content"]["application/json"]["schema"]["properties"]
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
def secret(transactional_db: None) -> str:
    """A key with the order and webhook scopes, and orders for it to find. The real WSGI app closes its database
    connection after each request, as in production: so no test transaction around it (transactional_db)."""
    alice = make_user("alice")
    for _ in range(3):
        make_order(alice)
    return apikeys.issue_api_key(name="schemathesis", scopes=["orders:read", "orders:write", "webhooks:manage"])[1]


OPERATIONS = [("GET", "/api/orders/"), ("POST", "/api/orders/"), ("GET", "/api/orders/{order_id}/"),
              ("PATCH", "/api/orders/{order_id}/"), ("POST", "/api/orders/{order_id}/status/"),
              ("POST", "/api/auth/token/"), ("POST", "/api/auth/refresh/"), ("POST", "/api/auth/logout/"),
              ("GET", "/api/webhooks/"), ("POST", "/api/webhooks/"), ("DELETE", "/api/webhooks/{endpoint_id}/")]
CHECKS = [not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


def test_the_schemathesis_run_covers_every_operation(db: None) -> None:
    document = Client().get("/api/openapi.json").json()
    assert sorted((method.upper(), path) for path, item in document["paths"].items() for method in item) == sorted(
        OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_request_gets_a_5xx_or_an_answer_off_the_schema(secret: str, method: str, path: str,
                                                           mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)
    operation = schema[path][method]

    @hypothesis_settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

    run()
