"""The position check: every WS_POSITION_CHECK_SECONDS the order sockets and streams of an event loop learn, in one
database call for all of them, where the orders they follow are now, and each replays what a lost push kept from it.

A push can be lost on its way (a channel over the layer's capacity, a server busy restarting, a group membership
that expired); the next event of that order fills the gap from the log, but after `delivered` none comes. This check
bounds the wait for any lost push by one interval, whether or not the client pings.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from orders import selectors

logger = logging.getLogger(__name__)

# How far before the previous check the staff read looks back: an order saved (`updated_at`) in a transaction that
# committed later, and other hosts' clocks a little behind this one.
CHANGED_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class Following:
    """What one socket follows: one order, one customer's orders, or (a staff stream) every order."""

    order_id: int | None = None
    customer_id: int | None = None
    every_order: bool = False


@dataclass
class Positions:
    """The current seq of the followed orders: by order, by customer (all their orders), and orders changed lately."""

    orders: dict[int, int] = field(default_factory=dict)
    customers: dict[int, dict[int, int]] = field(default_factory=dict)
    changed: dict[int, int] = field(default_factory=dict)

    def of(self, following: Following) -> dict[int, int]:
        """The positions one socket compares with what it sent."""
        if following.order_id is not None:
            seq = self.orders.get(following.order_id)
            return {} if seq is None else {following.order_id: seq}
        if following.customer_id is not None:
            return self.customers.get(following.customer_id, {})
        return self.changed if following.every_order else {}


class Follower(Protocol):
    async def catch_up(self, current: dict[int, int]) -> None:
        """Replay what this socket has not sent of orders now at `current` (order id → seq)."""


def read_positions(followings: list[Following], changed_since: datetime | None) -> Positions:
    """One read for the whole loop: at most three queries, however many sockets."""
    order_ids = {f.order_id for f in followings if f.order_id is not None}
    customer_ids = {f.customer_id for f in followings if f.customer_id is not None}
    return Positions(
        orders=selectors.order_seqs(order_ids) if order_ids else {},
        customers=selectors.customers_order_seqs(customer_ids) if customer_ids else {},
        changed=selectors.changed_order_seqs(changed_since) if changed_since is not None else {},
    )


class _Check:
    """The timer of one event loop: every interval, one read, then each follower catches up."""

    def __init__(self) -> None:
        self.followers: dict[Follower, Following] = {}
        self.task: asyncio.Task[None] | None = None
        # Start of the last check that read the database: staff streams look for orders changed since (margin).
        self.checked_at = time.time()

    def add(self, follower: Follower, following: Following) -> None:
        self.followers[follower] = following
        if self.task is None or self.task.done():
            self.checked_at = time.time()
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, follower: Follower) -> None:
        self.followers.pop(follower, None)
        if not self.followers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while self.followers:
            await asyncio.sleep(settings.WS_POSITION_CHECK_SECONDS)
            await self.check()

    async def check(self) -> None:
        followers = dict(self.followers)
        started = time.time()
        changed_since = None
        if any(following.every_order for following in followers.values()):
            changed_since = datetime.fromtimestamp(self.checked_at - CHANGED_MARGIN_SECONDS, tz=UTC)
        try:
            positions = await database_sync_to_async(read_positions)(list(followers.values()), changed_since)
        except Exception:
            # The database is down or slow: nothing is lost, the next check reads from the same point again.
            logger.exception("Position check of %d socket(s) failed", len(followers))
            return
        self.checked_at = started
        # Concurrently, so one slow socket does not hold the others back; each serialises with its own handlers.
        results = await asyncio.gather(
            *(follower.catch_up(positions.of(following)) for follower, following in followers.items()
              if follower in self.followers),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                logger.error("Position catch-up failed", exc_info=result)


_checks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Check] = weakref.WeakKeyDictionary()


def _check() -> _Check:
    loop = asyncio.get_running_loop()
    if loop not in _checks:
        _checks[loop] = _Check()
    return _checks[loop]


def follow(follower: Follower, following: Following) -> None:
    """Check this socket's position every WS_POSITION_CHECK_SECONDS until unfollow()."""
    _check().add(follower, following)


def unfollow(follower: Follower) -> None:
    _check().discard(follower)
