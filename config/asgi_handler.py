"""Django's ASGI handler with long-lived request threads.

Django runs each HTTP request in a ThreadSensitiveContext of its own, so the request's sync work (a sync view,
`response.close` and the request_finished signal) runs on one thread; by default asgiref makes that thread
for the request and joins it at the end: a thread start and a join per request, about a seventh of an API
GET's CPU (docs/performance.md, step 18). Here each request borrows a one-thread executor from a free list
and gives it back, so threads are made only up to the peak of requests in flight and live on. A persistent
database connection (DATABASE_POOL=false) stays with its thread for the next request instead of with a
thread that is gone; the pool gets its connection back at request_finished as before.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler


class ReusedThreadsASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.idle_executors: list[ThreadPoolExecutor] = []  # only touched on the event loop's thread

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = (self.idle_executors.pop() if self.idle_executors
                    else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request"))
        try:
            # With an executor given, asgiref runs the request's thread-sensitive calls on it and leaves it
            # running at the exit (Django's own handler awaits every task it started before returning).
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.idle_executors.append(executor)
