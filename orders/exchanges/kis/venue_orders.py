"""Rows of KIS's order inquiries, read into one shape whatever the market.

Each market answers its order list with its own field names (open-trading-api samples):
domestic stock 주식일별주문체결조회 (TTTC0081R) and 정정취소가능주문조회 (TTTC0084R), overseas stock
해외주식 주문체결내역 (TTTS3035R) and 미체결내역 (TTTS3018R), domestic futures/options 주문체결내역
(TTTO5201R, night STTN5201R), overseas futures/options 당일주문내역 (OTFM3116R). The readers here turn
a row into a :class:`VenueOrder`; a row that is not a new order (a modify or cancel request, or the
blank row KIS sends when the list is empty) reads as None. The status rules live in one place,
:meth:`VenueOrder.result`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from orders.exchanges.base import OrderResult
from orders.exchanges.kis.sessions import KST
from quanttrade.vocabulary import ZERO, OrderStatus, to_decimal


@dataclass(frozen=True)
class VenueOrder:
    """One order as the venue's order list shows it. ``placed_at`` is KIS's (Korean) time of
    the order, None when the row does not say."""

    odno: str
    pdno: str
    side: str  # BUY | SELL
    quantity: Decimal
    filled: Decimal
    remaining: Decimal
    avg_price: Decimal
    placed_at: datetime | None
    cancelled: bool = False
    rejected: bool = False
    row: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def result(self) -> OrderResult:
        """The order's state for the product (filled wins over a late cancel of the rest)."""
        if self.rejected and self.filled == 0:
            status = OrderStatus.REJECTED
        elif self.filled >= self.quantity > 0:
            status = OrderStatus.FILLED
        elif self.cancelled:
            status = OrderStatus.CANCELLED
        elif self.filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        else:
            status = OrderStatus.OPEN
        return OrderResult(
            status=status,
            exchange_order_id=self.odno,
            quantity=self.quantity,
            filled_qty=self.filled,
            avg_price=self.avg_price if self.filled > 0 else None,
        )


def side_of(code: Any) -> str:
    """SLL_BUY_DVSN_CD: 01 sell, 02 buy."""
    return "SELL" if str(code) == "01" else "BUY"


def side_code(side: str) -> str:
    return "01" if side == "SELL" else "02"


def kst_time(date: Any, time: Any) -> datetime | None:
    """YYYYMMDD + HHMMSS[…] as a Korean time; None when either is missing or malformed."""
    try:
        return datetime.strptime(f"{str(date).strip()}{str(time).strip()[:6]}", "%Y%m%d%H%M%S").replace(
            tzinfo=KST
        )
    except ValueError:
        return None


def _new_order(row: dict[str, Any]) -> bool:
    """A row of a new order: it has an order number and no original order (a modify or cancel
    request names the order it changes in orgn_odno)."""
    return bool(str(row.get("odno") or "").strip()) and not str(row.get("orgn_odno") or "").strip("0 ")


def domestic_stock_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTC0081R output1 (and TTTC0084R output, which has the same names)."""
    if not _new_order(row):
        return None
    quantity, filled = to_decimal(row.get("ord_qty"), ZERO), to_decimal(row.get("tot_ccld_qty"), ZERO)
    cancelled, rejected = row.get("cncl_yn") == "Y", to_decimal(row.get("rjct_qty"), ZERO) > 0
    return VenueOrder(
        odno=str(row["odno"]),
        pdno=str(row.get("pdno") or ""),
        side=side_of(row.get("sll_buy_dvsn_cd")),
        quantity=quantity,
        filled=filled,
        remaining=Decimal(0) if cancelled or rejected else quantity - filled,
        avg_price=to_decimal(row.get("avg_prvs"), ZERO),
        placed_at=kst_time(row.get("ord_dt"), row.get("ord_tmd")),
        cancelled=cancelled,
        rejected=rejected,
        row=row,
    )


def overseas_stock_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTS3035R output (and TTTS3018R's). ord_dt is the exchange's local date, so the Korean
    time of the order is dmst_ord_dt + thco_ord_tmd. Nothing unfilled on a processed order
    ("완료") that did not fill is a cancel (or the day's end); "거부" is a refusal."""
    if not _new_order(row) or str(row.get("rvse_cncl_dvsn") or "00") != "00":
        return None
    quantity, filled = to_decimal(row.get("ft_ord_qty"), ZERO), to_decimal(row.get("ft_ccld_qty"), ZERO)
    state = str(row.get("prcs_stat_name") or "").strip()
    remaining = to_decimal(row.get("nccs_qty"), ZERO)
    return VenueOrder(
        odno=str(row["odno"]),
        pdno=str(row.get("pdno") or ""),
        side=side_of(row.get("sll_buy_dvsn_cd")),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        avg_price=to_decimal(row.get("ft_ccld_unpr3"), ZERO),
        placed_at=kst_time(row.get("dmst_ord_dt"), row.get("thco_ord_tmd")),
        cancelled=state == "완료" and remaining == 0 and filled < quantity,
        rejected=state == "거부",
        row=row,
    )


def domestic_fo_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTO5201R / STTN5201R output1: qty is what is left of the order."""
    if not _new_order(row):
        return None
    quantity, filled = to_decimal(row.get("ord_qty"), ZERO), to_decimal(row.get("tot_ccld_qty"), ZERO)
    remaining, rejected = to_decimal(row.get("qty"), ZERO), to_decimal(row.get("rjct_qty"), ZERO) > 0
    return VenueOrder(
        odno=str(row["odno"]),
        pdno=str(row.get("pdno") or row.get("shtn_pdno") or ""),
        side=side_of(row.get("sll_buy_dvsn_cd")),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        avg_price=to_decimal(row.get("avg_idx"), ZERO),
        placed_at=kst_time(row.get("ord_dt"), row.get("ord_tmd")),
        cancelled=not rejected and remaining == 0 and filled < quantity,
        rejected=rejected,
        row=row,
    )


def overseas_fo_order(row: dict[str, Any]) -> VenueOrder | None:
    """OTFM3116R output: rcit_dvsn_cd 00 is a new order (01 modify, 02 cancel);
    erlm_dtl_dtime is YYYYMMDDHHMMSSmmm."""
    if not _new_order(row) or str(row.get("rcit_dvsn_cd") or "00") != "00":
        return None
    quantity, filled = to_decimal(row.get("fm_ord_qty"), ZERO), to_decimal(row.get("fm_ccld_qty"), ZERO)
    remaining = to_decimal(row.get("fm_ord_rmn_qty"), ZERO)
    stamp = str(row.get("erlm_dtl_dtime") or "")
    return VenueOrder(
        odno=str(row["odno"]),
        pdno=str(row.get("ovrs_futr_fx_pdno") or ""),
        side=side_of(row.get("sll_buy_dvsn_cd")),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        avg_price=to_decimal(row.get("fm_ccld_pric"), ZERO),
        placed_at=kst_time(stamp[:8], stamp[8:14]),
        cancelled=remaining == 0 and filled < quantity,
        row=row,
    )


def venue_orders(
    pages: list[dict[str, Any]], key: str, read: Callable[[dict[str, Any]], VenueOrder | None]
) -> list[VenueOrder]:
    """The orders in every page's ``key`` (KIS sends one object instead of a list when the
    list is empty or has one row)."""
    orders = []
    for page in pages:
        rows = page.get(key) or []
        for row in [rows] if isinstance(rows, dict) else rows:
            order = read(row)
            if order is not None:
                orders.append(order)
    return orders
