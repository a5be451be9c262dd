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

import signal
from types import FrameType
from typing import Any

from uvicorn_worker import UvicornWorker

from quanttrade.uvicorn_options import UVICORN_OPTIONS


class Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, **UVICORN_OPTIONS}

    def init_signals(self) -> None:
        """SIGTERM (a deploy, gunicorn's max-requests) finishes this process's own orders before
        it ends. uvicorn shuts the server down gracefully, then raises the signal again with the
        handler it found (the default: the process ends at once, no ``atexit``): that handler
        is this one, which lets the orders under way finish first."""
        super().init_signals()
        signal.signal(signal.SIGTERM, _finish_orders_then_end)

    def load_wsgi(self) -> None:
        """Load the application, then start this web process's own order threads
        (ORDER_WEB_THREADS, orders.services.web_execution_start)."""
        super().load_wsgi()
        from orders.services import web_execution_start  # noqa: PLC0415 - needs the app loaded

        web_execution_start()


def _finish_orders_then_end(signum: int, _frame: FrameType | None) -> None:
    from orders.services import web_execution_stop  # noqa: PLC0415 - needs the app loaded

    web_execution_stop()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
