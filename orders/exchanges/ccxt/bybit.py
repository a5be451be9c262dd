"""Bybit V5 spot and USDT perpetuals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.brokerkit.buckets import VenueLimit
from orders.exchanges.ccxt.base import CcxtAdapter, order_result, precision_step
from quanttrade.vocabulary import ZERO, MarketType, OrderStatus, to_decimal


class BybitAdapter(CcxtAdapter):
    """Bybit: ids-only placement answers, trigger direction on contracts, orderLinkId lookups."""

    display_name = "Bybit"
    # A unified account: spot and derivatives share one wallet (fetch_balance is the same).
    shared_balances = True
    # ccxt's Bybit balance is walletBalance: without the positions' unrealised PnL.
    futures_balance_includes_unrealised = False
    # Spot and USDT perpetuals only (no inverse or option instrument lists).
    venue_options = {"fetchMarkets": {"types": ["spot", "linear"]}}
    # 10016 "internal error, try again": the order's fate is unknown.
    uncertain_codes = frozenset({"10016"})
    # 110043 "leverage not modified": it is already set.
    leverage_unchanged_codes = frozenset({"110043"})
    placement_answers_ids_only = True
    # Bybit V5 "Rate Limit Rules" (bybit-exchange.github.io/docs/v5/rate-limit): 600 requests
    # per 5 s per IP; per UID and endpoint, per rolling second: create order 10/s (unified
    # account, futures; spot 20/s: the lower one kept for both).
    rate_limits = {
        market_type: (
            VenueLimit("IP_REQUESTS", 600, 5, per_ip=True, all_markets=True),
            VenueLimit("ORDER_CREATE", 10, 1, paths=(("POST", "v5/order/create"),)),
        )
        for market_type in (MarketType.SPOT, MarketType.FUTURES)
    }
    # No Bybit document found that a repeated orderLinkId is refused whatever the earlier
    # order's state (spot says nothing; see docs/venues.md): never resent on that ground.
    client_id_refused_in_every_state = False

    def _trigger_params(self, market: dict[str, Any], side: str) -> dict[str, Any]:
        """Bybit contracts want the direction: a buy stop fires on the way up, a sell stop on
        the way down (Binance's STOP_MARKET semantics)."""
        if not market["contract"]:
            return {}
        return {"triggerDirection": "ascending" if side == "buy" else "descending"}

    def _order_books(self, market_type: str) -> list[dict[str, Any]]:
        """Bybit spot keeps conditional orders apart (orderFilter=StopOrder) and cancels only
        plain ones by default; a unified account lists both kinds unless filtered."""
        if market_type == MarketType.FUTURES:
            return super()._order_books(market_type)
        return [{"type": "spot", "orderFilter": "Order"}, {"type": "spot", "trigger": True}]

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """Bybit V5 by orderLinkId: live orders (conditional ones too: a unified account lists
        every kind when no orderFilter is given) in /v5/order/realtime, finished ones in
        /v5/order/history."""
        request = {
            "category": "linear" if market["contract"] else "spot",
            "symbol": market["id"],
            "orderLinkId": cid,
        }
        for endpoint in (client.privateGetV5OrderRealtime, client.privateGetV5OrderHistory):
            rows = ((endpoint(request) or {}).get("result") or {}).get("list") or []
            for row in rows:
                if row.get("orderLinkId") == cid:
                    return self._read_order(client, market, client.parse_order(row, market), per_contract)
        return None

    def _read_order(
        self, client: ccxt.Exchange, market: dict[str, Any], order: dict[str, Any], per_contract: Decimal
    ) -> OrderResult:
        return bybit_result(order, precision_step(client, market, "amount") or ZERO, per_contract)


def bybit_result(
    order: dict[str, Any], base_step: Decimal, per_contract: Decimal = Decimal(1)
) -> OrderResult:
    """ccxt's order -> OrderResult, with Bybit's ``PartiallyFilledCanceled`` read right.

    Bybit (V5 enum, orderStatus) ends a spot order that traded in part and was then cancelled
    ``PartiallyFilledCanceled``, which ccxt reads as closed (ccxt#18685: a market buy by quote
    amount ends so when its remainder buys less than the base precision, the remainder
    returned, rejectReason ``EC_CancelForNoFullFill``). Read as closed, a limit order cancelled
    after a partial fill would be recorded filled. The rule: it is CANCELLED with the filled
    quantity, unless it is a market order whose unfilled remainder is less than one base
    step ``base_step`` (a quote amount: less than one step's worth at the average price), which
    is FILLED.

    The unit of a market order's ``qty`` is the one the adapter sent: base (``marketUnit=
    baseCoin``, the adapter never sends a quote amount to Bybit) unless the row says
    ``quoteCoin``. ccxt takes a buy whose row has no ``marketUnit`` (Bybit answers "" too,
    ccxt#29602) for a quote amount and makes its amount what filled: the asked quantity is
    kept instead."""
    result = order_result(order, per_contract)
    info = order.get("info") or {}
    if info.get("orderStatus") != "PartiallyFilledCanceled":
        return result
    result.status = OrderStatus.CANCELLED
    if str(info.get("orderType")) != "Market" or result.filled_qty <= 0:
        return result
    asked = to_decimal(info.get("qty")) or ZERO
    if info.get("marketUnit") == "quoteCoin":
        left, unit = (
            asked - (to_decimal(info.get("cumExecValue")) or ZERO),
            base_step * (result.avg_price or ZERO),
        )
    else:
        left, unit = asked - result.filled_qty, base_step
        result.quantity = asked * per_contract
    if left < unit:
        result.status = OrderStatus.FILLED
    return result
