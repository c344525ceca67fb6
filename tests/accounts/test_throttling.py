"""Login and refresh throttling: failures counted per username and per client IP, answered with 429."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.backends import ModelBackend
from django.db import connections
from django.test import Client

from tests.helpers import PASSWORD, make_user, post_json

pytestmark = pytest.mark.django_db(transaction=True)


def attempt(username: str, password: str, ip: str = "203.0.113.7") -> Any:
    return post_json(Client(REMOTE_ADDR=ip), "/api/auth/token/", {"username": username, "password": password})


def test_after_too_many_failures_for_a_username_even_the_right_password_gets_429(alice: Any,
                                                                                 settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for number in range(3):
        # Spread over IPs: the per-username limit holds however the guesses are distributed.
        assert attempt("alice", "wrong", ip=f"198.51.100.{number}").status_code == 401
    response = attempt("alice", PASSWORD, ip="198.51.100.99")
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 0 < retry_after <= settings.LOGIN_THROTTLE_WINDOW_SECONDS
    assert response.json()["retry_after"] == retry_after


def test_username_throttle_ignores_case_and_spaces(alice: Any, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    assert attempt("alice", "wrong").status_code == 401
    assert attempt(" ALICE ", "wrong").status_code == 401
    assert attempt("Alice", PASSWORD).status_code == 429


def test_throttling_one_username_leaves_other_users_alone(alice: Any, bob: Any, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    for _ in range(2):
        attempt("alice", "wrong")
    assert attempt("alice", PASSWORD).status_code == 429
    assert attempt("bob", PASSWORD).status_code == 200


def test_one_ip_trying_many_usernames_gets_429(db: None, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_IP = 4
    make_user("carol")
    for number in range(4):
        assert attempt(f"nobody-{number}", "wrong", ip="192.0.2.1").status_code == 401
    assert attempt("carol", PASSWORD, ip="192.0.2.1").status_code == 429
    assert attempt("carol", PASSWORD, ip="192.0.2.2").status_code == 200


def test_successful_logins_are_not_counted(alice: Any, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    settings.LOGIN_FAILURES_PER_IP = 2
    for _ in range(5):
        assert attempt("alice", PASSWORD).status_code == 200


def test_invalid_refresh_tokens_from_one_ip_get_429(db: None, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_IP = 3
    client = Client(REMOTE_ADDR="192.0.2.9")
    for _ in range(3):
        assert post_json(client, "/api/auth/refresh/", {"refresh": "guess"}).status_code == 401
    response = post_json(client, "/api/auth/refresh/", {"refresh": "guess"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0


def test_the_login_form_and_the_token_endpoint_share_the_throttle(staff: Any, settings: Any) -> None:
    # The admin logs in on this form too (tests/accounts/test_two_factor.py).
    login_path = "/accounts/login/"
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    client = Client(REMOTE_ADDR="203.0.113.50")
    for _ in range(2):
        assert attempt("staff", "wrong").status_code == 401  # the token endpoint's failures count here too
    form = client.post(login_path, {"username": "staff", "password": "wrong"})
    assert form.status_code == 200  # the form again, with its error
    # Throttled now: the right password is refused by the form and by the token endpoint alike.
    form = client.post(login_path, {"username": "staff", "password": PASSWORD})
    assert form.status_code == 200 and "_auth_user_id" not in client.session
    assert attempt("staff", PASSWORD).status_code == 429


def test_force_login_and_the_right_password_still_work_with_the_throttle_backend_installed(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    assert client.get("/api/orders/").status_code == 200
    form = Client()
    response = form.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and form.session["_auth_user_id"] == str(alice.pk)


def test_concurrent_guesses_are_counted_before_any_password_check(alice: Any, settings: Any) -> None:
    """16 guesses at once for one username: only the limit's worth reach a password check (S-03)."""
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    checked: list[str] = []
    original = ModelBackend.authenticate

    def counting(self: Any, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        checked.append(password)
        return original(self, request, username=username, password=password, **kwargs)

    barrier = threading.Barrier(16)

    def guess(number: int) -> int:
        barrier.wait()
        try:
            return attempt("alice", f"guess-{number}", ip=f"198.51.100.{number}").status_code
        finally:
            connections.close_all()

    with mock.patch.object(ModelBackend, "authenticate", counting), ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(guess, range(16)))
    assert sorted(answers) == [401] * 5 + [429] * 11
    assert len(checked) == 5


def test_a_throttled_form_login_says_it_is_throttled_not_that_the_password_is_wrong(alice: Any,
                                                                                      settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 1
    client = Client(REMOTE_ADDR="203.0.113.60")
    wrong = client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).content.decode()
    assert "enter a correct username and password" in wrong
    throttled = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).content.decode()
    assert "Too many failed attempts" in throttled and "enter a correct username" not in throttled
