"""Origin check for WebSocket handshakes.

A browser always sends ``Origin`` with a WebSocket handshake; a page on another site must not
be able to open ``/ws`` with the user's session cookie. Allowed: an origin whose host matches
``ALLOWED_HOSTS`` (the same patterns Django uses for ``Host``), or one listed in
``WS_ALLOWED_ORIGINS`` (``https://app.example.com`` exactly, or ``*`` for any). A handshake
without ``Origin`` comes from a non-browser client (bots, the benchmark) and is allowed: the
cookie-riding attack this check prevents needs a browser. Settings are read per handshake.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.utils.http import is_same_domain


def origin_allowed(origin: str | None) -> bool:
    if origin is None:
        return True
    allowed_origins = [o.rstrip("/").lower() for o in settings.WS_ALLOWED_ORIGINS]
    if "*" in allowed_origins or origin.rstrip("/").lower() in allowed_origins:
        return True
    try:
        host = (urlsplit(origin).hostname or "").lower()
    except ValueError:
        return False
    if not host:
        return False
    if ":" in host:  # an IPv6 address: ALLOWED_HOSTS writes it in brackets ([::1]), as Host does
        host = f"[{host}]"
    return any(pattern == "*" or is_same_domain(host, pattern.lower()) for pattern in settings.ALLOWED_HOSTS)


class OriginValidator:
    """ASGI middleware refusing (HTTP 403 on the handshake) WebSockets from foreign origins."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            origin = None
            for name, value in scope.get("headers", []):
                if name == b"origin":
                    origin = value.decode("latin1")
                    break
            if not origin_allowed(origin):
                return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
