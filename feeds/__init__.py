"""Price feeds: a registry of name -> dotted path, imported on first use.

``PRICE_FEEDS`` (comma list) names the feeds to run: ``simulated``, ``kis``, ``ccxt``.
Embedded mode starts them in daemon threads next to the server (:func:`run_in_background`);
distributed mode runs them in their own process with ``manage.py pricefeed``
(:func:`run_forever`). Each feed runs its own asyncio loop and publishes through
:func:`prices.services.price_publish_async`, exactly like any other publisher.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import connections

log = logging.getLogger("quanttrade.prices")

FEEDS: dict[str, str] = {
    "simulated": "feeds.simulated.SimulatedFeed",
    "kis": "feeds.kis.KisFeed",
    "kiwoom": "feeds.kiwoom.KiwoomFeed",
    "ccxt": "feeds.ccxt_feed.CcxtFeed",
}
_threads: list[threading.Thread] = []


def feed_class(name: str) -> type[Any]:
    try:
        path = FEEDS[name.strip().lower()]
    except KeyError as exc:
        raise ValueError(f"unknown price feed: {name!r} (known: {', '.join(FEEDS)})") from exc
    module_name, _, class_name = path.rpartition(".")
    return getattr(import_module(module_name), class_name)


def configured_feeds(names: list[str] | None = None) -> list[Any]:
    names = settings.PRICE_FEEDS if names is None else names
    return [feed_class(n)() for n in names if n.strip()]


def _run_thread(feed: Any, stop: threading.Event) -> None:
    try:
        asyncio.run(feed.run(stop))
    except Exception as exc:  # a crashed feed is reported, not fatal to the server
        log.exception("가격 피드 종료: %s %s", feed.name, exc)
        feed.health.error(str(exc))
        feed.health.stopped()
    finally:
        connections.close_all()  # give this thread's connection back (to the pool, on PostgreSQL)


def run_in_background(names: list[str] | None = None) -> threading.Event:
    """Start the configured feeds in daemon threads; returns the event that stops them."""
    stop = threading.Event()
    for feed in configured_feeds(names):
        thread = threading.Thread(
            target=_run_thread, args=(feed, stop), name=f"pricefeed-{feed.name}", daemon=True
        )
        thread.start()
        _threads.append(thread)
        log.info("가격 피드 시작: %s", feed.name)
    return stop


def run_forever(names: list[str] | None = None, stop: threading.Event | None = None) -> None:
    """Run the configured feeds in this thread until ``stop`` is set (``manage.py pricefeed``)."""
    stop = stop or threading.Event()
    feeds = configured_feeds(names)
    if not feeds:
        log.warning("PRICE_FEEDS가 비어 있어 실행할 가격 피드가 없습니다")
        return

    async def main() -> None:
        await asyncio.gather(*(feed.run(stop) for feed in feeds))

    asyncio.run(main())
