"""ASGI entry point: daphne serves HTTP and websockets from this one application."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI every request thread would keep a persistent connection of its own ("too many clients" at 200 open
# conversations, measured by bench/chat_latency.py): the web process hands each request's connection back to a
# bounded pool instead, so that a websocket frame does not pay for a new PostgreSQL connection (5-11 ms) either.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "0")
os.environ.setdefault("DATABASE_POOL_MAX_SIZE", "10")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from agent.routing import websocket_urlpatterns  # noqa: E402

# A page may open the chat websocket when it is served from one of ALLOWED_HOSTS (Steward's own pages) or from an
# origin on the widget allow-list (STEWARD_WIDGET_ORIGINS); any other Origin is refused at the handshake.
_allowed_origins = [*settings.ALLOWED_HOSTS, *settings.STEWARD_WIDGET_ORIGINS]
if settings.DEBUG and not settings.ALLOWED_HOSTS:
    _allowed_origins += ["localhost", "127.0.0.1", "[::1]"]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), _allowed_origins),
    }
)
