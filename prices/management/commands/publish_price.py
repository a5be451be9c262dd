"""``manage.py publish_price <id> --price P``: one tick through the price layer, like a feed."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from live import bus
from prices.records import instrument_normalize
from prices.serializers import price_json
from prices.services import price_publish


class Command(BaseCommand):
    help = "Publish one price tick (cache + WebSocket push); works from any process with REDIS_URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("instrument", help="005930 or EXCHANGE:SYMBOL, e.g. BINANCE:BTC/USDT")
        parser.add_argument("--price", required=True)
        parser.add_argument("--volume")
        parser.add_argument("--change")
        parser.add_argument("--change-rate")
        parser.add_argument("--bid")
        parser.add_argument("--ask")
        parser.add_argument(
            "--simulated",
            action="store_true",
            help="Publish it as the simulated feed's tick (labelled simulated, never realtime).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        instrument = instrument_normalize(options["instrument"])
        if instrument is None:
            raise CommandError(f"not an instrument id: {options['instrument']!r}")
        try:
            record = price_publish(
                instrument,
                options["price"],
                volume=options["volume"],
                change=options["change"],
                change_rate=options["change_rate"],
                bid_price=options["bid"],
                ask_price=options["ask"],
                feed="simulated" if options["simulated"] else "manual",
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        bus.flush()  # the push leaves from a background thread; let it go before exiting
        self.stdout.write(json.dumps(price_json(record), ensure_ascii=False))
