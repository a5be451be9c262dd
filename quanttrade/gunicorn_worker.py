"""The gunicorn worker class for QuantTrade: uvicorn's, with its proxy-header rewriting off
(and /ws frames uncompressed, ``UVICORN_OPTIONS``).

uvicorn believes X-Forwarded-For from FORWARDED_ALLOW_IPS (127.0.0.1 by default) and hands
the claimed address to the application as the peer; a local caller could then claim a
TradingView address and pass WEBHOOK_IP_ALLOWLIST. The application alone decides whom to
believe (TRUSTED_PROXIES, strategies/net.py), so the server must pass the real peer through.

Each worker process, once the application is loaded, starts its own order threads
(ORDER_WEB_THREADS; orders/handoff.py).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker

from quanttrade.uvicorn_options import UVICORN_OPTIONS


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, **UVICORN_OPTIONS}

    def load_wsgi(self) -> None:
        """Load the application, then start this web process's own order threads
        (ORDER_WEB_THREADS, orders.services.web_execution_start)."""
        super().load_wsgi()
        from orders.services import web_execution_start  # noqa: PLC0415 - needs the app loaded

        web_execution_start()
