"""KIS overseas futures/options (해외선물옵션): orders, today's order list, open positions and
cancel. KIS has no virtual environment for this market."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from orders.exchanges.base import Balance, Holdings, OrderRejected, OrderRequest
from orders.exchanges.brokerkit.ledger import Intent
from orders.exchanges.brokerkit.venue_orders import VenueOrder, collect_orders
from orders.exchanges.kis.base import KisMarket, OrderPlan, holding_position, unsupported
from orders.exchanges.kis.venue_orders import SELL_CODE, is_new_order, kst_time, side_code, side_of
from quanttrade.vocabulary import ZERO, MarketType, OrderType, decimal_str, to_decimal

# PRIC_DVSN_CD: 1 limit, 2 market, 3 stop, 4 stop-limit.
PRICE_TYPE: dict[str, str] = {
    OrderType.LIMIT: "1",
    OrderType.MARKET: "2",
    OrderType.STOP_MARKET: "3",
    OrderType.STOP_LIMIT: "4",
}
LIMIT_PRICED = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
STOP_PRICED = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
REQUIRED_PARAMS = ("exchange_code", "contract_month")


def read_order(row: dict[str, Any]) -> VenueOrder | None:
    """OTFM3116R output: rcit_dvsn_cd 00 is a new order (01 modify, 02 cancel);
    erlm_dtl_dtime is YYYYMMDDHHMMSSmmm."""
    if not is_new_order(row) or str(row.get("rcit_dvsn_cd") or "00") != "00":
        return None
    quantity, filled = to_decimal(row.get("fm_ord_qty"), ZERO), to_decimal(row.get("fm_ccld_qty"), ZERO)
    remaining = to_decimal(row.get("fm_ord_rmn_qty"), ZERO)
    stamp = str(row.get("erlm_dtl_dtime") or "")
    return VenueOrder(
        order_no=str(row["odno"]),
        product=str(row.get("ovrs_futr_fx_pdno") or ""),
        side=side_of(row.get("sll_buy_dvsn_cd")),
        quantity=quantity,
        filled=filled,
        remaining=remaining,
        avg_price=to_decimal(row.get("fm_ccld_pric"), ZERO),
        placed_at=kst_time(stamp[:8], stamp[8:14]),
        cancelled=remaining == 0 and filled < quantity,
        row=row,
    )


class OverseasFutureOption(KisMarket):
    market_type = MarketType.OVERSEAS_FUTUREOPTION
    product_field = "OVRS_FUTR_FX_PDNO"

    def build_order(self, request: OrderRequest, side: str, qty: Decimal) -> OrderPlan:
        price_type = PRICE_TYPE.get(request.order_type)
        if price_type is None:
            raise unsupported(request.order_type)
        for field in REQUIRED_PARAMS:
            if not request.params.get(field):
                raise OrderRejected(
                    _("params.%(field)s is required for %(market)s orders")
                    % {"field": field, "market": request.market_type}
                )
        limit = request.price if request.order_type in LIMIT_PRICED else None
        stop = request.stop_price if request.order_type in STOP_PRICED else None
        body = {
            **self.kis.fields(),
            "OVRS_FUTR_FX_PDNO": request.symbol.upper(),
            "SLL_BUY_DVSN_CD": side_code(side),
            "FM_LQD_USTL_CCLD_DT": "",
            "FM_LQD_USTL_CCNO": "",
            "PRIC_DVSN_CD": price_type,
            "FM_LIMIT_ORD_PRIC": decimal_str(limit, "0") if limit is not None else "",
            "FM_STOP_ORD_PRIC": decimal_str(stop, "0") if stop is not None else "",
            "FM_ORD_QTY": decimal_str(qty, "0"),
            "FM_LQD_LMT_ORD_PRIC": "",
            "FM_LQD_STOP_ORD_PRIC": "",
            "CCLD_CNDT_CD": "2" if request.order_type == OrderType.MARKET else "6",
            "CPLX_ORD_DVSN_CD": "0",
            "ECIS_RSVN_ORD_YN": "N",
            "FM_HDGE_ORD_SCRN_YN": "N",
        }
        return OrderPlan("/uapi/overseas-futureoption/v1/trading/order", "OTFM3001U", body)

    def position(self, symbol: str, params: dict[str, Any]) -> Decimal:
        return sum((qty for code, qty, _row in self._signed_rows() if code == symbol.upper()), ZERO)

    def holdings(self, params: dict[str, Any]) -> Holdings:
        """Every open position of 해외선물옵션 미결제내역 (signed) and the deposit (see
        :meth:`cash`)."""
        positions = [
            holding_position(
                self.market_type, code, qty, str(row.get("crcy_cd") or "USD"), row, "pchs_avg_pric", ""
            )
            for code, qty, row in self._signed_rows()
            if qty
        ]
        return Holdings(self.market_type, self.cash(), positions)

    def cash(self) -> dict[str, Balance]:
        """USD: 해외선물옵션 예수금현황 (OTFM1411R, /uapi/overseas-futureoption/v1/trading/
        inquire-deposit) of today in total USD (CRCY_CD "TUS"), as open-trading-api's
        examples_llm/overseas_futureoption/inquire_deposit sample asks it; FM예수금잔액
        ``fm_dnca_rmnd`` is the cash."""
        data = self.client.request(
            "GET",
            "/uapi/overseas-futureoption/v1/trading/inquire-deposit",
            "OTFM1411R",
            params={**self.kis.fields(), "CRCY_CD": "TUS", "INQR_DT": self.kis.today().strftime("%Y%m%d")},
        )
        output = data.get("output") or {}
        if isinstance(output, list):
            output = output[0] if output else {}
        return {"USD": Balance(asset="USD", free=to_decimal(output.get("fm_dnca_rmnd"), ZERO))}

    def _signed_rows(self) -> list[tuple[str, Decimal, dict[str, Any]]]:
        """(code, signed quantity, row) of 해외선물옵션 미결제내역 (OTFM1412R)."""
        data = self.client.request(
            "GET",
            "/uapi/overseas-futureoption/v1/trading/inquire-unpd",
            "OTFM1412R",
            params={**self.kis.fields(), "FUOP_DVSN": "00", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""},
        )
        rows = []
        for row in data.get("output") or []:
            qty = to_decimal(row.get("fm_ustl_qty"), ZERO)
            signed = -qty if row.get("sll_buy_dvsn_cd") == SELL_CODE else qty
            rows.append((str(row.get("ovrs_futr_fx_pdno")), signed, row))
        return rows

    def orders(self, side: str = "", *, unfilled_only: bool = False) -> list[VenueOrder]:
        """해외선물옵션 당일주문내역: today's orders only."""
        pages = self.client.inquire_pages(
            "/uapi/overseas-futureoption/v1/trading/inquire-ccld",
            "OTFM3116R",
            {
                **self.kis.fields(),
                "CCLD_NCCS_DVSN": "03" if unfilled_only else "01",
                "SLL_BUY_DVSN_CD": side_code(side) if side else "%%",
                "FUOP_DVSN": "00",
            },
        )
        return collect_orders(pages, "output", read_order)

    def intent_orders(self, intent: Intent) -> list[VenueOrder]:
        return self.orders(intent["side"])

    def open_orders(self) -> list[VenueOrder]:
        return self.orders(unfilled_only=True)

    def cancel(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/overseas-futureoption/v1/trading/order-rvsecncl",
            "OTFM3003U",
            body={
                **self.kis.fields(),
                "ORGN_ORD_DT": str(order.row.get("ord_dt")),
                "ORGN_ODNO": order.order_no,
                "FM_LIMIT_ORD_PRIC": "",
                "FM_STOP_ORD_PRIC": "",
                "FM_LQD_LMT_ORD_PRIC": "",
                "FM_LQD_STOP_ORD_PRIC": "",
                "FM_HDGE_ORD_SCRN_YN": "N",
                "FM_MKPR_CVSN_YN": "N",
            },
        )
