"""What every KIS order list row has in common, whatever the market.

Each market answers its order list with its own field names (open-trading-api samples); the
reader of each list lives with its market (domestic_stock.py, overseas_stock.py, domestic_fo.py,
overseas_fo.py) and turns a row into a broker-neutral
:class:`~orders.exchanges.brokerkit.venue_orders.VenueOrder`. A row that is not a new order (a
modify or cancel request, or the blank row KIS sends when the list is empty) reads as None. The
status rules live in one place, :meth:`VenueOrder.result`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orders.exchanges.kis.sessions import KST
from quanttrade.vocabulary import Side

# SLL_BUY_DVSN_CD
SELL_CODE = "01"
BUY_CODE = "02"


def side_of(code: Any) -> Side:
    """SLL_BUY_DVSN_CD: 01 sell, 02 buy."""
    return Side.SELL if str(code) == SELL_CODE else Side.BUY


def side_code(side: str) -> str:
    return SELL_CODE if side == Side.SELL else BUY_CODE


def kst_time(date: Any, time: Any) -> datetime | None:
    """YYYYMMDD + HHMMSS[…] as a Korean time; None when either is missing or malformed."""
    try:
        return datetime.strptime(f"{str(date).strip()}{str(time).strip()[:6]}", "%Y%m%d%H%M%S").replace(
            tzinfo=KST
        )
    except ValueError:
        return None


def is_new_order(row: dict[str, Any]) -> bool:
    """A row of a new order: it has an order number and no original order (a modify or cancel
    request names the order it changes in orgn_odno)."""
    return bool(str(row.get("odno") or "").strip()) and not str(row.get("orgn_odno") or "").strip("0 ")
