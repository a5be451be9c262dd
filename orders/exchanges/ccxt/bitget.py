"""Bitget V2 (classic account) spot and USDT perpetuals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderRequest, OrderResult
from orders.exchanges.brokerkit.buckets import VenueLimit
from orders.exchanges.ccxt.base import CcxtAdapter, Fired, contract_size
from quanttrade.vocabulary import MarketType, OrderType

# How many pages of 100 finished spot orders a lookup reads for an order its clientOid no
# longer reaches (one placed moments ago, after a lost answer, is on the first).
HISTORY_PAGES = 10


class BitgetAdapter(CcxtAdapter):
    """Bitget: plan orders in a book of their own, margin mode on each order, clientOid lookups."""

    display_name = "Bitget"
    # A classic (non-UTA) account, so ccxt skips its /api/v3/account/settings probe and uses the
    # V2 spot and mix endpoints; spot and perpetuals (ccxt still asks for each futures
    # productType, and for the margin pair list, whatever the options say).
    venue_options = {"uta": False, "fetchMarkets": {"types": ["spot", "swap"]}}
    # 40015 "System is abnormal, please try again later" comes with an HTTP 500, but ccxt raises
    # it as a plain ExchangeError from the body before it looks at the status.
    uncertain_codes = frozenset({"40015"})
    # Plan (trigger) orders are listed and cancelled apart, on spot and futures.
    trigger_books = frozenset({MarketType.SPOT, MarketType.FUTURES})
    # A fired plan places a regular order (futures: named in executeOrderId; spot: plan-sub-order).
    triggers_place_new_orders = True
    # marginMode goes with each futures order.
    margin_mode_per_order = True
    placement_answers_ids_only = True
    # Bitget V2 (www.bitget.com/api-doc, each endpoint's "Frequency limit"): place order
    # 10 requests/s per UID (spot and mix); 6,000 requests per minute per IP overall.
    rate_limits = {
        market_type: (
            VenueLimit("IP_REQUESTS", 6000, 60, per_ip=True, all_markets=True),
            VenueLimit(
                "PLACE_ORDER",
                10,
                1,
                paths=(("POST", "v2/spot/trade/place-order"), ("POST", "v2/mix/order/place-order")),
            ),
        )
        for market_type in (MarketType.SPOT, MarketType.FUTURES)
    }
    # clientOid: "The idempotency time is 6 hours, only valid when orders are unfilled"
    # (https://www.bitget.com/api-doc/spot/trade/Place-Order): a filled, cancelled or older
    # order's id is accepted again, so a repeat can be a second order.
    client_id_refused_in_every_state = False

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        """Bitget spot answers a lookup by clientOid for unfilled orders only ("If you query
        the order details through clientOid, the following requirements need to be met: …
        the order is in unfilled status", spot Get Order Info): a regular spot order whose venue
        id is known is read by that id, in any state; without it, by clientOid and then in the
        open and finished order lists (:meth:`_order_by_client_id`)."""
        conditional = request.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        if request.market_type != MarketType.SPOT or conditional or not request.exchange_order_id:
            return super().fetch_order_by_client_id(request)
        market = self.market(request.market_type, request.symbol)
        client, lock = self._client(request.market_type)
        with lock:
            try:
                order = client.fetch_order(request.exchange_order_id, market["symbol"])
            except ccxt.OrderNotFound:
                order = None
            except ccxt.BaseError as e:
                raise self._translate(e) from e
        if order is None or order.get("clientOrderId") != self.venue_client_id(request.client_order_id):
            return super().fetch_order_by_client_id(request)
        return self._read_order(client, market, order, contract_size(market))

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """By clientOid; a spot order it does not reach (filled or cancelled, see
        :meth:`fetch_order_by_client_id`) is searched for in the finished orders."""
        try:
            return super()._order_by_client_id(client, market, cid, conditional, per_contract)
        except ccxt.OrderNotFound:
            if market["contract"]:
                raise
        row = self._spot_finished_row(client, market, cid)
        if row is None:
            raise ccxt.OrderNotFound(f"bitget: no spot order {cid}")
        return self._read_order(client, market, client.parse_order(row, market), per_contract)

    def _spot_finished_row(
        self, client: ccxt.Exchange, market: dict[str, Any], cid: str
    ) -> dict[str, Any] | None:
        """Our order's row in the spot order history (``GET /api/v2/spot/trade/history-orders``,
        newest first, 100 a page, older pages by ``idLessThan``), which has no clientOid
        filter: at most ``HISTORY_PAGES`` pages are read."""
        older_than = ""
        for _page in range(HISTORY_PAGES):
            request = {"symbol": market["id"], "limit": "100"}
            if older_than:
                request["idLessThan"] = older_than
            answer = client.privateSpotGetV2SpotTradeHistoryOrders(request)
            rows = answer.get("data") if isinstance(answer, dict) else None
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise ccxt.ExchangeError(f"bitget history-orders: unexpected answer {str(answer)[:200]}")
            for row in rows:
                if row.get("clientOid") == cid:
                    return row
            if len(rows) < 100:
                return None
            older_than = str(rows[-1].get("orderId") or "")
            if not older_than:
                return None
        return None

    def _conditional_order(self, client: ccxt.Exchange, market: dict[str, Any], cid: str) -> dict[str, Any]:
        """A plan order by clientOid (regular orders: spot orderInfo / mix order detail, the
        default lookup). Plan orders have no lookup by clientOid, so the live plan list and then
        the finished one are searched (the futures lists filter by clientOid themselves)."""
        symbol = market["symbol"]
        extra: dict[str, Any] = {"trigger": True}
        if market["contract"]:
            extra["clientOrderId"] = cid
        for fetch in (client.fetch_open_orders, client.fetch_canceled_and_closed_orders):
            for order in fetch(symbol, None, None, dict(extra)):
                if order.get("clientOrderId") == cid:
                    return dict(order)
        raise ccxt.OrderNotFound(f"bitget: no plan order {cid}")

    def _fired(self, client: ccxt.Exchange, conditional: dict[str, Any]) -> Fired | None:
        """The order a fired plan placed. Futures: ``executeOrderId`` of an ``executed`` plan
        in orders-plan-history (empty: not named yet, so still live; a row without the field
        is read as ccxt reads ``executed``, filled). Spot (``executing`` or ``executed``): the
        plan's row names none, so its sub-orders are asked (:meth:`_spot_sub_orders`)."""
        info = conditional.get("info") or {}
        if info.get("planStatus") == "executed" and "executeOrderId" in info:
            return Fired(str(info.get("executeOrderId") or ""))
        if "planStatus" in info or info.get("status") not in ("executing", "executed"):
            return None
        rows = self._spot_sub_orders(client, str(conditional.get("id") or ""))
        named = [str(row.get("orderId") or "") for row in rows if row.get("orderId")]
        if named:
            return Fired(named[-1])  # placed (success), or placed and since cancelled: its state says
        if rows and all(row.get("status") == "fail" for row in rows):
            return Fired(refused=True)
        return Fired()  # being placed (in_progress…), or not listed yet

    def _spot_sub_orders(self, client: ccxt.Exchange, plan_id: str) -> list[dict[str, Any]]:
        """``GET /api/v2/spot/trade/plan-sub-order?planOrderId=…`` (www.bitget.com/api-doc/spot/
        plan/Get-Plan-Sub-Order: ``orderId``, ``price``, ``type``, ``status`` success / fail /
        cancelled / in_progress / in_progress_tracking), which ccxt has no method for: sent
        through its signed ``request``. Another shape of answer is a venue error."""
        answer = client.request(
            "v2/spot/trade/plan-sub-order", ["private", "spot"], "GET", {"planOrderId": plan_id}
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ccxt.ExchangeError(f"bitget plan-sub-order: unexpected answer {str(answer)[:200]}")
        return data
