"""Kiwoom domestic stocks: order bodies (kt10000/kt10001/kt10003), the day's order list
(kt00007), holdings (kt00018) and cash (kt00001), as the guide names their fields."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from orders.exchanges.base import OrderRejected, OrderRequest
from orders.exchanges.brokerkit.venue_orders import VenueOrder
from orders.exchanges.kiwoom.client import DISPLAY_NAME, KST
from orders.exchanges.ticks import StepTable
from quanttrade.vocabulary import ZERO, OrderType, Side, decimal_str, to_decimal

ORDER_PATH, ACCOUNT_PATH = "/api/dostk/ordr", "/api/dostk/acnt"
BUY, SELL, CANCEL = "kt10000", "kt10001", "kt10003"
ORDER_LIST, HOLDINGS, DEPOSIT = "kt00007", "kt00018", "kt00001"
EXCHANGES = ("KRX", "NXT", "SOR")

# order_type -> trde_tp (guide: 0 보통, 3 시장가, 5 조건부지정가, 6 최유리지정가, 61 장시작전시간외,
# 81 장마감후시간외, 28 스톱지정가). STOP_MARKET has no Kiwoom equivalent and is refused.
TRDE_TP: dict[str, str] = {
    OrderType.LIMIT: "0",
    OrderType.MARKET: "3",
    OrderType.CONDITIONAL_LIMIT: "5",
    OrderType.BEST_LIMIT: "6",
    OrderType.PRE_MARKET: "61",
    OrderType.AFTER_MARKET: "81",
    OrderType.STOP_LIMIT: "28",
}
PRICED = frozenset(
    {
        OrderType.LIMIT,
        OrderType.CONDITIONAL_LIMIT,
        OrderType.PRE_MARKET,
        OrderType.AFTER_MARKET,
        OrderType.STOP_LIMIT,
    }
)
# KRX stock price steps (KRX 호가가격단위, from 2023-01-25; SPEC §8). Defined here until the
# shared KRX table lands in orders/exchanges/ticks.py with the KIS fidelity work.
KRX_STOCK_STEPS = StepTable(
    (
        (Decimal(0), Decimal(1)),
        (Decimal(2000), Decimal(5)),
        (Decimal(5000), Decimal(10)),
        (Decimal(20000), Decimal(50)),
        (Decimal(50000), Decimal(100)),
        (Decimal(200000), Decimal(500)),
        (Decimal(500000), Decimal(1000)),
    )
)


def unsupported(what: str) -> OrderRejected:
    return OrderRejected(
        _("%(order_type)s orders are not supported on %(venue)s")
        % {"order_type": what, "venue": DISPLAY_NAME}
    )


def stock_code(symbol: str) -> str:
    """KR005930 / A005930 -> 005930 (Kiwoom takes the 6-character short code)."""
    symbol = symbol.strip().upper()
    if symbol.startswith("KR") and len(symbol) == 8:
        return symbol[2:]
    if symbol.startswith("A") and len(symbol) == 7 and symbol[1:].isdigit():
        return symbol[1:]
    return symbol


def exchange_of(request: OrderRequest, mock: bool = False) -> str:
    """``params.exchange_id`` (KRX default, NXT, SOR); 모의투자 trades on KRX only."""
    exchange = str(request.params.get("exchange_id") or "KRX").upper()
    if exchange not in EXCHANGES:
        raise OrderRejected(
            _("Unknown domestic exchange %(exchange)s (KRX, NXT or SOR)") % {"exchange": exchange}
        )
    if mock and exchange != "KRX":
        raise OrderRejected(
            _("Kiwoom mock trading (모의투자) supports KRX only, not %(exchange)s") % {"exchange": exchange}
        )
    return exchange


def order_body(
    request: OrderRequest, side: str, qty: Decimal, mock: bool = False
) -> tuple[str, dict[str, str]]:
    """(api-id, body) of a buy or sell; prices moved onto the KRX step toward the passive side."""
    trde_tp = TRDE_TP.get(request.order_type)
    if trde_tp is None:
        raise unsupported(request.order_type)
    price = ""
    if request.order_type in PRICED and request.price is not None:
        price = decimal_str(KRX_STOCK_STEPS.to_step(request.price, side), "0")
    stop = ""
    if request.order_type == OrderType.STOP_LIMIT and request.stop_price is not None:
        stop = decimal_str(KRX_STOCK_STEPS.to_step(request.stop_price, side), "0")
    body = {
        "dmst_stex_tp": exchange_of(request, mock),
        "stk_cd": stock_code(request.symbol),
        "ord_qty": decimal_str(qty, "0"),
        "ord_uv": price,
        "trde_tp": trde_tp,
        "cond_uv": stop,
    }
    return (SELL if side == Side.SELL else BUY), body


def read_order(row: dict[str, Any], day: str) -> VenueOrder | None:
    """One kt00007 row as a new order; None for cancel/modify rows (they name ``ori_ord``)."""
    kind = str(row.get("io_tp_nm") or "")
    if "취소" in kind or "정정" in kind or str(row.get("ori_ord") or "0").strip("0"):
        return None
    quantity = to_decimal(row.get("ord_qty"), ZERO)
    filled = to_decimal(row.get("cntr_qty"), ZERO)
    remaining = to_decimal(row.get("ord_remnq"), ZERO)
    rejected = "거부" in str(row.get("acpt_tp") or "")
    placed_at = None
    clock = str(row.get("ord_tm") or "").replace(":", "")
    if len(day) == 8 and len(clock) == 6:
        placed_at = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    return VenueOrder(
        order_no=str(row["ord_no"]),
        product=stock_code(str(row.get("stk_cd") or "")),
        side=Side.SELL if "매도" in kind else Side.BUY,
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        avg_price=to_decimal(row.get("cntr_uv"), ZERO),
        placed_at=placed_at,
        # Nothing left, not all traded, not refused: the rest was cancelled.
        cancelled=remaining == 0 and filled < quantity and not rejected,
        rejected=rejected,
        row=row,
    )


def order_list_body(day: str, code: str = "", side: str = "") -> dict[str, str]:
    sell_tp = "1" if side == Side.SELL else "2" if side == Side.BUY else "0"
    return {
        "ord_dt": day,
        "qry_tp": "1",
        "stk_bond_tp": "1",
        "sell_tp": sell_tp,
        "stk_cd": code,
        "fr_ord_no": "",
        "dmst_stex_tp": "%",
    }
