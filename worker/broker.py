"""A repair to kombu's Redis transport: a channel cut off from its broker connection fails as a connection error.

Celery 5.7 (`Consumer.on_connection_error_after_connected`) first `collect()`s a broken connection, which
detaches the transport from it (`transport.client = None`) but leaves the default channel half-closed when
Redis is gone (its close raised a connection error before the channel was marked closed), then closes the
connection again. That second close reaches the channel's unacked push (acks_late, the one in flight), and
restoring it needs the broker's address from `transport.client`: an AttributeError, which neither kombu nor
Celery tolerate on that path, so the worker logged "Unrecoverable error" and exited. A push that finishes later
and acks on that channel hit the same AttributeError. (celery#7185 and #9250 are the same family: cleanup after
a connection loss that raises something other than a connection error.)

With this repair the channel raises redis's ConnectionError instead: Celery logs it and reconnects. The unacked
message stays in Redis's `unacked` hash (redelivered after the visibility timeout, if Redis kept its data) and
the outbox sweep re-sends its event long before (docs/reliability.md). tests/e2e/test_broker_outages.py.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

_connparams = kombu_redis.Channel._connparams  # type: ignore[attr-defined]  # kombu's private method, patched


def _connparams_of_attached_channel(channel: Any, asynchronous: bool = False) -> dict[str, Any]:
    if channel.connection.client is None:
        raise RedisConnectionError("this channel's broker connection was closed (the broker went away)")
    params: dict[str, Any] = _connparams(channel, asynchronous=asynchronous)
    return params


def install() -> None:
    """Patch kombu's Redis channels (and so its Sentinel channels, which inherit the method); idempotent."""
    kombu_redis.Channel._connparams = _connparams_of_attached_channel  # type: ignore[attr-defined]
