"""Token logins (refresh families) in the database: rotation and reuse, the absolute lifetime, log out
everywhere (API and admin), a password change ending them, and their open sockets closing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from unittest import mock

import jwt
import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.forms import SetPasswordForm
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.models import EndReason, TokenFamily
from tests.helpers import auth_header, login, post_json
from tests.realtime.sockets import communicator
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a-new-and-long-passphrase-42"


def family_of(pair: dict[str, Any]) -> TokenFamily:
    return TokenFamily.objects.get(pk=jwt.decode(pair["refresh"], options={"verify_signature": False})["fam"])


def refresh(pair: dict[str, Any]) -> Any:
    return post_json(Client(), "/api/auth/refresh/", {"refresh": pair["refresh"]})


def reads(pair: dict[str, Any]) -> int:
    return Client().get("/api/orders/", headers=auth_header(pair["access"])).status_code


def test_a_login_is_a_family_row_that_rotation_moves_and_reuse_ends(alice: Any) -> None:
    first = login(Client(), "alice")
    family = family_of(first)
    assert (family.user, family.revoked_at, family.rotated_at) == (alice, None, None)
    second = refresh(first).json()
    family.refresh_from_db()
    assert family.rotated_at is not None and family_of(second).pk == family.pk
    assert refresh(first).status_code == 401  # the spent one came back
    family.refresh_from_db()
    assert family.revoked_at is not None and family.revoke_reason == EndReason.REUSE
    assert reads(second) == 401


def test_of_refreshes_racing_with_one_token_exactly_one_gets_a_new_pair(alice: Any) -> None:
    pair = login(Client(), "alice")
    barrier = threading.Barrier(8)

    def attempt(_: int) -> int:
        barrier.wait()
        try:
            return refresh(pair).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        answers = sorted(pool.map(attempt, range(8)))
    assert answers == [200] + [401] * 7
    assert family_of(pair).revoke_reason == EndReason.REUSE, "the losers are replays: the family ends"


def test_a_login_cannot_be_refreshed_past_its_absolute_lifetime(alice: Any, settings: Any) -> None:
    settings.JWT_REFRESH_ABSOLUTE_LIFETIME = timedelta(days=30)
    pair = login(Client(), "alice")
    # Refreshed every day for a month: each refresh token is fresh, the login is not.
    TokenFamily.objects.filter(pk=family_of(pair).pk).update(created_at=timezone.now() - timedelta(days=30, seconds=1))
    response = refresh(pair)
    assert response.status_code == 401 and "absolute lifetime" in response.json()["detail"]


def test_tokens_refreshed_near_the_absolute_lifetime_expire_with_the_login(alice: Any, settings: Any) -> None:
    settings.JWT_REFRESH_ABSOLUTE_LIFETIME = timedelta(days=30)
    pair = login(Client(), "alice")
    started = timezone.now() - timedelta(days=30) + timedelta(seconds=120)
    TokenFamily.objects.filter(pk=family_of(pair).pk).update(created_at=started)
    response = refresh(pair)
    assert response.status_code == 200
    renewed = response.json()
    ends_at = (started + timedelta(days=30)).timestamp()
    for token in (renewed["access"], renewed["refresh"]):
        assert jwt.decode(token, options={"verify_signature": False})["exp"] <= ends_at
    assert 0 < renewed["expires_in"] <= 120


def test_logout_everywhere_ends_every_token_login_of_that_user_and_no_one_else(alice: Any, bob: Any) -> None:
    phone, laptop, bobs = login(Client(), "alice"), login(Client(), "alice"), login(Client(), "bob")
    response = post_json(Client(), "/api/auth/logout/", {"everywhere": True}, **auth_header(phone["access"]))
    assert response.status_code == 204
    assert (reads(phone), reads(laptop), refresh(laptop).status_code) == (401, 401, 401)
    assert family_of(laptop).revoke_reason == EndReason.LOGOUT_EVERYWHERE
    assert reads(bobs) == 200
    assert reads(login(Client(), "alice")) == 200, "a later login is a new family"


def test_logout_everywhere_with_the_current_refresh_token_alone(alice: Any) -> None:
    phone, laptop = login(Client(), "alice"), login(Client(), "alice")
    response = post_json(Client(), "/api/auth/logout/", {"refresh": phone["refresh"], "everywhere": True})
    assert response.status_code == 204
    assert (reads(phone), reads(laptop)) == (401, 401)


def test_a_spent_or_revoked_token_cannot_log_out_everywhere(alice: Any) -> None:
    stolen = login(Client(), "alice")
    current = refresh(stolen).json()  # the thief's copy of the refresh token is now spent
    other = login(Client(), "alice")
    logout_everywhere = {"refresh": stolen["refresh"], "everywhere": True}
    assert post_json(Client(), "/api/auth/logout/", logout_everywhere).status_code == 401
    assert post_json(Client(), "/api/auth/logout/", {"refresh": other["refresh"]}).status_code == 204
    revoked = post_json(Client(), "/api/auth/logout/", {"everywhere": True}, **auth_header(other["access"]))
    assert revoked.status_code == 401
    assert reads(current) == 200, "the refused attempts ended nothing"


def test_everywhere_must_be_true_or_false(alice: Any) -> None:
    pair = login(Client(), "alice")
    response = post_json(Client(), "/api/auth/logout/", {"everywhere": "yes"}, **auth_header(pair["access"]))
    assert response.status_code == 400 and "everywhere" in response.json()["detail"]
    assert reads(pair) == 200


def change_with_set_password(user: Any, client: Client) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


def change_with_the_admin_password_form(user: Any, admin: Client) -> None:
    response = admin.post(f"/admin/auth/user/{user.pk}/password/",
                          {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]


def change_with_changepassword(user: Any, client: Client) -> None:
    # The command asks on the terminal; answer its two prompts.
    with mock.patch("getpass.getpass", return_value=NEW_PASSWORD):
        call_command("changepassword", user.get_username())


def change_with_the_reset_form(user: Any, client: Client) -> None:
    # PasswordResetConfirmView saves this form once the e-mailed link checks out.
    form = SetPasswordForm(user, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert form.is_valid(), form.errors
    form.save()


@pytest.mark.parametrize("change_password", [change_with_set_password, change_with_the_admin_password_form,
                                             change_with_changepassword, change_with_the_reset_form])
def test_a_password_change_ends_every_token_login_of_the_user(alice: Any, bob: Any, staff: Any,
                                                               change_password: Any) -> None:
    phone, laptop, bobs = login(Client(), "alice"), login(Client(), "alice"), login(Client(), "bob")
    admin = Client()
    force_login_verified(admin, staff)
    change_password(alice, admin)
    assert (reads(phone), reads(laptop), refresh(phone).status_code) == (401, 401, 401)
    assert family_of(phone).revoke_reason == EndReason.PASSWORD_CHANGED
    assert reads(bobs) == 200
    assert reads(login(Client(), "alice", NEW_PASSWORD)) == 200


def test_upgrading_the_stored_hash_of_the_same_password_ends_nothing(alice: Any, settings: Any) -> None:
    pair = login(Client(), "alice")  # stored with the suite's fast MD5 hasher
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]
    login(Client(), "alice")  # Django re-hashes the password with PBKDF2 on this login
    alice.refresh_from_db()
    assert alice.password.startswith("pbkdf2_sha256$")
    assert reads(pair) == 200


def test_the_admin_action_logs_the_selected_users_out_everywhere(alice: Any, bob: Any, staff: Any) -> None:
    alices, bobs = login(Client(), "alice"), login(Client(), "bob")
    admin = Client()
    force_login_verified(admin, staff)
    response = admin.post("/admin/auth/user/", {"action": "end_token_logins", "_selected_action": [alice.pk]},
                          follow=True)
    assert "Ended 1 token login(s) of 1 user(s)" in response.content.decode()
    assert (reads(alices), reads(bobs)) == (401, 200)
    assert family_of(alices).revoke_reason == EndReason.ADMIN
    page = admin.get(f"/admin/auth/user/{alice.pk}/change/").content.decode()
    assert "Token logins" in page and "ended by an admin" in page


async def joined(socket: Any) -> None:
    """Connected, and past the connect work (the pong comes after the socket joined its groups)."""
    assert (await socket.connect())[0]
    await socket.send_json_to({"type": "ping"})
    assert (await socket.receive_json_from(timeout=3))["type"] == "pong"


async def test_logout_everywhere_closes_every_token_socket_of_the_user_at_once(alice: Any, bob: Any,
                                                                                settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 3600  # not the periodic re-check: the logout itself closes them
    pairs = [await database_sync_to_async(login)(Client(), name) for name in ("alice", "alice", "bob")]
    sockets = [communicator("/ws/notifications/", subprotocols=["bearer", pair["access"]]) for pair in pairs]
    for socket in sockets:
        await joined(socket)
    response = await database_sync_to_async(post_json)(Client(), "/api/auth/logout/", {"everywhere": True},
                                                       **auth_header(pairs[0]["access"]))
    assert response.status_code == 204
    for socket in sockets[:2]:
        closed = await socket.receive_output(timeout=5)
        await socket.disconnect()
        assert (closed["type"], closed["code"]) == ("websocket.close", 4001)
    await sockets[2].send_json_to({"type": "ping"})
    assert await sockets[2].receive_json_from(timeout=3) == {"type": "pong"}
    await sockets[2].disconnect()


async def test_a_password_change_closes_the_users_token_sockets_at_once(alice: Any, settings: Any) -> None:
    settings.WS_REAUTH_INTERVAL_SECONDS = 3600
    pair = await database_sync_to_async(login)(Client(), "alice")
    socket = communicator("/ws/notifications/", subprotocols=["bearer", pair["access"]])
    await joined(socket)
    await database_sync_to_async(change_with_set_password)(alice, Client())
    closed = await socket.receive_output(timeout=5)
    await socket.disconnect()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4001)
