"""OKX spot and perpetual swaps."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.brokerkit.buckets import VenueLimit
from orders.exchanges.ccxt.base import CcxtAdapter, Fired, order_result
from quanttrade.vocabulary import MarketType


class OkxAdapter(CcxtAdapter):
    """OKX: short client ids, algo orders for triggers, tdMode on each order, batch cancels."""

    display_name = "OKX"
    # A unified account: spot and derivatives share one wallet (fetch_balance is the same).
    shared_balances = True
    # Spot and perpetual swaps only (no dated futures, no option chains), one order per request
    # on /trade/order rather than ccxt's default one-element /trade/batch-orders.
    venue_options = {
        "fetchMarkets": {"types": ["spot", "swap"]},
        "createOrder": "privatePostTradeOrder",
    }
    # clOrdId / algoClOrdId: 1-32 alphanumerics.
    client_id_rule = (re.compile(r"[A-Za-z0-9]+"), 32)
    # tdMode goes with each futures order.
    margin_mode_per_order = True
    # At most 20 regular / 10 trigger orders per cancel request.
    cancel_batch = 20
    cancel_batch_trigger = 10
    placement_answers_ids_only = True
    # A fired ("effective") algo order places a regular order named in ordIdList.
    triggers_place_new_orders = True
    # OKX API v5 per-endpoint limits (www.okx.com/docs-v5, each endpoint's "Rate Limit"), per
    # user id over 2 s: place order 60 (per instrument: kept per account, the stricter),
    # balance 10, positions 10; tickers 20 per IP.
    rate_limits = {
        market_type: (
            VenueLimit("PLACE_ORDER", 60, 2, paths=(("POST", "trade/order"),)),
            VenueLimit("BALANCE", 10, 2, all_markets=True, paths=(("GET", "account/balance"),)),
            VenueLimit("POSITIONS", 10, 2, all_markets=True, paths=(("GET", "account/positions"),)),
            VenueLimit("TICKER", 20, 2, per_ip=True, all_markets=True, paths=(("GET", "market/ticker"),)),
        )
        for market_type in (MarketType.SPOT, MarketType.FUTURES)
    }
    # No OKX document found that a repeated clOrdId is refused whatever the earlier order's
    # state (51016 "Duplicated clOrdId" says when, not for how long): never resent on that ground.
    client_id_refused_in_every_state = False

    def _id_params(self, client_id: str, conditional: bool) -> dict[str, Any]:
        """Trigger orders are algo orders, known by algoClOrdId."""
        return {"algoClOrdId": client_id} if conditional else super()._id_params(client_id, conditional)

    def _order_books(self, market_type: str) -> list[dict[str, Any]]:
        """Regular orders, then trigger (algo) orders, of spot or of perpetual swaps."""
        inst_type = "SWAP" if market_type == MarketType.FUTURES else "SPOT"
        return [{"instType": inst_type}, {"instType": inst_type, "trigger": True}]

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """A regular order by clOrdId (trigger orders are looked up in the algo book,
        ``_conditional_order``, and once "effective", which ccxt reads as closed, followed to
        the order they placed: a triggered STOP_LIMIT may still be resting)."""
        extra = {"clientOrderId": self.venue_client_id(cid)}
        return order_result(client.fetch_order("", market["symbol"], extra), per_contract)

    def _conditional_order(self, client: ccxt.Exchange, market: dict[str, Any], cid: str) -> dict[str, Any]:
        """A trigger order in the algo book by its algoClOrdId."""
        extra = {"clientOrderId": self.venue_client_id(cid), "trigger": True}
        order: dict[str, Any] = client.fetch_order("", market["symbol"], extra)
        return order

    def _fired(self, client: ccxt.Exchange, conditional: dict[str, Any]) -> Fired | None:
        """An "effective" algo order names the order it placed in ``ordIdList`` (``ordId``); an
        ``order_failed`` one fired and its order failed to be placed (ccxt reads it cancelled:
        it is refused, and a refusal is told)."""
        info = conditional.get("info") or {}
        if info.get("state") == "order_failed":
            return Fired(refused=True)
        if info.get("state") != "effective":
            return None
        placed = info.get("ordIdList") or ([info["ordId"]] if info.get("ordId") else [])
        return Fired(str(placed[-1]) if placed else "")

    def _apply_futures_settings(self, client: ccxt.Exchange, symbol: str) -> None:
        """The margin mode goes with each order (tdMode); leverage is set per margin mode."""
        if "leverage" in self.settings:
            margin_mode = str(self.settings.get("margin_mode") or "cross").lower()
            client.set_leverage(int(self._leverage()), symbol, {"marginMode": margin_mode})
