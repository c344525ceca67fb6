"""ASGI entry point: HTTP to Django, WebSockets through the handshake gate (rate limits, origins), session and
JWT auth to consumers."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models (as get_asgi_application does).
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.asgi_handler import ReusedThreadsASGIHandler  # noqa: E402
from config.logs import RequestContextMiddleware  # noqa: E402
from realtime.auth import JWTAuthMiddleware  # noqa: E402
from realtime.gate import HandshakeGate  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

# Outermost: every log line of a request or a socket carries its id.
application = RequestContextMiddleware(ProtocolTypeRouter(
    {
        "http": ReusedThreadsASGIHandler(),
        "websocket": HandshakeGate(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
))


# A server holds every open socket's objects for hours, and with the default thresholds the collector scanned
# them all every few hundred frames: 200-300 ms pauses in a fan-out to 1,000 sockets (docs/performance.md).
# Objects made at start-up leave the scans for good; short-lived ones get room to die before a collection.
gc.freeze()
gc.set_threshold(50_000, 20, 10)
