"""The bench's web server application: the platform's (config.asgi) plus two routes under /__bench__/ that
exist only in the bench (uvicorn is started on `bench.asgi:application` there, on 127.0.0.1).

- `POST /__bench__/frames/on` | `off`, `GET /__bench__/frames`: while on, the time each `order.status` frame
  was written to its socket (the server's `send` returned) is kept with its event id; the GET hands them over
  and forgets them. Off (the default) a frame costs one flag test, so the other sessions measure the platform.
- `GET /__bench__/floor/<order id>`: the API's floor, a minimal Django view doing one query, on the same
  process, event loop and sync thread as the API: one ORM read of the order's status, on the thread Django
  runs sync views on, answered as JSON. No middleware, no URL resolving, no authentication: what any request
  to a sync view doing one query costs at least.
"""

from __future__ import annotations

import json
import time
from typing import Any

from asgiref.sync import sync_to_async

from config.asgi import application as platform

Scope = dict[str, Any]
PREFIX = "/__bench__/"
STATUS_FRAME = '{"type": "order.status"'

recording = False
written: list[tuple[float, str]] = []


def one_query(order_id: int) -> str | None:
    from django.db import connection

    from orders.models import Order

    try:
        return Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    finally:
        connection.close()  # back to the pool, as Django does when a request finishes


async def respond(send: Any, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


async def bench_route(scope: Scope, receive: Any, send: Any) -> None:
    global recording
    path = scope["path"].removeprefix(PREFIX)
    if path.startswith("floor/") and path.removeprefix("floor/").isdigit():
        status = await sync_to_async(one_query)(int(path.removeprefix("floor/")))
        await respond(send, 200 if status else 404, {"status": status})
    elif path in ("frames/on", "frames/off") and scope["method"] == "POST":
        recording = path == "frames/on"
        await respond(send, 200, {"recording": recording})
    elif path == "frames" and scope["method"] == "GET":
        taken = written[:]
        written.clear()
        await respond(send, 200, [{"at": at, "event_id": json.loads(text).get("event_id")} for at, text in taken])
    else:
        await respond(send, 404, {"detail": "no such bench route"})


async def application(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith(PREFIX):
        await bench_route(scope, receive, send)
        return
    if scope["type"] != "websocket":
        await platform(scope, receive, send)
        return

    async def timed_send(message: dict[str, Any]) -> None:
        await send(message)
        if recording and message["type"] == "websocket.send" and (message.get("text") or "").startswith(STATUS_FRAME):
            written.append((time.time(), message["text"]))

    await platform(scope, receive, timed_send)
