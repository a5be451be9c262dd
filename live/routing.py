from __future__ import annotations

from django.urls import URLPattern, path

from live.consumers import LiveConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws", LiveConsumer.as_asgi()),
    path("ws/", LiveConsumer.as_asgi()),
]
