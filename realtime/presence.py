"""Who is watching: one sorted-set member per connection, scored by its last heartbeat, pruned when silent."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
import redis.asyncio
from django.conf import settings
from redis.exceptions import RedisError

from config.redis import async_redis_client, redis_client
from realtime import push

logger = logging.getLogger(__name__)

# The clock presence is measured by. Tests replace it to simulate minutes without waiting for them.
clock: Callable[[], float] = time.time


def order_room(order_id: int) -> str:
    """The watchers of one order: its /ws/orders/<id>/ and chat sockets."""
    return f"order:{order_id}"


def user_room(user_id: int) -> str:
    """A user's /ws/notifications/ streams: what makes a customer reachable for every order."""
    return f"user:{user_id}"


def order_id_of(room: str) -> int | None:
    kind, _, ident = room.partition(":")
    return int(ident) if kind == "order" and ident.isdigit() else None


def member_name(user_id: int, channel_name: str) -> str:
    return f"{user_id}:{channel_name}"


def user_id_of(member: str) -> int:
    return int(member.partition(":")[0])


def stale_after() -> float:
    """Seconds of silence after which a connection no longer counts: PRESENCE_MISSED_BEATS missed beats."""
    return settings.PRESENCE_HEARTBEAT_SECONDS * settings.PRESENCE_MISSED_BEATS


@dataclass(frozen=True)
class Watcher:
    """One user watching an order, however many tabs; `since` is when the oldest live tab arrived."""

    user_id: int
    username: str
    since: float


@dataclass
class Snapshot:
    """A room right after a join, leave or read: its live members, and the silent ones pruned just now."""

    live: dict[str, dict[str, Any]]
    pruned: list[str]
    before: set[str]

    @property
    def changed(self) -> bool:
        """Whether the set of watching users differs from before the operation (tabs do not count)."""
        return {user_id_of(m) for m in self.before} != {user_id_of(m) for m in self.live}

    def watchers(self) -> list[Watcher]:
        by_user: dict[int, Watcher] = {}
        for member, info in self.live.items():
            user_id = user_id_of(member)
            since = float(info.get("since", 0.0))
            known = by_user.get(user_id)
            if known is None or since < known.since:
                by_user[user_id] = Watcher(user_id, str(info.get("user", user_id)), since)
        return sorted(by_user.values(), key=lambda watcher: (watcher.since, watcher.username))


class Store(Protocol):
    def run(self, room: str, op: str, member: str, now: float, info: str) -> tuple[int, list[str], dict[str, str]]:
        ...

    async def arun(
        self, room: str, op: str, member: str, now: float, info: str
    ) -> tuple[int, list[str], dict[str, str]]:
        ...

    async def abeat(self, entries: list[tuple[str, str, str]], now: float) -> list[tuple[str, str]]:
        ...

    def rooms(self) -> list[str]:
        ...


# One round trip, atomic: apply the join/leave, prune members silent since ARGV[6], answer what is left.
# Returns {touched (1 if the join added or the leave removed the member), pruned members, info hash}.
PRESENCE_SCRIPT = """
local zset, infos, index = KEYS[1], KEYS[2], KEYS[3]
local room, op, member, now, info, cutoff, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local touched = 0
if op == 'join' then
  touched = redis.call('ZADD', zset, now, member)
  redis.call('HSET', infos, member, info)
elseif op == 'leave' then
  touched = redis.call('ZREM', zset, member)
  redis.call('HDEL', infos, member)
end
local pruned = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
for _, stale in ipairs(pruned) do
  redis.call('ZREM', zset, stale)
  redis.call('HDEL', infos, stale)
end
if redis.call('ZCARD', zset) == 0 then
  redis.call('DEL', zset, infos)
  redis.call('SREM', index, room)
  return {touched, pruned, {}}
end
redis.call('SADD', index, room)
redis.call('EXPIRE', index, ttl)
redis.call('EXPIRE', zset, ttl)
redis.call('EXPIRE', infos, ttl)
local live = redis.call('ZRANGE', zset, 0, -1)
local pairs_out = {}
for _, m in ipairs(live) do
  table.insert(pairs_out, m)
  table.insert(pairs_out, redis.call('HGET', infos, m) or '{}')
end
return {touched, pruned, pairs_out}
"""


def _key_ttl() -> int:
    # Keys outlive their members only briefly if every process holding them dies at once.
    return math.ceil(stale_after()) + 60


class RedisStore:
    """Presence in Redis: a sync client for Celery and the admin, one asyncio client (and pool) per event loop.

    `url` is PRESENCE_REDIS_URL, or "" for the master REDIS_SENTINELS name (config/redis.py)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._sync_client: redis.Redis | None = None
        self._sync_script: Any = None
        # Asyncio connections belong to the loop that opened them; a server process has one loop, so one pool.
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, Any]] = (
            weakref.WeakKeyDictionary()
        )

    @staticmethod
    def keys(room: str) -> list[str]:
        prefix = settings.PRESENCE_KEY_PREFIX
        return [f"{prefix}:{room}", f"{prefix}:{room}:info", f"{prefix}:rooms"]

    @staticmethod
    def _args(room: str, op: str, member: str, now: float, info: str) -> list[Any]:
        return [room, op, member, repr(now), info, repr(now - stale_after()), _key_ttl()]

    @staticmethod
    def _parse(result: list[Any]) -> tuple[int, list[str], dict[str, str]]:
        touched, pruned, flat = result
        return int(touched), list(pruned), dict(zip(flat[::2], flat[1::2], strict=True))

    def _sync(self) -> tuple[redis.Redis, Any]:
        if self._sync_client is None:
            self._sync_client = redis_client("presence", url=self.url)
            assert self._sync_client is not None, "a RedisStore is made only with a URL or sentinels"
            self._sync_script = self._sync_client.register_script(PRESENCE_SCRIPT)
        return self._sync_client, self._sync_script

    def _client(self) -> tuple[redis.asyncio.Redis, Any]:
        loop = asyncio.get_running_loop()
        if loop not in self._async:
            client = async_redis_client("presence", url=self.url)
            assert client is not None, "a RedisStore is made only with a URL or sentinels"
            self._async[loop] = (client, client.register_script(PRESENCE_SCRIPT))
        return self._async[loop]

    def run(self, room: str, op: str, member: str, now: float, info: str) -> tuple[int, list[str], dict[str, str]]:
        _, script = self._sync()
        return self._parse(script(keys=self.keys(room), args=self._args(room, op, member, now, info)))

    async def arun(
        self, room: str, op: str, member: str, now: float, info: str
    ) -> tuple[int, list[str], dict[str, str]]:
        _, script = self._client()
        return self._parse(await script(keys=self.keys(room), args=self._args(room, op, member, now, info)))

    async def abeat(self, entries: list[tuple[str, str, str]], now: float) -> list[tuple[str, str]]:
        """Refresh (room, member, info) entries in one pipeline; answer those that had been pruned and came back."""
        client, _ = self._client()
        pipe = client.pipeline(transaction=False)
        ttl = _key_ttl()
        for room, member, info in entries:
            zset, infos, index = self.keys(room)
            pipe.zadd(zset, {member: now})
            pipe.hsetnx(infos, member, info)
            pipe.expire(zset, ttl)
            pipe.expire(infos, ttl)
            pipe.sadd(index, room)
            pipe.expire(index, ttl)
        results = await pipe.execute()
        return [(room, member) for i, (room, member, _) in enumerate(entries) if results[i * 6] == 1]

    def rooms(self) -> list[str]:
        client, _ = self._sync()
        return sorted(str(room) for room in client.smembers(f"{settings.PRESENCE_KEY_PREFIX}:rooms"))


class MemoryStore:
    """Embedded mode (no Redis): the same rules in this process's memory; right for the one-process platform."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, tuple[float, str]]] = {}
        # The sync side runs in worker threads (eager Celery, admin), the async side on the event loop.
        self._lock = threading.Lock()

    def run(self, room: str, op: str, member: str, now: float, info: str) -> tuple[int, list[str], dict[str, str]]:
        with self._lock:
            members = self._rooms.setdefault(room, {})
            touched = 0
            if op == "join":
                touched = int(member not in members)
                members[member] = (now, info)
            elif op == "leave":
                touched = int(members.pop(member, None) is not None)
            cutoff = now - stale_after()
            pruned = [m for m, (score, _) in members.items() if score < cutoff]
            for stale in pruned:
                del members[stale]
            if not members:
                del self._rooms[room]
            return touched, pruned, {m: stored_info for m, (_, stored_info) in members.items()}

    async def arun(
        self, room: str, op: str, member: str, now: float, info: str
    ) -> tuple[int, list[str], dict[str, str]]:
        return self.run(room, op, member, now, info)

    async def abeat(self, entries: list[tuple[str, str, str]], now: float) -> list[tuple[str, str]]:
        returned = []
        with self._lock:
            for room, member, info in entries:
                members = self._rooms.setdefault(room, {})
                if member not in members:
                    returned.append((room, member))
                members[member] = (now, members.get(member, (now, info))[1])
        return returned

    def rooms(self) -> list[str]:
        with self._lock:
            return sorted(self._rooms)


_stores: dict[tuple[str, tuple[tuple[str, int], ...]], Store] = {}
_stores_lock = threading.Lock()


def store() -> Store:
    """The process's presence store: Redis (PRESENCE_REDIS_URL, else REDIS_SENTINELS), or memory in embedded mode."""
    url = settings.PRESENCE_REDIS_URL
    sentinels = () if url else tuple((host, int(port)) for host, port in getattr(settings, "REDIS_SENTINELS", ()) or ())
    with _stores_lock:
        if (url, sentinels) not in _stores:
            _stores[url, sentinels] = RedisStore(url) if url or sentinels else MemoryStore()
        return _stores[url, sentinels]


def _snapshot(op: str, member: str, result: tuple[int, list[str], dict[str, str]]) -> Snapshot:
    touched, pruned, infos = result
    live = {m: _load_info(raw) for m, raw in infos.items()}
    before = set(live) | set(pruned)
    if op == "join" and touched:
        before.discard(member)
    elif op == "leave" and touched:
        before.add(member)
    return Snapshot(live=live, pruned=pruned, before=before)


def _load_info(raw: str) -> dict[str, Any]:
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


# --- Connections (async: consumers) ---------------------------------------------------------------


@dataclass(eq=False)
class Connection:
    """One socket's presence: one member name in each of its rooms."""

    user_id: int
    username: str
    member: str
    rooms: tuple[str, ...]
    infos: dict[str, str] = field(default_factory=dict)
    last_beat: float = 0.0
    # Order rooms whose watchers this join did not change, so no frame went out: staff get them directly.
    unannounced: dict[int, list[Watcher]] = field(default_factory=dict)


async def join(*, rooms: Iterable[str], user: Any, channel_name: str) -> Connection:
    """Count a new socket as present in `rooms`; staff hear of each order whose watching users changed.

    Presence never keeps a socket from working: if Redis is unreachable the socket lives on unseen and the
    server timer adds it once Redis answers again.
    """
    connection = Connection(
        user_id=user.pk, username=user.get_username(), member=member_name(user.pk, channel_name), rooms=tuple(rooms)
    )
    now = clock()
    connection.last_beat = now
    for room in connection.rooms:
        try:
            # A second tab inherits the user's `since`: they have been watching since the first one came.
            current = _snapshot("read", connection.member, await store().arun(room, "read", connection.member, now, ""))
            since = min(
                [w.since for w in current.watchers() if w.user_id == connection.user_id], default=now
            )
            connection.infos[room] = json.dumps({"user": connection.username, "since": since})
            result = await store().arun(room, "join", connection.member, now, connection.infos[room])
        except RedisError as exc:
            connection.infos.setdefault(room, json.dumps({"user": connection.username, "since": now}))
            logger.warning("Presence unavailable, %s joins %s unseen for now: %s", connection.member, room, exc)
            continue
        snapshot = _snapshot("join", connection.member, result)
        order_id = order_id_of(room)
        if order_id is None:
            continue
        if snapshot.changed or current.changed:
            await _announce(order_id, snapshot.watchers())
        else:
            connection.unannounced[order_id] = snapshot.watchers()
    _heartbeat().add(connection)
    return connection


async def leave(connection: Connection) -> None:
    """The socket closed: drop its member; the user stays a watcher while another of their tabs is open."""
    _heartbeat().discard(connection)
    for room in connection.rooms:
        try:
            result = await store().arun(room, "leave", connection.member, clock(), "")
        except RedisError as exc:
            logger.warning("Presence unavailable, %s stays in %s until pruned: %s", connection.member, room, exc)
            continue
        snapshot = _snapshot("leave", connection.member, result)
        order_id = order_id_of(room)
        if order_id is not None and snapshot.changed:
            await _announce(order_id, snapshot.watchers())


async def beat(connection: Connection) -> None:
    """A client ping: refresh this socket now (at most a few times a beat, whatever the client sends)."""
    now = clock()
    if now - connection.last_beat < settings.PRESENCE_HEARTBEAT_SECONDS / 3:
        return
    await _beat([connection], now)


async def _beat(connections: list[Connection], now: float) -> None:
    entries = [(room, c.member, c.infos[room]) for c in connections for room in c.rooms if room in c.infos]
    if not entries:
        return
    try:
        returned = await store().abeat(entries, now)
    except RedisError as exc:
        logger.warning("Presence heartbeat of %d connection(s) failed: %s", len(connections), exc)
        return
    for connection in connections:
        connection.last_beat = now
    open_members = _heartbeat().connections
    for room in sorted({room for room, _ in returned}):
        try:
            for member in [m for r, m in returned if r == room and m not in open_members]:
                # The socket closed while this beat was on its way and the beat wrote it back: remove it again.
                await store().arun(room, "leave", member, now, "")
            snapshot = _snapshot("read", "", await store().arun(room, "read", "", now, ""))
        except RedisError as exc:
            logger.warning("Presence read of %s failed: %s", room, exc)
            continue
        # A member pruned while alive (a stalled loop, a flushed Redis) is back: staff see it return.
        order_id = order_id_of(room)
        if order_id is not None and any(m in open_members for r, m in returned if r == room):
            await _announce(order_id, snapshot.watchers())


async def _announce(order_id: int, watchers: list[Watcher]) -> None:
    """Send staff the new watchers; a channel-layer hiccup loses one presence frame, never a socket or a beat."""
    try:
        await push.send_presence(order_id, watchers)
    except (RedisError, OSError) as exc:
        logger.warning("Presence frame for order %s not sent: %s", order_id, exc)


class _Heartbeat:
    """The server timer of one event loop: every beat, refreshes all its connections in one pipeline."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.task: asyncio.Task[None] | None = None

    def add(self, connection: Connection) -> None:
        self.connections[connection.member] = connection
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, connection: Connection) -> None:
        self.connections.pop(connection.member, None)
        if not self.connections and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.connections:
            await asyncio.sleep(settings.PRESENCE_HEARTBEAT_SECONDS)
            await _beat(list(self.connections.values()), clock())


_heartbeats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Heartbeat] = weakref.WeakKeyDictionary()


def _heartbeat() -> _Heartbeat:
    loop = asyncio.get_running_loop()
    if loop not in _heartbeats:
        _heartbeats[loop] = _Heartbeat()
    return _heartbeats[loop]


# --- Reads (sync: Celery tasks, admin) ------------------------------------------------------------


def read(room: str) -> Snapshot:
    """The room's live members, pruning silent ones first; staff hear of it if that changed an order's watchers."""
    snapshot = _snapshot("read", "", store().run(room, "read", "", clock(), ""))
    order_id = order_id_of(room)
    if order_id is not None and snapshot.changed:
        push.publish_presence(order_id, snapshot.watchers())
    return snapshot


def watchers(order_id: int) -> list[Watcher]:
    return read(order_room(order_id)).watchers()


def is_reachable(*, user_id: int, order_id: int) -> bool:
    """Whether the user has a live socket that shows this order's changes: their stream, or the order itself."""
    if read(user_room(user_id)).live:
        return True
    return any(user_id_of(member) == user_id for member in read(order_room(order_id)).live)


def prune() -> int:
    """Prune every room (the periodic task); staff hear of each order whose watchers changed. Answers how many."""
    return sum(len(read(room).pruned) for room in store().rooms())
