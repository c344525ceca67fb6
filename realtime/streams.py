"""What one connection has sent of each order's event stream, and what it owes the client next.

Delivery is at least once (retries, the outbox sweep, the position check) and pushes can overtake each other, so
each connection keeps, per order, the last seq it sent and where the unbroken run of frames up to it began. From
that it decides every frame: send it, drop it (already sent), or fill a gap from the log first. A plain class, apart
from the socket, so its rules are tested on their own (tests/realtime/test_streams.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Live(enum.Enum):
    SEND = "send"  # the next one: send it
    DROP = "drop"  # already sent
    GAP = "gap"  # one or more are missing before it: replay from the log instead


@dataclass
class StreamPositions:
    """Per order: the last seq sent, and the first seq of the unbroken run that ends there.

    `unknown_start` is where an order this connection has not sent yet begins: 0 for a customer's stream (a new
    order of theirs starts at its first event), None for a staff stream (it starts wherever it first hears).
    """

    unknown_start: int | None = None
    last: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)

    def live(self, order_id: int, seq: int) -> Live:
        """What to do with a pushed event."""
        last = self.last.get(order_id, self.unknown_start)
        if last is None or seq == last + 1:
            return Live.SEND
        return Live.DROP if seq <= last else Live.GAP

    def sent(self, order_id: int, seq: int) -> None:
        self.last[order_id] = seq
        self.first.setdefault(order_id, seq)

    def last_sent(self, order_id: int) -> int | None:
        return self.last.get(order_id, self.unknown_start)

    def start_at(self, order_id: int, seq: int) -> None:
        """The client has everything up to `seq` (it said so, or the connection opened there)."""
        self.last[order_id] = seq

    def begin_replay(self, order_id: int, after_seq: int) -> None:
        """Frames from the log follow `after_seq`; unless that continues what was sent, a new run starts."""
        if order_id not in self.first or after_seq != self.last.get(order_id):
            self.first[order_id] = after_seq + 1
        self.last[order_id] = after_seq

    def resume_from(self, order_id: int, after_seq: int) -> int:
        """Where a `subscribe` with `after_seq` must replay from: past what this connection already sent the client
        in one unbroken run from `after_seq` on (a live frame may have come before the subscribe)."""
        first = self.first.get(order_id)
        last = self.last.get(order_id, after_seq)
        if first is not None and first <= after_seq + 1 <= last + 1:
            return last
        return after_seq

    def reset(self, order_id: int, seq: int) -> None:
        """The client was ahead of the log; from now on the stream continues from `seq`."""
        self.last[order_id] = seq
        self.first[order_id] = seq + 1

    def behind(self, order_id: int, current: int) -> int | None:
        """For the position check: the seq to replay from if the log (now at `current`) is ahead of what was sent.

        A staff stream that never sent this order starts at its latest event.
        """
        last = self.last.get(order_id, self.unknown_start)
        if last is None:
            last = max(current - 1, 0)
        return last if current > last else None

    def ahead(self, order_id: int, current: int) -> bool:
        """Whether this connection sent more of the order than its log now holds (the log was restored)."""
        last = self.last.get(order_id, self.unknown_start)
        return last is not None and current < last
