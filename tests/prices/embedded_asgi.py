"""Test-only ASGI entry: the real application plus the simulated feed in a daemon thread,
as ``manage.py serve`` runs them in embedded mode (used by test_live_server.py)."""

from __future__ import annotations

from django.conf import settings

from quanttrade.asgi import application  # noqa: F401 - re-exported for daphne

settings.PRICE_SIMULATED_INTERVAL_SECONDS = 0.3

import feeds  # noqa: E402

feeds.run_in_background(["simulated"])
