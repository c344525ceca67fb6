"""A third party's client of the order sockets, written against the AsyncAPI document alone.

It imports nothing of this repository (stdlib, websockets and jsonschema only) and reads from the document the
server serves at /api/asyncapi.json everything it needs: the channel addresses and their `after_seq` query, the
bearer subprotocol, the HTTP endpoints for tokens and the catch-up (`x-http`), each frame's schema (every frame
both ways is validated against it) and what to do after each close code (`x-close-codes`' `then`). The resume
rule is docs/protocol.md's: a last seq per order, apply `seq == last + 1`, drop repeats, hold frames ahead of a
gap until it fills, `order.reset` sets last, and after every reconnect re-read what changed while away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _time_with_offset(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; the document asks for ISO 8601 with its offset.
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


class ProtocolViolation(AssertionError):
    """Something the server did that the document does not allow."""


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def http(method: str, url: str, body: Any = None, token: str | None = None) -> Answer:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, answer_headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, dict(error.headers)
    return Answer(status, json.loads(raw) if raw else None, answer_headers)


class Document:
    """The AsyncAPI document, and the answers a client needs from it."""

    def __init__(self, raw: dict[str, Any]) -> None:
        if not str(raw.get("asyncapi", "")).startswith("3."):
            raise ProtocolViolation(f"not an AsyncAPI 3 document: {raw.get('asyncapi')!r}")
        self.raw = raw

    @classmethod
    def fetch(cls, url: str) -> Document:
        answer = http("GET", url)
        if answer.status != 200:
            raise ProtocolViolation(f"GET {url} answered {answer.status}")
        return cls(answer.body)

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"]
            if not pointer.startswith("#/"):
                raise ProtocolViolation(f"a reference outside the document: {pointer}")
            node = self.raw
            for part in pointer[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def channel(self, channel: str) -> dict[str, Any]:
        return dict(self.resolve(self.raw["channels"][channel]))

    def address(self, channel: str, query: dict[str, int] | None = None, **parameters: int) -> str:
        path = str(self.channel(channel)["address"])
        for name, value in parameters.items():
            path = path.replace("{" + name + "}", str(value))
        if "{" in path:
            raise ProtocolViolation(f"{channel}: a parameter left in {path}")
        if query:
            known = self.channel(channel)["bindings"]["ws"]["query"]["properties"]
            if set(query) - set(known):
                raise ProtocolViolation(f"{channel}: the document has no query {set(query) - set(known)}")
            path += "?" + urllib.parse.urlencode(query)
        return path

    def frames(self, channel: str, action: str) -> dict[str, jsonschema.protocols.Validator]:
        """Frame `type` → a validator of its payload, for the frames the server sends (`send`) on `channel` or
        takes (`receive`)."""
        validators: dict[str, Any] = {}
        for operation in self.raw["operations"].values():
            if operation["action"] != action or self.resolve(operation["channel"]) is not self.raw["channels"][
                    channel]:
                continue
            for reference in operation["messages"]:
                message = self.resolve(reference)
                payload = self.resolve(message["payload"])
                # The payload's $refs point into the document: give the schema the document's components.
                schema = {**payload, "components": self.raw["components"]}
                validators[message["name"]] = jsonschema.Draft7Validator(schema, format_checker=FORMATS)
        if not validators:
            raise ProtocolViolation(f"no {action} operation on {channel}")
        return validators

    def subprotocol(self, scheme: str) -> str:
        return str(self.raw["components"]["securitySchemes"][scheme]["x-subprotocol"])

    def then(self, code: int | None, reason: str) -> str:
        """What to do after a close: the document's `then` for (code, reason), else its `x-close-other`."""
        for entry in self.raw["x-close-codes"]:
            if entry["code"] == code and entry["reason"] == reason:
                return str(entry["then"])
        for entry in self.raw["x-close-codes"]:
            if entry["code"] == code and not entry["reason"]:
                return str(entry["then"])
        if code is not None and 4000 <= code < 5000:
            raise ProtocolViolation(f"close {code} {reason!r} is not in the document")
        return str(self.raw["x-close-other"]["then"])

    def endpoint(self, name: str, **parameters: int) -> tuple[str, str]:
        entry = self.raw["x-http"][name]
        path = str(entry["path"])
        for key, value in parameters.items():
            path = path.replace("{" + key + "}", str(value))
        return str(entry["method"]), path


class Account:
    """One device's login: access and refresh token from the document's token endpoints."""

    def __init__(self, document: Document, base: str, username: str, password: str, *, max_wait: float) -> None:
        self.document, self.base, self.max_wait = document, base, max_wait
        self.username, self.password = username, password
        self.access = self.refresh_token = ""
        self.expires_at = self._asked_at = 0.0
        self.logins = self.refreshes = self.refused = 0
        self._refreshing: asyncio.Task[None] | None = None

    async def request(self, method: str, url: str, body: Any = None, token: str | None = None) -> Answer:
        """One HTTP call, tried again while the server is unreachable or answers 429/503 (waiting its
        `Retry-After`, capped so a test stays short)."""
        while True:
            try:
                answer = await asyncio.to_thread(http, method, url, body, token)
            except OSError:  # refused, reset, timed out: the server is restarting or away
                await asyncio.sleep(min(0.25, self.max_wait))
                continue
            if answer.status not in (429, 503):
                return answer
            await asyncio.sleep(min(float(answer.headers.get("Retry-After", "1")), self.max_wait))

    async def call(self, name: str, body: dict[str, Any]) -> Answer:
        method, path = self.document.endpoint(name)
        self._asked_at = time.monotonic()  # a token's life counts from when it was asked for, not answered
        return await self.request(method, self.base + path, body)

    def _take(self, answer: Answer) -> None:
        self.access, self.refresh_token = answer.body["access"], answer.body["refresh"]
        self.expires_at = self._asked_at + answer.body["expires_in"]

    async def login(self) -> None:
        answer = await self.call("token", {"username": self.username, "password": self.password})
        if answer.status != 200:
            raise ProtocolViolation(f"login answered {answer.status} {answer.body}")
        self.logins += 1
        self._take(answer)

    async def refresh(self) -> None:
        """A fresh access token; a refused refresh (spent, expired, logged out) means logging in again.

        One at a time (callers meanwhile share it), never abandoned half-way: the server spends the refresh token it
        got, and sending a spent one again ends the whole login.
        """
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        answer = await self.call("refresh", {"refresh": self.refresh_token})
        if answer.status == 401:
            self.refused += 1
            await self.login()
            return
        if answer.status != 200:
            raise ProtocolViolation(f"refresh answered {answer.status} {answer.body}")
        self.refreshes += 1
        self._take(answer)

    async def get(self, name: str, query: dict[str, str] | None = None, **parameters: int) -> Any:
        method, path = self.document.endpoint(name, **parameters)
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        while True:
            if time.monotonic() >= self.expires_at:
                await self.refresh()
            answer = await self.request(method, url, None, self.access)
            if answer.status == 200:
                return answer.body
            if answer.status == 401:  # expired or logged out meanwhile
                await self.refresh()
                continue
            raise ProtocolViolation(f"{method} {url} answered {answer.status} {answer.body}")


@dataclass
class LiveOrders:
    """One resumed socket: the `order` channel for one order, or the `notifications` stream for all the user's
    orders. Reconnects by itself until `stop()`; `applied` is what the rule applied, per order, in order."""

    document: Document
    account: Account
    ws_base: str
    order_id: int | None = None
    in_band_refresh: bool = False
    ping_every: float = 2.0
    pong_within: float = 3.0
    max_delay: float = 1.0
    last: dict[int, int] = field(default_factory=dict)
    applied: dict[int, list[int]] = field(default_factory=dict)
    held: dict[int, dict[int, dict[str, Any]]] = field(default_factory=dict)
    closes: list[tuple[int | None, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    resets: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    connections: int = 0
    repeats: int = 0
    held_back: int = 0
    auth_oks: int = 0
    as_of: str | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    @property
    def channel(self) -> str:
        return "notifications" if self.order_id is None else "order"

    async def start(self) -> None:
        """Where each order is now (rule 1), then follow."""
        self.server_frames = self.document.frames(self.channel, "send")
        self.client_frames = self.document.frames(self.channel, "receive")
        if self.order_id is None:
            await self._read_list(since=None)
        else:
            order = await self.account.get("order", order_id=self.order_id)
            self.last[self.order_id] = order["seq"]
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read_list(self, since: str | None) -> list[int]:
        """Walk the order list (all of it, or what changed since); the orders it names that were unknown."""
        query: dict[str, str] = {} if since is None else {"updated_since": since}
        unknown: list[int] = []
        first = True
        while True:
            page = await self.account.get("orders", query)
            if first:
                self.as_of, first = page["as_of"], False
            for order in page["orders"]:
                if order["id"] not in self.last:
                    unknown.append(order["id"])
                    if since is None:
                        self.last[order["id"]] = order["seq"]
            if not page["next"]:
                return unknown
            query = {**query, "cursor": page["next"]}

    def _url(self) -> str:
        if self.order_id is None:
            return self.ws_base + self.document.address("notifications")
        return self.ws_base + self.document.address("order", {"after_seq": self.last[self.order_id]},
                                                    order_id=self.order_id)

    async def _run(self) -> None:
        try:
            await self._connect_until_stopped()
        except Exception as error:  # noqa: BLE001 (a crashed client is a failed run: the test reads violations)
            self.violations.append(f"the client stopped: {error!r}")
            raise

    async def _connect_until_stopped(self) -> None:
        delay = 0.05
        subprotocol = self.document.subprotocol("bearer")
        while not self._stopping:
            if time.monotonic() >= self.account.expires_at - 0.5:
                await self.account.refresh()  # rule 6: never open a socket with a token about to expire
            code: int | None = None
            reason = ""
            try:
                async with connect(self._url(), subprotocols=[subprotocol, self.account.access],
                                   open_timeout=5, ping_interval=None, close_timeout=2) as ws:
                    self.connections += 1
                    self._note(f"open {ws.subprotocol}")
                    if ws.subprotocol != subprotocol:
                        self.violations.append(f"the server selected {ws.subprotocol!r}, not {subprotocol!r}")
                    delay = await self._follow(ws, delay)
                    code, reason = ws.close_code, ws.close_reason or ""
            except InvalidStatus as refused:
                self.refusals.append(f"HTTP {refused.response.status_code}")
                self._note(self.refusals[-1])
            except (OSError, InvalidHandshake, TimeoutError) as failed:
                self.refusals.append(type(failed).__name__)
                self._note(self.refusals[-1])
            else:
                self.closes.append((code, reason))
                self._note(f"closed {code} {reason!r}")
                then = self.document.then(code, reason)
                if then == "stop":
                    self.violations.append(f"closed {code} {reason!r}, which the document says not to retry")
                    return
                if then == "refresh":
                    await self.account.refresh()
                elif then == "login":
                    await self.account.login()
            # Rule 6: a growing, jittered, capped delay, after any close too; it starts over only at a pong (a
            # refused socket opens before it closes, so an open is no sign of health).
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.max_delay)

    async def _follow(self, ws: ClientConnection, delay: float) -> float:
        """One connection, until it closes: subscribe and catch up, read, ping, refresh in band."""
        state = {"delay": delay, "pong_due": 0.0}
        reader = asyncio.create_task(self._read(ws, state))
        helpers = [asyncio.create_task(self._ping(ws, state))]
        if self.in_band_refresh:
            helpers.append(asyncio.create_task(self._refresh_in_band(ws)))
        try:
            if self.order_id is None:
                await self._resume_stream(ws)
            await reader
        except ConnectionClosed:
            pass
        finally:
            for task in [reader, *helpers]:
                task.cancel()
            for task in [reader, *helpers]:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
        return float(state["delay"])

    async def _send(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        validator = self.client_frames.get(frame["type"])
        if validator is None:
            raise ProtocolViolation(f"the {self.channel} channel takes no {frame['type']} frame")
        validator.validate(frame)
        await ws.send(json.dumps(frame))

    async def _resume_stream(self, ws: ClientConnection) -> None:
        """Rule 2 on the stream, then rule 7: subscribe each known order from its last seq, then re-read what
        changed while away and subscribe to any order not known yet from 0."""
        for order_id, seq in list(self.last.items()):
            await self._send(ws, {"type": "subscribe", "order_id": order_id, "after_seq": seq})
        if self.as_of is not None:
            since = (datetime.fromisoformat(self.as_of) - timedelta(seconds=60)).isoformat()
            for order_id in await self._read_list(since=since):
                if order_id not in self.last:
                    self.last[order_id] = 0
                    await self._send(ws, {"type": "subscribe", "order_id": order_id, "after_seq": 0})

    async def _ping(self, ws: ClientConnection, state: dict[str, float]) -> None:
        """Rule 5: no pong within the deadline after a ping means the socket is dead, open or not."""
        while True:
            await asyncio.sleep(self.ping_every)
            state["pong_due"] = time.monotonic() + self.pong_within
            await self._send(ws, {"type": "ping"})
            while state["pong_due"] and time.monotonic() < state["pong_due"]:
                await asyncio.sleep(0.05)
            if state["pong_due"]:
                self.closes.append((None, "no pong"))
                await ws.close()
                return

    async def _refresh_in_band(self, ws: ClientConnection) -> None:
        """The `auth` frame: a fresh access token before the socket's one expires, so it need not reconnect."""
        while True:
            # Halfway through the token's life (at most 60 s before its end): time for the refresh and the frame
            # even when the server is slow to answer.
            left = self.account.expires_at - time.monotonic()
            await asyncio.sleep(max(left - min(left / 2, 60.0), 0.2))
            await self.account.refresh()
            await self._send(ws, {"type": "auth", "token": self.account.access})
            self._note("auth sent")

    async def _read(self, ws: ClientConnection, state: dict[str, float]) -> None:
        async for raw in ws:
            frame = self._checked(raw)
            if frame is None:
                continue
            kind = frame["type"]
            if kind == "pong":
                state["pong_due"], state["delay"] = 0.0, 0.05
            elif kind == "auth.ok":
                self.auth_oks += 1
                self._note(f"auth.ok exp in {frame['exp'] - time.time():.1f}s")
            elif kind == "error":
                self.errors.append(frame)
            elif kind == "order.reset":
                await self._reset(frame)
            elif kind == "order.status":
                await self._offer(ws, frame)

    def _checked(self, raw: str | bytes) -> dict[str, Any] | None:
        """The frame if the document allows it on this channel; else a violation, noted."""
        if isinstance(raw, bytes):
            self.violations.append("a binary frame")
            return None
        frame = json.loads(raw)
        kind = frame.get("type") if isinstance(frame, dict) else None
        validator = self.server_frames.get(kind) if isinstance(kind, str) else None
        if validator is None:
            self.violations.append(f"a frame the {self.channel} channel does not send: {raw[:200]}")
            return None
        problems = [error.message for error in validator.iter_errors(frame)]
        if problems:
            self.violations.append(f"{kind} against its schema: {problems} in {raw[:200]}")
            return None
        return dict(frame)

    async def _offer(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        """Rules 3 and 8: apply seq == last + 1, drop seq <= last, hold a larger one until the gap fills."""
        order_id, seq = frame["order_id"], frame["seq"]
        if self.order_id is not None and order_id != self.order_id:
            self.violations.append(f"a frame of order {order_id} on the socket of order {self.order_id}")
            return
        if order_id not in self.last:
            # An order never seen (created while away): its whole history first.
            self.last[order_id] = 0
            await self._send(ws, {"type": "subscribe", "order_id": order_id, "after_seq": 0})
        if seq <= self.last[order_id]:
            self.repeats += 1
            return
        held = self.held.setdefault(order_id, {})
        if seq > self.last[order_id] + 1:
            self.held_back += 1
            held[seq] = frame
            return
        self._apply(frame)
        while (self.last[order_id] + 1) in held:
            self._apply(held.pop(self.last[order_id] + 1))
        for stale in [held_seq for held_seq in held if held_seq <= self.last[order_id]]:
            del held[stale]

    def _note(self, event: str) -> None:
        self.trace.append(f"{time.monotonic():.2f} {event}")

    def _apply(self, frame: dict[str, Any]) -> None:
        self.last[frame["order_id"]] = frame["seq"]
        self.applied.setdefault(frame["order_id"], []).append(frame["seq"])

    async def _reset(self, frame: dict[str, Any]) -> None:
        """Rule 4: the client is ahead of the log; last := its seq, and the order is read again."""
        self.resets.append(frame)
        self.last[frame["order_id"]] = frame["seq"]
        self.held.pop(frame["order_id"], None)
        await self.account.get("order", order_id=frame["order_id"])
