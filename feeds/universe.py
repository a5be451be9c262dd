"""Which instruments the feeds follow: the watchlist, the instruments of active strategies'
recent orders, the tracked Instrument rows, and (simulated feed) the demo instruments."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from orders.models import Order
from prices.models import Instrument
from prices.records import instrument_for
from prices.watchlist import DEMO_INSTRUMENTS, watchlist

RECENT_ORDER_DAYS = 7


def universe(*, include_demo: bool = False) -> list[str]:
    """Instrument ids, de-duplicated, in a stable order."""
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
