"""Upbit spot (KRW, BTC and USDT markets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.brokerkit.buckets import VenueLimit
from orders.exchanges.ccxt.base import CcxtAdapter, order_result
from orders.exchanges.ticks import StepTable
from quanttrade.vocabulary import ZERO, MarketType, OrderStatus, to_decimal

D = Decimal

# Upbit's KRW market price units ("원화(KRW) 마켓 주문 가격 단위", in force since 2025-07-31):
# https://docs.upbit.com/kr/docs/krw-market-info (updatedAt 2026-05-04) for 100 KRW and up;
# below 100 KRW the bands of https://docs.upbit.com/v1.5.2/changelog/krw_tick_unit_change.
# Not modelled: USDT/KRW and USDC/KRW (0.5 between 1,000 and 10,000 KRW) — their own table.
KRW_PRICE_UNITS = StepTable(
    (
        (D("0"), D("0.00000001")),
        (D("0.0001"), D("0.0000001")),
        (D("0.001"), D("0.000001")),
        (D("0.01"), D("0.00001")),
        (D("0.1"), D("0.0001")),
        (D("1"), D("0.001")),
        (D("10"), D("0.01")),
        (D("100"), D("1")),
        (D("5000"), D("5")),
        (D("10000"), D("10")),
        (D("50000"), D("50")),
        (D("100000"), D("100")),
        (D("500000"), D("500")),
        (D("1000000"), D("1000")),
    )
)
# USDT market: https://docs.upbit.com/docs/usdt-market-info; BTC market: one unit,
# https://docs.upbit.com/docs/btc-market-info.
USDT_PRICE_UNITS = StepTable(
    (
        (D("0"), D("0.00000001")),
        (D("0.0001"), D("0.0000001")),
        (D("0.001"), D("0.000001")),
        (D("0.01"), D("0.00001")),
        (D("0.1"), D("0.0001")),
        (D("1"), D("0.001")),
        (D("10"), D("0.01")),
    )
)
BTC_PRICE_UNITS = StepTable(((D("0"), D("0.00000001")),))


class UpbitAdapter(CcxtAdapter):
    """Upbit: a published minimum order value, price units per quote currency, orders looked
    up by ``identifier``, market buys that end ``cancel`` once the unspent KRW is returned."""

    display_name = "Upbit"
    # Upbit's markets carry no minimum in ccxt: its published rule per quote currency.
    min_cost = {"KRW": Decimal("5000"), "BTC": Decimal("0.00005"), "USDT": Decimal("0.5")}
    # Upbit "Request Rate Limit" (docs-e.upbit.com/docs/user-request-guide, per API key):
    # order requests 8/s; other Exchange API requests 30/s, counted apart; Quotation REST 10/s
    # per IP (global-docs.upbit.com/reference/rate-limits, group "ticker").
    rate_limits = {
        MarketType.SPOT: (
            VenueLimit("ORDER", 8, 1, paths=(("POST", "orders"),)),
            VenueLimit("EXCHANGE", 30, 1, apis=("private",), except_paths=(("POST", "orders"),)),
            VenueLimit("QUOTATION", 10, 1, per_ip=True, apis=("public",)),
        )
    }

    def _exact_free(self, raw: dict[str, Any]) -> dict[str, str]:
        """GET /v1/accounts answers one row per currency with ``balance`` (what can be ordered)
        as a string: the holding as Upbit counts it, up to 8 decimals beyond any float's reach
        for a meme coin's hundreds of millions of units."""
        rows = raw.get("info")
        if not isinstance(rows, list):
            return {}
        return {
            str(row["currency"]): str(row["balance"])
            for row in rows
            if isinstance(row, dict) and row.get("currency") and row.get("balance") is not None
        }

    # Price units per quote currency (ccxt's markets say 1e-8 for every Upbit market).
    price_units: dict[str, StepTable] = {
        "KRW": KRW_PRICE_UNITS,
        "USDT": USDT_PRICE_UNITS,
        "BTC": BTC_PRICE_UNITS,
    }
    # "identifier ... 사용자의 전체 주문 내 유일한 값 ... 주문 요청시 오류가 발생하더라도 같은 값으로
    # 다시 요청을 보낼 수 없습니다" (POST /v1/orders, https://docs.upbit.com/kr/v1.5.9/reference/주문하기):
    # a repeated identifier is refused whatever became of the earlier order, even a failed one.
    client_id_refused_in_every_state = True
    # A market order's creation answer is ``wait`` with no trades: its fill shows only at the
    # next read, so the state comes from a lookup by identifier right after.
    placement_answers_ids_only = True

    def _price_steps(self, market: dict[str, Any]) -> StepTable | None:
        return self.price_units.get(str(market.get("quote")))

    def _buy_fee_on_top(self, market: dict[str, Any]) -> Decimal:
        """Upbit holds a buy's fee with its amount (POST /v1/orders: a limit bid of 1.0 KRW
        locks 1.0015 with ``reserved_fee`` 0.0015; tests/venues/recorded/upbit/), so a buy of
        all the free KRW is refused (``insufficient_funds_bid``). The rate is ccxt's for the
        market's quote currency (KRW 0.05 %, as Upbit's /v1/orders/chance ``bid_fee``)."""
        rates = [to_decimal(market.get(key)) for key in ("taker", "maker")]
        return max((rate for rate in rates if rate is not None), default=ZERO)

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """GET /v1/order by ``identifier`` (our client order id), which ccxt has no param for."""
        raw = client.privateGetOrder({"identifier": cid})
        return self._read_order(client, market, client.parse_order(raw, market), per_contract)

    def _read_order(
        self, client: ccxt.Exchange, market: dict[str, Any], order: dict[str, Any], per_contract: Decimal
    ) -> OrderResult:
        return upbit_result(order)


def upbit_result(order: dict[str, Any]) -> OrderResult:
    """ccxt's order -> OrderResult, with Upbit's market buy read right.

    A market buy (``ord_type: price``) spends a KRW amount; Upbit ends it ``done`` when the
    amount was spent to the unit, and ``cancel`` when the unspent remainder (less than one
    volume unit's worth) is returned — with ``executed_volume > 0`` (Upbit: a market buy ends in
    either state). ccxt reads ``cancel`` as canceled, which would record a filled buy as
    cancelled. The rule: a market buy that ended ``cancel`` with fills is FILLED when what it
    spent (``executed_funds``, else the sum of its trades) is within one volume unit's worth
    (1e-8 x the average price, + 1e-8) of what it was asked to spend. Otherwise it stays
    CANCELLED with the filled quantity: the order is over, and ``partially_filled`` is a live
    state here (it would keep the order looked up and hold back the next same-kind order)."""
    result = order_result(order)
    info = order.get("info") or {}
    if info.get("state") != "cancel" or info.get("ord_type") != "price" or result.filled_qty <= 0:
        return result
    asked = to_decimal(info.get("price")) or ZERO
    # executed_funds where Upbit sends it; else the sum of the listed trades (ccxt's cost,
    # which without trades is the asked amount itself, so it does not count)
    spent = to_decimal(info.get("executed_funds"))
    if spent is None and order.get("trades"):
        spent = to_decimal(order.get("cost"))
    spent = spent if spent is not None else ZERO
    average = result.avg_price or ZERO
    unit = Decimal("0.00000001")
    if asked > 0 and asked - spent <= average * unit + unit:
        result.status = OrderStatus.FILLED
    return result
