from __future__ import annotations

from django.urls import path

from agent.consumers import ChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<uuid:conversation>/", ChatConsumer.as_asgi()),
]
