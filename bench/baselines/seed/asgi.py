"""ASGI entry point of the seed baseline, wired exactly like the seed's myproject/asgi.py."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baselines.seed.settings")

from django.core.asgi import get_asgi_application

# The seed imports its routing before get_asgi_application(); that raises AppRegistryNotReady
# once consumers import auth models, so Django is set up first here.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from bench.baselines.seed import routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(routing.websocket_urlpatterns))),
    }
)
