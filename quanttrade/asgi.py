"""ASGI entry point: HTTP through Django, WebSocket through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quanttrade.settings")
# Build the Django app (and so load the apps) before importing anything that touches models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from live.routing import websocket_urlpatterns  # noqa: E402
from live.security import OriginValidator  # noqa: E402
from webhooks.services import spool_replayer_start  # noqa: E402

# Webhooks spooled while the database was down (by this or an earlier process) are replayed
# by every web process as soon as the database answers (webhooks/spool.py).
spool_replayer_start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
