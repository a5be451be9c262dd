"""The instruments shown and followed without being traded: the demo set and PRICE_WATCHLIST."""

from __future__ import annotations

from django.conf import settings

from prices.records import instrument_normalize

# The instruments the simulated feed and seed_demo cover, in the dashboard's order.
DEMO_INSTRUMENTS: tuple[str, ...] = (
    "005930", "000660", "069500", "035420",
    "BINANCE:BTC/USDT", "BINANCE:ETH/USDT", "BINANCE:SOL/USDT", "UPBIT:BTC/KRW",
    "NASD:AAPL", "NASD:MSFT", "NASD:NVDA", "NYSE:TSLA", "NYSE:BRK.B",
    "101TC000", "CME:ESZ4", "CME:NQH5",
)  # fmt: skip


def watchlist() -> list[str]:
    return [i for i in (instrument_normalize(x) for x in settings.PRICE_WATCHLIST) if i]
