"""``manage.py pricefeed``: run the PRICE_FEEDS in the foreground (distributed mode)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

import feeds


class Command(BaseCommand):
    help = "Run the price feeds named in PRICE_FEEDS (or --feeds) until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--feeds", help="Comma list overriding PRICE_FEEDS: simulated,kis,ccxt")

    def handle(self, *args: Any, **options: Any) -> None:
        names = (
            [n.strip() for n in options["feeds"].split(",")]
            if options["feeds"]
            else list(settings.PRICE_FEEDS)
        )
        try:
            for name in names:
                feeds.feed_class(name)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        self.stdout.write(f"[INFO] 가격 피드 실행: {', '.join(names) or '-'}")
        feeds.run_forever(names, stop)
