"""``manage.py collect_daily``: store daily bars from a CSV file, ccxt OHLCV, KIS or Kiwoom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from feeds import daily


class Command(BaseCommand):
    help = "Collect daily OHLCV bars into prices.DailyPrice (CSV, ccxt, KIS or Kiwoom)."

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--csv", type=Path, help="CSV with ticker,date,open,high,low,close,volume")
        source.add_argument("--ccxt", metavar="EXCHANGE", help="ccxt exchange id, e.g. binance")
        source.add_argument("--kis", action="store_true", help="KIS domestic daily chart")
        source.add_argument(
            "--kiwoom",
            action="store_true",
            help="Kiwoom daily chart (ka10081; the first active KIWOOM account)",
        )
        parser.add_argument("--ticker", help="CSV: ticker for every row (when the file has no ticker column)")
        parser.add_argument("--symbols", default="", help="ccxt: comma list, e.g. BTC/USDT,ETH/USDT")
        parser.add_argument("--tickers", default="", help="KIS/Kiwoom: comma list of Korean tickers")
        parser.add_argument("--days", type=int, default=100, help="ccxt/KIS/Kiwoom: how far back (days)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["csv"]:
                bars = daily.bars_from_csv(options["csv"], ticker=options["ticker"])
            elif options["ccxt"]:
                import ccxt  # noqa: PLC0415 - ccxt takes about a second to import; only this source needs it

                code = options["ccxt"].lower()
                exchange = getattr(ccxt, code)({"enableRateLimit": True})
                bars = []
                for symbol in filter(None, (s.strip() for s in options["symbols"].split(","))):
                    bars += daily.bars_from_ccxt(exchange, code, symbol, days=options["days"])
            else:
                tickers = [t.strip() for t in options["tickers"].split(",") if t.strip()]
                if options["kiwoom"]:
                    bars = daily.bars_from_kiwoom(tickers, days=options["days"])
                else:
                    bars = daily.bars_from_kis(tickers, days=options["days"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        written = daily.daily_store(bars)
        instruments = len({b.ticker for b in bars})
        self.stdout.write(f"[INFO] 일봉 저장: {written}개 ({instruments}종목)")
