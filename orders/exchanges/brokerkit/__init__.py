"""Broker-neutral pieces for venues without a client order id (KIS today, Kiwoom next).

- :mod:`.ledger`: the intent record, in-flight counter and atomic claim that keep "an order is
  never placed twice" when the venue cannot be asked by our own id;
- :mod:`.token_cache`: one access token per app key shared by every process through Django's
  cache, issued under a lock, refreshed early and at most once a minute;
- :mod:`.buckets`: venue rate limits as token buckets (``limits`` moving windows, Redis in
  distributed mode) shared by every process, per API key and limit class (the ccxt venues use
  them too);
- :mod:`.rate_limit`: a per-app-key request rate shared across processes (on the buckets);
- :mod:`.venue_orders`: the one shape a venue's order-list row is read into, and its status rule.

Nothing here knows a venue's field names or TR ids; those stay in the venue's package.
"""

from __future__ import annotations

from orders.exchanges.brokerkit.ledger import OrderLedger
from orders.exchanges.brokerkit.rate_limit import SharedRateLimiter
from orders.exchanges.brokerkit.token_cache import SharedTokenCache, TokenUnavailableError
from orders.exchanges.brokerkit.venue_orders import VenueOrder, collect_orders

__all__ = [
    "OrderLedger",
    "SharedRateLimiter",
    "SharedTokenCache",
    "TokenUnavailableError",
    "VenueOrder",
    "collect_orders",
]
