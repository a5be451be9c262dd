"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

from __future__ import annotations

import os
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain and the view run in ONE thread hop.

    Every HTTP view of the product is synchronous. Django's async chain runs each
    middleware's process_request and process_response in a sync_to_async hop of its own
    (MiddlewareMixin.__acall__), a dozen hops per request for this middleware stack, and one
    sync-only middleware (whitenoise) adds two more: measured through the servers, most of a
    webhook's CPU beyond the view itself (docs/benchmarks-speed.md). Here the chain is built
    synchronous and the whole of it runs in one hop to the sync thread, as a WSGI server would
    run it. An async view would still work (Django adapts it), at the cost of a hop."""

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        return response


def _django_http_app() -> Any:
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()


# Build the Django app (and so load the apps) before importing anything that touches models.
django_asgi_app = _django_http_app()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live.middleware import WebSocketAuthStack  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402
from live.security import OriginValidator  # noqa: E402
from quanttrade.heap import startup_heap_freeze  # noqa: E402
from webhooks.services import spool_replayer_start  # noqa: E402

# Webhooks spooled while the database was down (by this or an earlier process) are replayed
# by every web process as soon as the database answers (webhooks/spool.py).
spool_replayer_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(WebSocketAuthStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything alive now lives as long as the process: out of the garbage collector's walks.
startup_heap_freeze()
