"""Tokens: RS256 and key rotation, refresh rotation with reuse detection, logout, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from accounts import tokens
from tests.helpers import PASSWORD, auth_header, login, post_json

pytestmark = pytest.mark.django_db


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_login_returns_access_refresh_and_lifetime(alice: Any) -> None:
    pair = login(Client(), "alice")
    assert set(pair) == {"access", "refresh", "expires_in"}
    assert jwt.get_unverified_header(pair["access"])["alg"] == "HS256"
    assert Client().get("/api/orders/", headers=auth_header(pair["access"])).status_code == 200


def test_expires_in_never_promises_more_than_the_access_token_lasts(alice: Any) -> None:
    # The exp claim is whole seconds; a client that refreshes `expires_in` after asking must still be in time.
    for _ in range(5):
        asked_at = time.time()
        pair = login(Client(), "alice")
        exp = jwt.decode(pair["access"], options={"verify_signature": False})["exp"]
        assert asked_at + pair["expires_in"] <= exp, (asked_at, pair["expires_in"], exp)


def test_rs256_tokens_are_signed_with_the_private_key_and_verified_with_its_public_half(
    alice: Any, settings: Any
) -> None:
    settings.JWT_ALGORITHM, settings.JWT_PRIVATE_KEY = "RS256", rsa_pem()
    pair = login(Client(), "alice")
    assert jwt.get_unverified_header(pair["access"])["alg"] == "RS256"
    claims = jwt.decode(pair["access"], public_pem(settings.JWT_PRIVATE_KEY), algorithms=["RS256"],
                        audience=settings.JWT_AUDIENCE)
    assert claims["sub"] == str(alice.pk) and claims["type"] == "access"
    assert Client().get("/api/orders/", headers=auth_header(pair["access"])).status_code == 200


def test_hs256_token_forged_with_the_rs256_public_key_as_secret_is_refused(alice: Any, settings: Any) -> None:
    settings.JWT_ALGORITHM, settings.JWT_PRIVATE_KEY = "RS256", rsa_pem()
    genuine = tokens.issue_access_token(alice)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    kid = jwt.get_unverified_header(genuine)["kid"]
    # The classic algorithm-confusion forgery: HMAC keyed with the (public) verifying key.
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()) + b"." + b64(
        json.dumps(claims).encode())
    signature = hmac.new(public_pem(settings.JWT_PRIVATE_KEY).encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + b64(signature)).decode()
    with pytest.raises(tokens.InvalidToken):
        tokens.user_for_token(forged)
    assert tokens.user_for_token(genuine)[0] == alice


def test_tokens_signed_by_a_previous_key_verify_during_rotation_and_fail_after(alice: Any, settings: Any) -> None:
    old_key = "old-signing-key-" + "x" * 32
    settings.JWT_SIGNING_KEY = old_key
    old_token = tokens.issue_access_token(alice)
    settings.JWT_SIGNING_KEY = "new-signing-key-" + "y" * 32
    with pytest.raises(tokens.InvalidToken):
        tokens.user_for_token(old_token)
    settings.JWT_PREVIOUS_SIGNING_KEYS = old_key
    assert tokens.user_for_token(old_token)[0] == alice
    new_token = tokens.issue_access_token(alice)
    assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    assert tokens.user_for_token(new_token)[0] == alice


def test_moving_from_hs256_to_rs256_keeps_hs256_tokens_valid_while_listed(alice: Any, settings: Any) -> None:
    hs_token = tokens.issue_access_token(alice)
    settings.JWT_PREVIOUS_SIGNING_KEYS = settings.JWT_SIGNING_KEY
    settings.JWT_ALGORITHM, settings.JWT_PRIVATE_KEY = "RS256", rsa_pem()
    assert tokens.user_for_token(hs_token)[0] == alice
    assert tokens.user_for_token(tokens.issue_access_token(alice))[0] == alice
    settings.JWT_PREVIOUS_SIGNING_KEYS = ""
    with pytest.raises(tokens.InvalidToken):
        tokens.user_for_token(hs_token)


def test_token_with_an_unknown_key_id_is_refused(alice: Any, settings: Any) -> None:
    claims = jwt.decode(tokens.issue_access_token(alice), options={"verify_signature": False})
    forged = jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm="HS256", headers={"kid": "someone-elses"})
    with pytest.raises(tokens.InvalidToken, match="unknown signing key"):
        tokens.user_for_token(forged)


def test_refresh_rotates_and_the_spent_refresh_token_no_longer_works(alice: Any) -> None:
    client = Client()
    first = login(client, "alice")
    response = post_json(client, "/api/auth/refresh/", {"refresh": first["refresh"]})
    assert response.status_code == 200
    second = response.json()
    assert set(second) == {"access", "refresh", "expires_in"} and second["refresh"] != first["refresh"]
    assert client.get("/api/orders/", headers=auth_header(second["access"])).status_code == 200
    third = post_json(client, "/api/auth/refresh/", {"refresh": second["refresh"]})
    assert third.status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(alice: Any) -> None:
    client = Client()
    first = login(client, "alice")
    second = post_json(client, "/api/auth/refresh/", {"refresh": first["refresh"]}).json()

    # The attacker replays the stolen, already spent, refresh token.
    replay = post_json(client, "/api/auth/refresh/", {"refresh": first["refresh"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]

    # The legitimate holder's newer tokens are dead too: the family is revoked.
    assert post_json(client, "/api/auth/refresh/", {"refresh": second["refresh"]}).status_code == 401
    assert client.get("/api/orders/", headers=auth_header(second["access"])).status_code == 401
    assert client.get("/api/orders/", headers=auth_header(first["access"])).status_code == 401
    # Another login of the same user is a separate family and unaffected.
    assert client.get("/api/orders/", headers=auth_header(login(client, "alice")["access"])).status_code == 200


def test_logout_revokes_the_access_and_refresh_tokens_of_that_session_only(alice: Any) -> None:
    client = Client()
    phone, laptop = login(client, "alice"), login(client, "alice")
    response = post_json(client, "/api/auth/logout/", {"refresh": phone["refresh"]}, **auth_header(phone["access"]))
    assert response.status_code == 204
    assert client.get("/api/orders/", headers=auth_header(phone["access"])).status_code == 401
    assert post_json(client, "/api/auth/refresh/", {"refresh": phone["refresh"]}).status_code == 401
    assert client.get("/api/orders/", headers=auth_header(laptop["access"])).status_code == 200


def test_logout_with_only_the_refresh_token_revokes_the_session(alice: Any) -> None:
    client = Client()
    pair = login(client, "alice")
    assert post_json(client, "/api/auth/logout/", {"refresh": pair["refresh"]}).status_code == 204
    assert client.get("/api/orders/", headers=auth_header(pair["access"])).status_code == 401


def test_logout_without_a_valid_token_is_401(alice: Any) -> None:
    client = Client()
    assert post_json(client, "/api/auth/logout/", {}).status_code == 401
    assert post_json(client, "/api/auth/logout/", {"refresh": "nonsense"}).status_code == 401
    assert post_json(client, "/api/auth/logout/", {}, **auth_header("nonsense")).status_code == 401


def test_logging_out_again_with_tokens_already_logged_out_is_401(alice: Any) -> None:
    client = Client()
    pair = login(client, "alice")
    assert post_json(client, "/api/auth/logout/", {"refresh": pair["refresh"]}).status_code == 204
    # Nothing left to end: the docs' 401, not a second 204.
    assert post_json(client, "/api/auth/logout/", {"refresh": pair["refresh"]}).status_code == 401
    assert post_json(client, "/api/auth/logout/", {}, **auth_header(pair["access"])).status_code == 401


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(alice: Any, scheme: str) -> None:
    client = Client()
    pair = login(client, "alice")
    header = {"Authorization": f"{scheme} {pair['access']}"}
    assert client.get("/api/orders/", headers=header).status_code == 200
    assert post_json(client, "/api/auth/logout/", {}, **header).status_code == 204
    assert client.get("/api/orders/", headers=header).status_code == 401


def test_access_token_is_refused_by_the_refresh_endpoint(alice: Any) -> None:
    pair = login(Client(), "alice")
    assert post_json(Client(), "/api/auth/refresh/", {"refresh": pair["access"]}).status_code == 401


def test_refresh_of_a_deactivated_user_is_refused(alice: Any) -> None:
    pair = login(Client(), "alice")
    alice.is_active = False
    alice.save()
    assert post_json(Client(), "/api/auth/refresh/", {"refresh": pair["refresh"]}).status_code == 401
    assert Client().get("/api/orders/", headers=auth_header(pair["access"])).status_code == 401


def test_inactive_user_gets_no_token(inactive: Any) -> None:
    response = post_json(Client(), "/api/auth/token/", {"username": "inactive", "password": PASSWORD})
    assert response.status_code == 401


def test_token_endpoint_issues_access_and_refresh_for_valid_credentials(alice: Any) -> None:
    response = post_json(Client(), "/api/auth/token/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "expires_in"}
    assert tokens.decode_token(body["access"], expected_type="access")["sub"] == str(alice.pk)


@pytest.mark.parametrize("body", [{"username": "alice", "password": "wrong"}, {"username": "nobody", "password": "x"}])
def test_token_endpoint_answers_401_for_bad_credentials(alice: Any, body: dict[str, str]) -> None:
    assert post_json(Client(), "/api/auth/token/", body).status_code == 401


@pytest.mark.parametrize("raw", ["not json", "[]", '{"username": 1, "password": 2}',
                                 '{"username": "alice\\u0000", "password": "x"}',
                                 '{"username": "alice", "password": "\\ud800"}'])
def test_token_endpoint_answers_400_for_malformed_bodies(alice: Any, raw: str) -> None:
    response = Client().post("/api/auth/token/", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"]


def test_refresh_gives_a_new_access_token_and_refuses_an_access_token(alice: Any) -> None:
    pair = post_json(Client(), "/api/auth/token/", {"username": "alice", "password": PASSWORD}).json()
    refreshed = post_json(Client(), "/api/auth/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    assert post_json(Client(), "/api/auth/refresh/", {"refresh": pair["access"]}).status_code == 401
