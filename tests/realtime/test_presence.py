"""Presence: heartbeats keep a socket present, silence prunes it, a user's tabs are one watcher, staff hear changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from orders.models import Order
from realtime import presence, tasks
from tests.realtime.sockets import Socket

pytestmark = pytest.mark.django_db(transaction=True)

BEAT = 20.0


class FakeClock:
    """Presence's clock, moved by hand: minutes of heartbeats pass in milliseconds."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeClock:
    settings.PRESENCE_HEARTBEAT_SECONDS = BEAT
    fake = FakeClock()
    monkeypatch.setattr(presence, "clock", fake)
    return fake


@pytest.fixture(params=["redis", "memory"])
def backend(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    """The Redis store of production, and the in-process store of embedded mode: same rules."""
    if request.param == "memory":
        settings.PRESENCE_REDIS_URL = ""
    # Pin the store each parameter stands for, so neither can silently test the other.
    expected = presence.MemoryStore if request.param == "memory" else presence.RedisStore
    assert isinstance(presence.store(), expected), presence.store()
    yield request.param


async def watching(order: Order) -> list[str]:
    return [watcher.username for watcher in await sync_to_async(presence.watchers)(order.pk)]


async def next_presence(socket: Socket) -> list[str]:
    frame = await socket.next("presence")
    return [watcher["user"] for watcher in frame["watchers"]]


def raw_members(order: Order) -> dict[str, float]:
    client = redis.Redis.from_url(django_settings.PRESENCE_REDIS_URL, decode_responses=True)
    key = f"{django_settings.PRESENCE_KEY_PREFIX}:{presence.order_room(order.pk)}"
    return dict(client.zrange(key, 0, -1, withscores=True))


async def test_client_heartbeats_keep_a_user_present_for_more_than_60_seconds(
    backend: str, clock: FakeClock, alice: Any, alice_order: Order
) -> None:
    comm = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    for _ in range(6):  # two minutes, six times the prune window's third
        clock.advance(BEAT)
        await comm.ping()
    assert await watching(alice_order) == ["alice"]
    await comm.close()
    assert await watching(alice_order) == []


async def test_a_silent_connection_is_pruned_after_three_missed_beats(
    backend: str, clock: FakeClock, alice: Any, alice_order: Order
) -> None:
    comm = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    clock.advance(3 * BEAT - 1)
    assert await watching(alice_order) == ["alice"]
    clock.advance(2)
    assert await watching(alice_order) == []
    if backend == "redis":
        assert raw_members(alice_order) == {}, "pruning on read removes the member from Redis"
    await comm.close()


async def test_a_pruned_but_open_socket_comes_back_with_its_next_heartbeat(
    clock: FakeClock, alice: Any, alice_order: Order
) -> None:
    comm = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    clock.advance(3 * BEAT + 1)
    assert await watching(alice_order) == []
    await comm.ping()
    assert await watching(alice_order) == ["alice"]
    await comm.close()


async def test_two_tabs_are_one_watcher_who_leaves_only_when_the_last_tab_closes(
    backend: str, clock: FakeClock, alice: Any, staff: Any, alice_order: Order
) -> None:
    staff_ws = await Socket.open(f"/ws/orders/{alice_order.pk}/", staff)
    assert await next_presence(staff_ws) == ["staff"]

    clock.advance(5)
    first_tab = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    assert await next_presence(staff_ws) == ["staff", "alice"]
    clock.advance(5)
    second_tab = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    assert await staff_ws.nothing_of("presence"), "a second tab does not change who is watching"

    await first_tab.close()
    assert await staff_ws.nothing_of("presence"), "alice still has a tab open"
    watchers = await sync_to_async(presence.watchers)(alice_order.pk)
    assert [w.username for w in watchers] == ["staff", "alice"]
    assert watchers[1].since == clock.now - 5, "since is when alice's first tab arrived"

    await second_tab.close()
    assert await next_presence(staff_ws) == ["staff"]
    await staff_ws.close()


async def test_presence_frames_go_to_staff_sockets_and_never_to_customers(
    clock: FakeClock, alice: Any, staff: Any, alice_order: Order
) -> None:
    alice_order_ws = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    alice_chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    staff_stream = await Socket.open("/ws/notifications/", staff)
    staff_chat = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", staff)

    # Staff joining the chat changes the watchers: every staff socket hears it, in the documented shape.
    frame = await staff_chat.next("presence")
    assert frame["type"] == "presence" and frame["order_id"] == alice_order.pk
    assert [w["user"] for w in frame["watchers"]] == ["alice", "staff"]
    assert all(set(w) == {"user", "since"} for w in frame["watchers"])
    assert await staff_stream.next("presence") == frame
    assert await alice_order_ws.nothing_of("presence")
    assert await alice_chat.nothing_of("presence", timeout=0.1)
    for comm in (alice_order_ws, alice_chat, staff_stream, staff_chat):
        await comm.close()


async def test_staff_opening_a_second_tab_gets_the_current_watchers_directly(
    clock: FakeClock, alice: Any, staff: Any, alice_order: Order
) -> None:
    alice_ws = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    first = await Socket.open(f"/ws/orders/{alice_order.pk}/", staff)
    assert await next_presence(first) == ["alice", "staff"]
    second = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", staff)
    assert await next_presence(second) == ["alice", "staff"]
    assert await first.nothing_of("presence"), "nothing changed, so nothing is broadcast"
    for comm in (alice_ws, first, second):
        await comm.close()


async def test_the_server_timer_refreshes_a_connection_that_never_pings(
    settings: Any, alice: Any, alice_order: Order
) -> None:
    settings.PRESENCE_HEARTBEAT_SECONDS = 0.1
    comm = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    (first_score,) = raw_members(alice_order).values()
    for _ in range(100):  # at most 5 s
        await asyncio.sleep(0.05)
        if raw_members(alice_order) and max(raw_members(alice_order).values()) > first_score:
            break
    else:
        pytest.fail("the server timer never refreshed the connection's score")
    await comm.close()
    assert raw_members(alice_order) == {}


async def test_the_periodic_prune_forgets_a_dead_servers_connections_and_tells_staff(
    clock: FakeClock, alice: Any, bob: Any, staff: Any, alice_order: Order
) -> None:
    staff_stream = await Socket.open("/ws/notifications/", staff)
    alice_ws = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    assert await next_presence(staff_stream) == ["alice"]
    # A member written by a server process that then died: nobody will ever remove it on disconnect.
    room = presence.order_room(alice_order.pk)
    dead_member = presence.member_name(bob.pk, "specific.dead-server!1")
    info = json.dumps({"user": "bob", "since": clock.now})
    await sync_to_async(presence.store().run)(room, "join", dead_member, clock.now, info)
    assert await watching(alice_order) == ["alice", "bob"]

    clock.advance(2 * BEAT)
    for socket in (alice_ws, staff_stream):  # live sockets beat; the dead server's member does not
        await socket.ping()
    clock.advance(BEAT + 1)
    assert tasks.prune_presence.name == "orders.tasks.prune_presence"  # as the beat schedule names it
    assert await sync_to_async(tasks.prune_presence)() == 1
    assert await next_presence(staff_stream) == ["alice"]
    await alice_ws.close()
    await staff_stream.close()


async def test_customer_stream_counts_as_reachable_for_every_order_and_order_page_only_for_its_order(
    clock: FakeClock, alice: Any, alice_order: Order
) -> None:
    other_order = await database_sync_to_async(Order.objects.create)(customer=alice)
    is_reachable = sync_to_async(presence.is_reachable)
    assert not await is_reachable(user_id=alice.pk, order_id=alice_order.pk)

    page = await Socket.open(f"/ws/orders/{alice_order.pk}/", alice)
    assert await is_reachable(user_id=alice.pk, order_id=alice_order.pk)
    assert not await is_reachable(user_id=alice.pk, order_id=other_order.pk)

    stream = await Socket.open("/ws/notifications/", alice)
    assert await is_reachable(user_id=alice.pk, order_id=other_order.pk)
    await page.close()
    await stream.close()
    assert not await is_reachable(user_id=alice.pk, order_id=alice_order.pk)


async def test_sockets_keep_working_when_the_presence_store_is_unreachable(
    settings: Any, alice: Any, alice_order: Order
) -> None:
    settings.PRESENCE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    socket = await Socket.open(f"/ws/orders/{alice_order.pk}/chat/", alice)
    await socket.send({"type": "message", "text": "still here"})
    assert (await socket.next("chat.message"))["text"] == "still here"
    await socket.ping()
    await socket.close()


async def test_a_heartbeat_landing_after_its_socket_closed_does_not_bring_it_back(
    clock: FakeClock, alice: Any, alice_order: Order
) -> None:
    room = presence.order_room(alice_order.pk)
    connection = await presence.join(rooms=[room], user=alice, channel_name="specific.test!closing")
    # The server timer took its list of sockets, then the socket closed before the timer's pipeline ran.
    beating = [connection]
    await presence.leave(connection)
    await presence._beat(beating, clock.now)
    assert await watching(alice_order) == []
