"""Who may open a socket: session, bearer subprotocol, ?token=; bad, expired and alg-none tokens get 4001."""

from datetime import timedelta
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from accounts import tokens
from tests.realtime.sockets import close_code, communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_socket_is_closed_with_4001(alice: Any) -> None:
    assert await close_code(communicator("/ws/notifications/")) == 4001


async def test_session_cookie_authenticates(alice: Any) -> None:
    cookie = await database_sync_to_async(session_cookie)(alice)
    comm = communicator("/ws/notifications/", headers=[cookie])
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


async def test_bearer_subprotocol_authenticates_and_server_selects_bearer(alice: Any) -> None:
    token = await database_sync_to_async(tokens.issue_access_token)(alice)
    comm = communicator("/ws/notifications/", subprotocols=["bearer", token])
    connected, subprotocol = await comm.connect()
    assert connected and subprotocol == "bearer"
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


async def test_query_token_authenticates_where_allowed(alice: Any, settings: Any) -> None:
    settings.WS_ALLOW_QUERY_TOKEN = True
    token = await database_sync_to_async(tokens.issue_access_token)(alice)
    comm = communicator(f"/ws/notifications/?token={token}")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(timeout=3) == {"type": "pong"}
    await comm.disconnect()


def _claims(user: Any, **overrides: Any) -> dict[str, Any]:
    from django.utils import timezone

    now = timezone.now()
    claims = {"sub": str(user.pk), "type": "access", "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
              "iss": settings.JWT_ISSUER, "aud": settings.JWT_AUDIENCE}
    claims.update(overrides)
    return claims


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda user: "not-a-jwt", id="garbage"),
        pytest.param(lambda user: jwt.encode(_claims(user), "wrong-key", algorithm="HS256"), id="wrong-key"),
        pytest.param(lambda user: jwt.encode(_claims(user), None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda user: jwt.encode(_claims(user, exp=_claims(user)["iat"] - timedelta(minutes=5)),
                                    settings.JWT_SIGNING_KEY, algorithm="HS256"),
            id="expired",
        ),
        pytest.param(lambda user: tokens.issue_refresh_token(user), id="refresh-token-as-access"),
        pytest.param(
            lambda user: jwt.encode(_claims(user, aud="someone-else"), settings.JWT_SIGNING_KEY, algorithm="HS256"),
            id="wrong-audience",
        ),
    ],
)
async def test_bad_tokens_are_closed_with_4001(alice: Any, make_token: Any, settings: Any) -> None:
    settings.WS_ALLOW_QUERY_TOKEN = True
    token = await database_sync_to_async(make_token)(alice)
    assert await close_code(communicator("/ws/notifications/", subprotocols=["bearer", token])) == 4001
    assert await close_code(communicator(f"/ws/notifications/?token={token}")) == 4001


async def test_token_of_a_deactivated_user_is_refused(alice: Any) -> None:
    token = await database_sync_to_async(tokens.issue_access_token)(alice)
    alice.is_active = False
    await database_sync_to_async(alice.save)()
    assert await close_code(communicator("/ws/notifications/", subprotocols=["bearer", token])) == 4001


async def test_foreign_origin_is_rejected_before_the_handshake(alice: Any) -> None:
    from channels.testing import WebsocketCommunicator

    from config.asgi import application

    token = await database_sync_to_async(tokens.issue_access_token)(alice)
    comm = WebsocketCommunicator(application, "/ws/notifications/", headers=[(b"origin", b"http://evil.example")],
                                 subprotocols=["bearer", token])
    connected, _ = await comm.connect()
    assert not connected
