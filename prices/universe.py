"""Which instruments the feeds follow: the watchlist, the instruments of active strategies'
recent orders, the tracked Instrument rows, and (simulated feed) the demo instruments."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from prices.records import instrument_for, instrument_normalize

# The instruments the simulated feed and seed_demo cover, in the dashboard's order.
DEMO_INSTRUMENTS: tuple[str, ...] = (
    "005930", "000660", "069500", "035420",
    "BINANCE:BTC/USDT", "BINANCE:ETH/USDT", "BINANCE:SOL/USDT", "UPBIT:BTC/KRW",
    "NASD:AAPL", "NASD:MSFT", "NASD:NVDA", "NYSE:TSLA", "NYSE:BRK.B",
    "101TC000", "CME:ESZ4", "CME:NQH5",
)  # fmt: skip
RECENT_ORDER_DAYS = 7


def watchlist() -> list[str]:
    return [i for i in (instrument_normalize(x) for x in settings.PRICE_WATCHLIST) if i]


def universe(*, include_demo: bool = False) -> list[str]:
    """Instrument ids, de-duplicated, in a stable order."""
    from orders.models import Order
    from prices.models import Instrument

    ids: list[str] = list(DEMO_INSTRUMENTS) if include_demo else []
    ids += watchlist()
    since = timezone.now() - timedelta(days=RECENT_ORDER_DAYS)
    recent = (
        Order.objects.filter(strategy__is_active=True, created_at__gte=since)
        .exclude(symbol="")
        .values_list("market_type", "symbol", "account__exchange", "account__settings", "params")
        .distinct()[:2000]
    )
    for market_type, symbol, exchange, account_settings, params in recent:
        merged = {**(params or {}), **{"price_exchange": (account_settings or {}).get("price_exchange", "")}}
        ids.append(instrument_for(market_type, symbol, exchange=exchange, params=merged))
    ids += list(Instrument.objects.values_list("ticker", flat=True))
    return list(dict.fromkeys(ids))
