"""Binance spot and USD-M futures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.brokerkit.buckets import VenueLimit
from orders.exchanges.ccxt.base import CcxtAdapter, Fired, order_result
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
    # Binance's published limits (exchangeInfo ``rateLimits``; developers.binance.com, spot
    # "REST API > Limits" and USD-M futures "General Info > Limits"): request weight per IP per
    # minute, orders per account. ccxt's spot costs are a fifth of Binance's weight (its table
    # comment: "1 IP (api) => cost = 0.2"); its USD-M costs are the weight itself.
    rate_limits = {
        MarketType.SPOT: (
            VenueLimit("REQUEST_WEIGHT", 6000, 60, per_ip=True, weight=5),
            VenueLimit("ORDERS_10S", 50, 10, paths=(("POST", "order"),)),
            VenueLimit("ORDERS_1D", 160_000, 86_400, paths=(("POST", "order"),)),
        ),
        MarketType.FUTURES: (
            VenueLimit("REQUEST_WEIGHT", 2400, 60, per_ip=True, weight=1),
            VenueLimit("ORDERS_10S", 300, 10, paths=(("POST", "order"),)),
            VenueLimit("ORDERS_1M", 1200, 60, paths=(("POST", "order"),)),
        ),
    }
    # USD-M conditional orders are algo orders, listed and cancelled apart.
    trigger_books = frozenset({MarketType.FUTURES})
    # A fired algo order places a regular order named in actualOrderId.
    triggers_place_new_orders = True

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """Regular orders (spot stops too) by origClientOrderId; USD-M conditional ones are
        looked up in the algo book (``_conditional_order``)."""
        return order_result(client.fetch_order("", market["symbol"], {"origClientOrderId": cid}))

    def _conditional_order(self, client: ccxt.Exchange, market: dict[str, Any], cid: str) -> dict[str, Any]:
        """A USD-M conditional order by its clientAlgoId (GET /fapi/v1/algoOrder); spot stops
        are regular orders."""
        if not market["contract"]:
            raise ccxt.NotSupported("Binance spot stops are regular orders")
        order: dict[str, Any] = client.fetch_order(
            "", market["symbol"], {"trigger": True, "clientAlgoId": cid}
        )
        return order

    def _fired(self, client: ccxt.Exchange, conditional: dict[str, Any]) -> Fired | None:
        """``algoStatus`` TRIGGERED ("placed into the matching engine") and FINISHED ("filled or
        cancelled in the matching engine", developers.binance.com USD-M "Event: Algo Order
        Update") both name the placed order in ``actualOrderId`` (GET /fapi/v1/algoOrder);
        ccxt reads both as closed, which says nothing about a fill."""
        info = conditional.get("info") or {}
        if info.get("algoStatus") == "TRIGGERING":
            return Fired()  # "forwarded to the matching engine": its order not placed yet
        if info.get("algoStatus") not in ("TRIGGERED", "FINISHED"):
            return None
        return Fired(str(info.get("actualOrderId") or ""))
