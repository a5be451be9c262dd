"""Where signals arrive: the webhook's URL paths (``webhooks.urls`` routes both), known without
loading Django (the ASGI entry point reads them before the apps are set up)."""

from __future__ import annotations

WEBHOOK_PATHS = frozenset({"/api/webhook", "/api/webhook/"})
