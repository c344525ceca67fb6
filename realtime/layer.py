"""How sync code (Celery tasks, the admin, signal receivers) sends on the channel layer: one event loop per
process, on a daemon thread, and a bound on every send."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

# Longer than any healthy group_send; a stuck Redis raises TimeoutError, which the push task retries. The bound
# of every layer send from sync code (tasks), on any Celery pool (docs/reliability.md, "Bounds").
LAYER_SEND_TIMEOUT_SECONDS = 10.0


class _LayerLoop:
    """One event loop per process, on a daemon thread, that sync code sends through.

    async_to_sync from a plain thread runs each call on a new event loop, and channels_redis keeps its
    connection pools per loop: every push paid for a new loop and new Redis connections (~15-30 ms, bench/).
    Here the loop, and so the layer's pools, live as long as the process. Rebuilt after a fork (Celery's
    prefork children): threads do not survive fork.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="channel-layer-loop", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_layer_loop = _LayerLoop()


def run(coroutine: Coroutine[Any, Any, None], *, timeout: float = LAYER_SEND_TIMEOUT_SECONDS) -> None:
    """Run a channel-layer coroutine from sync code and wait for it (errors and timeouts raise here).

    The in-memory layer (embedded mode, some tests) lives on the caller's event loop, so it keeps
    async_to_sync, which runs the coroutine there when called from within sync_to_async.
    """
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        async_to_sync(_await)(coroutine)
        return
    future = asyncio.run_coroutine_threadsafe(coroutine, _layer_loop.loop())
    try:
        future.result(timeout=timeout)
    except TimeoutError:
        future.cancel()
        raise


def uses_own_loop() -> bool:
    """Whether sends go through this process's layer loop (any layer but the in-memory one)."""
    return not isinstance(get_channel_layer(), InMemoryChannelLayer)


async def _await(coroutine: Coroutine[Any, Any, None]) -> None:
    await coroutine
