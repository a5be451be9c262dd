"""The one price layer: every tick lands here, every reader reads here.

Minimal first version (webhook core): ticks live in Django's cache (in-process by default,
Redis when REDIS_URL is set). The realtime-price work extends this module behind the same
functions: ``instrument_for``, ``price_latest``, ``price_publish``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils import timezone

CACHE_PREFIX = "price:"


@dataclass(frozen=True)
class PriceRecord:
    ticker: str
    price: Decimal
    change: Decimal | None = None
    change_rate: Decimal | None = None
    volume: int | None = None
    bid_price: Decimal | None = None
    ask_price: Decimal | None = None
    timestamp: datetime | None = None
    source: str = "realtime"
    stale: bool = False


def instrument_for(
    market_type: str, symbol: str, *, exchange: str = "", params: dict[str, Any] | None = None
) -> str:
    """The price-layer id of an instrument: a bare ticker for Korean markets, else EXCHANGE:SYMBOL."""
    params = params or {}
    if market_type in ("DOMESTIC_STOCK", "DOMESTIC_FUTUREOPTION"):
        return symbol
    if market_type in ("SPOT", "FUTURES"):
        if not exchange or exchange == "PAPER":
            exchange = "UPBIT" if symbol.endswith("/KRW") else "BINANCE"
        return f"{exchange}:{symbol}"
    default = "NASD" if market_type == "OVERSEAS_STOCK" else "CME"
    return f"{str(params.get('exchange_code') or default).upper()}:{symbol}"


def price_latest(instrument: str) -> PriceRecord | None:
    """The newest tick for ``instrument``, or None when the layer has never seen it."""
    data = cache.get(CACHE_PREFIX + instrument)
    return PriceRecord(**data) if data else None


def price_publish(instrument: str, price: Decimal, **fields: Any) -> PriceRecord:
    """Store one tick as the instrument's latest price and return it."""
    record = PriceRecord(ticker=instrument, price=Decimal(price), timestamp=fields.pop("timestamp", None) or timezone.now(), **fields)
    cache.set(CACHE_PREFIX + instrument, asdict(record), timeout=None)
    return record
