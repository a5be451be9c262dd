"""Binance spot and USD-M futures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.ccxt.base import CcxtAdapter, order_result
from quanttrade.vocabulary import MarketType


class BinanceAdapter(CcxtAdapter):
    """Binance: its own client-id params, USD-M conditional orders in the algo book."""

    display_name = "Binance"
    # newClientOrderId is "a unique id among open orders": once an order is filled or
    # cancelled its id is accepted again, so a repeat after a lost answer can fill twice.
    client_id_refused_in_every_state = False
    # Skip the COIN-M market list we never trade, and the currency / margin lists.
    venue_options = {
        "fetchMarkets": {"types": ["spot", "linear"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "warnOnFetchOpenOrdersWithoutSymbol": False,
    }
    # ccxt's sync throttle waits rateLimit x request weight since the previous request. Its
    # default (50 ms) models the old 1,200 weight/min; spot now allows 6,000/min (10 ms/weight).
    default_rate_limit_ms = {MarketType.SPOT: 10.0}
    # USD-M conditional orders are algo orders, listed and cancelled apart.
    trigger_books = frozenset({MarketType.FUTURES})

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """Regular orders by origClientOrderId; USD-M conditional ones by their clientAlgoId."""
        extra = (
            {"trigger": True, "clientAlgoId": cid}
            if conditional and market["contract"]
            else {"origClientOrderId": cid}
        )
        return order_result(client.fetch_order("", market["symbol"], extra))
