"""Staff log in with a password and a TOTP code (S-11): on the site, the admin and the token endpoint; set-up on a
first login; wrong, replayed and guessed codes refused and throttled; customers unaffected."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.db import connections
from django.test import AsyncClient, Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import twofactor
from tests.helpers import PASSWORD, make_user, post_json
from tests.realtime.sockets import communicator, session_cookie
from tests.twofactor import code_after, code_for, enrol, force_login_verified, key_of_secret

pytestmark = pytest.mark.django_db(transaction=True)


def password_step(client: Client, username: str, next_path: str = "/staff/") -> Any:
    return client.post(f"/accounts/login/?next={next_path}", {"username": username, "password": PASSWORD,
                                                              "next": next_path})


def code_step(client: Client, code: str, next_path: str = "/staff/") -> Any:
    return client.post(f"/accounts/login/code/?next={next_path}", {"code": code, "next": next_path})


def logged_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def shown_secret(html: str) -> str:
    match = re.search(r'id="totp-secret"[^>]*>([^<]+)<', html)
    assert match, "the set-up page shows the key"
    return match.group(1)


def errors(response: Any) -> str:
    return " ".join(re.findall(r'class="form-error" role="alert">([^<]+)<', response.content.decode()))


def token(body: dict[str, Any], ip: str = "203.0.113.20") -> Any:
    return post_json(Client(REMOTE_ADDR=ip), "/api/auth/token/", body)


# --- The site's login ---------------------------------------------------------------------------------------


def test_a_staff_password_alone_logs_nobody_in_and_leads_to_the_code_page(staff: Any) -> None:
    client = Client()
    response = password_step(client, "staff")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/code/?next=%2Fstaff%2F"
    assert logged_in_as(client) is None
    assert client.get("/staff/")["Location"].startswith("/accounts/login/")
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert client.get("/api/orders/").status_code == 401


def test_staff_without_an_app_set_it_up_on_their_next_login_and_are_let_in_by_its_first_code(staff: Any) -> None:
    client = Client()
    password_step(client, "staff")
    page = client.get("/accounts/login/code/?next=/staff/")
    html = page.content.decode()
    assert page.status_code == 200 and "Set up two-factor login" in html and "<svg" in html
    secret = shown_secret(html)
    assert shown_secret(client.get("/accounts/login/code/?next=/staff/").content.decode()) == secret, \
        "a reload shows the key the person may already have scanned"
    assert not TOTPDevice.objects.filter(user=staff, confirmed=True).exists()

    response = code_step(client, code_after(key_of_secret(secret))[0])
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert logged_in_as(client) == str(staff.pk)
    assert TOTPDevice.objects.get(user=staff).confirmed
    assert client.get("/staff/").status_code == 200
    assert client.get("/admin/").status_code == 200


def test_an_enrolled_staff_member_is_asked_for_the_code_and_a_right_one_logs_in(staff: Any) -> None:
    device = enrol(staff)
    client = Client()
    password_step(client, "staff")
    page = client.get("/accounts/login/code/?next=/staff/").content.decode()
    assert "Enter your code" in page and "totp-secret" not in page, "an enrolled account's key is never shown"
    assert code_step(client, code_for(device))["Location"] == "/staff/"
    assert logged_in_as(client) == str(staff.pk)


def test_a_wrong_code_is_refused_with_a_clear_message(staff: Any) -> None:
    device = enrol(staff)
    client = Client()
    password_step(client, "staff")
    assert "That code is not right" in errors(code_step(client, "not-a-code"))
    right = int(code_for(device))
    response = code_step(client, f"{(right + 1) % 1_000_000:06d}")
    assert response.status_code == 200 and logged_in_as(client) is None
    assert "That code is not right" in errors(response)
    # django-otp's own back-off: straight after a wrong code, even the right one waits a second.
    assert "Too many wrong codes in a row; wait 1 second(s)" in errors(code_step(client, code_for(device)))


def test_a_code_used_once_is_refused_when_replayed(staff: Any) -> None:
    device = enrol(staff)
    first = Client()
    password_step(first, "staff")
    code = code_for(device)
    assert code_step(first, code).status_code == 302
    thief = Client()
    password_step(thief, "staff")
    response = code_step(thief, code)
    assert response.status_code == 200 and logged_in_as(thief) is None
    assert "That code was already used" in errors(response)


def test_code_guesses_count_against_the_login_throttle_which_says_it_is_throttled(staff: Any, settings: Any) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    device = enrol(staff)
    client = Client(REMOTE_ADDR="198.51.100.30")
    password_step(client, "staff")
    for _ in range(3):
        assert code_step(client, "000000").status_code == 200
    response = code_step(client, code_for(device))
    assert "Too many failed attempts for this account or address" in errors(response)
    assert logged_in_as(client) is None
    # The same counters as passwords: the account's token logins are throttled too.
    assert token({"username": "staff", "password": PASSWORD, "otp": code_for(device)}).status_code == 429


def test_concurrent_code_guesses_are_counted_before_any_code_is_checked(staff: Any, settings: Any) -> None:
    """16 code guesses at once for one account: only the limit's worth reach the device (as S-03 for passwords)."""
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    enrol(staff)
    checked: list[str] = []
    original = TOTPDevice.verify_token

    def counting(self: TOTPDevice, code: Any) -> bool:
        checked.append(code)
        return original(self, code)

    barrier = threading.Barrier(16)

    def guess(number: int) -> int:
        barrier.wait()
        try:
            return token({"username": "staff", "password": PASSWORD, "otp": f"{number:06d}"},
                         ip=f"198.51.100.{number}").status_code
        finally:
            connections.close_all()

    with mock.patch.object(TOTPDevice, "verify_token", counting), ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(guess, range(16)))
    # Only the limit's worth got past the throttle to a check at all (the rest: 429 before any).
    assert set(answers) <= {401, 429} and answers.count(401) <= 5, answers
    assert len(checked) <= 5, checked


def test_a_login_left_at_the_code_page_expires(staff: Any) -> None:
    device = enrol(staff)
    client = Client()
    password_step(client, "staff")
    session = client.session
    session[twofactor.PENDING_SESSION_KEY]["started"] = time.time() - twofactor.PENDING_LIFETIME_SECONDS - 1
    session.save()
    response = code_step(client, code_for(device))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?")
    assert logged_in_as(client) is None


def test_customers_log_in_with_their_password_alone(alice: Any) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in_as(client) == str(alice.pk)
    assert client.get("/orders/").status_code == 200
    assert token({"username": "alice", "password": PASSWORD}).status_code == 200


def test_with_two_factor_off_staff_log_in_with_their_password(staff: Any, settings: Any) -> None:
    settings.STAFF_REQUIRE_2FA = False
    client = Client()
    assert password_step(client, "staff")["Location"] == "/staff/"
    assert client.get("/admin/").status_code == 200


# --- The admin ----------------------------------------------------------------------------------------------


def test_the_admin_logs_in_on_the_site_pages_with_the_code_and_returns_to_the_admin(staff: Any) -> None:
    device = enrol(staff)
    client = Client()
    assert client.get("/admin/orders/order/")["Location"] == "/admin/login/?next=/admin/orders/order/"
    assert client.get("/admin/login/?next=/admin/orders/order/")["Location"] == \
        "/accounts/login/?next=/admin/orders/order/"
    assert password_step(client, "staff", "/admin/orders/order/")["Location"].startswith("/accounts/login/code/")
    assert code_step(client, code_for(device), "/admin/orders/order/")["Location"] == "/admin/orders/order/"
    assert client.get("/admin/orders/order/").status_code == 200


def test_the_admin_refuses_a_staff_session_that_did_not_pass_the_second_factor(staff: Any) -> None:
    """A session from before two-factor login (or from a time it was off) is ended, not served."""
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert logged_in_as(client) is None
    client.force_login(staff)
    assert client.get("/api/orders/").status_code == 401
    client.force_login(staff)
    assert client.get("/staff/")["Location"].startswith("/accounts/login/")


async def test_under_asgi_too_an_unverified_staff_session_is_ended(staff: Any) -> None:
    """The middleware's async path, the one uvicorn runs."""
    client = AsyncClient()
    await client.aforce_login(staff)
    response = await client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert (await client.asession()).get("_auth_user_id") is None


def test_removing_a_device_ends_the_sessions_it_verified(staff: Any) -> None:
    client = Client()
    force_login_verified(client, staff)
    assert client.get("/admin/").status_code == 200
    TOTPDevice.objects.filter(user=staff).delete()
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


def test_a_superuser_resets_a_lost_phone_and_the_owner_sets_up_a_new_app_at_the_next_login(staff: Any) -> None:
    clerk = make_user("clerk", is_staff=True)
    enrol(clerk)
    clerks_session = Client()
    force_login_verified(clerks_session, clerk)
    clerks_tokens = post_json(Client(), "/api/auth/token/", {"username": "clerk", "password": PASSWORD,
                                                             "otp": code_for(enrol(clerk))}).json()
    admin = Client()
    force_login_verified(admin, staff)
    response = admin.post("/admin/auth/user/", {"action": "reset_two_factor", "_selected_action": [clerk.pk]},
                          follow=True)
    assert "Removed 1 authenticator app(s) and ended 1 token login(s) of 1 user(s)" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=clerk).exists()
    assert clerks_session.get("/admin/")["Location"].startswith("/admin/login/")
    assert post_json(Client(), "/api/auth/refresh/", {"refresh": clerks_tokens["refresh"]}).status_code == 401
    login = Client()
    password_step(login, "clerk")
    assert "Set up two-factor login" in login.get("/accounts/login/code/").content.decode()


def test_staff_who_are_not_superusers_are_not_offered_the_reset(staff: Any) -> None:
    from django.contrib.auth.models import Permission

    clerk = make_user("clerk", is_staff=True)
    clerk.is_superuser = False
    clerk.save()
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client = Client()
    force_login_verified(client, clerk)
    page = client.get("/admin/auth/user/").content.decode()
    assert "end_token_logins" in page and "reset_two_factor" not in page


# --- The token endpoint -------------------------------------------------------------------------------------


def test_the_token_endpoint_gives_staff_without_an_app_no_tokens_for_their_password(staff: Any) -> None:
    response = token({"username": "staff", "password": PASSWORD})
    assert response.status_code == 401 and response.json()["code"] == "otp_enrolment_required"
    assert "/accounts/login/" in response.json()["detail"]
    assert token({"username": "staff", "password": PASSWORD, "otp": "123456"}).status_code == 401
    assert not TOTPDevice.objects.filter(user=staff).exists(), "the API never enrols a device"


def test_the_token_endpoint_asks_enrolled_staff_for_the_code_and_accepts_it(staff: Any) -> None:
    device = enrol(staff)
    missing = token({"username": "staff", "password": PASSWORD})
    assert missing.status_code == 401 and missing.json()["code"] == "otp_required"
    assert "\"otp\"" in missing.json()["detail"]
    right = int(code_for(device))
    wrong = token({"username": "staff", "password": PASSWORD, "otp": f"{(right + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "otp_wrong"
    assert token({"username": "staff", "password": PASSWORD, "otp": 123456}).status_code == 400
    device.throttle_reset()  # django-otp's own back-off after the wrong code (1 s) is not the point here
    code = code_for(device)
    pair = token({"username": "staff", "password": PASSWORD, "otp": code})
    assert pair.status_code == 200 and {"access", "refresh"} <= pair.json().keys()
    replayed = token({"username": "staff", "password": PASSWORD, "otp": code})
    assert replayed.status_code == 401 and replayed.json()["code"] == "otp_replayed"


def test_a_code_with_a_wrong_password_is_a_wrong_password(staff: Any) -> None:
    device = enrol(staff)
    response = token({"username": "staff", "password": "wrong", "otp": code_for(device)})
    assert response.status_code == 401 and response.json()["detail"] == "Invalid username or password."
    device.refresh_from_db()
    assert device.last_t == -1, "the code was not even checked"


# --- Sockets ------------------------------------------------------------------------------------------------


def unverified_session_cookie(user: Any) -> tuple[bytes, bytes]:
    client = Client()
    client.force_login(user)  # no second factor: a session from before two-factor login
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def closed_with(comm: Any, timeout: float) -> int | None:
    """The close code the socket gets within `timeout` (pongs answered meanwhile are skipped), or None."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await comm.receive_output(timeout=left)
        except TimeoutError:
            return None
        if message["type"] == "websocket.close":
            return message["code"]
    return None


async def test_a_socket_of_a_staff_session_without_the_second_factor_closes_at_its_recheck(
    staff: Any, settings: Any
) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 1
    unverified_cookie = await database_sync_to_async(unverified_session_cookie)(staff)
    unverified = communicator("/ws/notifications/", headers=[unverified_cookie])
    verified = communicator("/ws/notifications/", headers=[await database_sync_to_async(session_cookie)(staff)])
    assert (await unverified.connect())[0] and (await verified.connect())[0]
    assert await closed_with(unverified, timeout=10) == 4001
    # The verified session's socket lived through the same re-checks.
    await verified.send_json_to({"type": "ping"})
    assert await verified.receive_json_from(timeout=3) == {"type": "pong"}
    await verified.disconnect()
    await unverified.disconnect()
