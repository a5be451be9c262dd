"""Price steps of the markets KIS routes to, and moving an order's price onto them.

* KRX stocks (KOSPI and KOSDAQ alike, the table in force since 2023-01-25; KRX 유가증권시장
  업무규정 시행세칙 호가가격단위): under 2,000 won 1; to 5,000 5; to 20,000 10; to 50,000 50;
  to 200,000 100; to 500,000 500; above 1,000.
* KRX ETFs and ETNs: 5 won at every price. KIS's order API does not say what a code is, so an
  ETF/ETN is known only when the signal says so (``params.product_kind`` "ETF" or "ETN"). A
  product not so marked is moved onto the stock table, whose steps from 2,000 won up are
  multiples of 5, so an unmarked ETF is still on its step there; below 2,000 won it may not be.
* SEHK (HKEX spread table, Part A): 0.001 to 0.25 HKD, then 0.005, 0.01 (from 0.50), 0.02
  (10), 0.05 (20), 0.10 (100), 0.20 (200), 0.50 (500), 1 (1,000), 2 (2,000), 5 (5,000).
* TSE (JPX tick sizes for stocks other than the TOPIX100 constituents): 1 yen to 3,000, then 5,
  10 (5,000), 50 (30,000), 100 (50,000), 500 (300,000), 1,000 (500,000), 5,000 (3,000,000),
  10,000 (5,000,000), 50,000 (30,000,000), 100,000 (50,000,000). TOPIX100 constituents have
  finer steps, which divide these, so a price on this table is on theirs too.
* Every other overseas exchange: the price precision KIS takes for it (US 0.01, China 0.01,
  Vietnam 1), the venue's own finer bands not modelled.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from orders.exchanges.ticks import StepTable, to_step

D = Decimal

KRX_STOCK = StepTable(
    (
        (D(0), D(1)),
        (D(2000), D(5)),
        (D(5000), D(10)),
        (D(20000), D(50)),
        (D(50000), D(100)),
        (D(200000), D(500)),
        (D(500000), D(1000)),
    )
)
KRX_ETF = StepTable(((D(0), D(5)),))
ETF_KINDS = frozenset({"ETF", "ETN"})

SEHK = StepTable(
    (
        (D(0), D("0.001")),
        (D("0.25"), D("0.005")),
        (D("0.50"), D("0.01")),
        (D(10), D("0.02")),
        (D(20), D("0.05")),
        (D(100), D("0.10")),
        (D(200), D("0.20")),
        (D(500), D("0.50")),
        (D(1000), D(1)),
        (D(2000), D(2)),
        (D(5000), D(5)),
    )
)
TSE = StepTable(
    (
        (D(0), D(1)),
        (D(3000), D(5)),
        (D(5000), D(10)),
        (D(30000), D(50)),
        (D(50000), D(100)),
        (D(300000), D(500)),
        (D(500000), D(1000)),
        (D(3000000), D(5000)),
        (D(5000000), D(10000)),
        (D(30000000), D(50000)),
        (D(50000000), D(100000)),
    )
)
OVERSEAS: dict[str, StepTable] = {"SEHK": SEHK, "TKSE": TSE}


def krx_table(params: dict[str, object]) -> StepTable:
    return KRX_ETF if str(params.get("product_kind") or "").upper() in ETF_KINDS else KRX_STOCK


def overseas_table(exchange: str, decimals: int) -> StepTable:
    return OVERSEAS.get(exchange) or StepTable(((D(0), D(1).scaleb(-decimals)),))


def on_step(table: StepTable, price: Decimal, side: str, notes: list[str], what: str = "price") -> Decimal:
    """``price`` moved onto ``table``'s step toward the passive side; a move is noted (shown
    on the order's result)."""
    moved = table.to_step(price, side)
    if moved != price:
        notes.append(
            _("%(what)s %(price)s moved to %(moved)s (the venue's price step)")
            % {"what": what, "price": format(price.normalize(), "f"), "moved": format(moved.normalize(), "f")}
        )
    return moved


__all__ = ["KRX_ETF", "KRX_STOCK", "SEHK", "TSE", "krx_table", "on_step", "overseas_table", "to_step"]
