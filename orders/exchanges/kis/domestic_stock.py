"""KIS domestic stocks (국내주식): cash orders, the daily order list, balance and cancel."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from orders.exchanges.base import Balance, Holdings, OrderRequest
from orders.exchanges.brokerkit.ledger import Intent
from orders.exchanges.brokerkit.venue_orders import VenueOrder, collect_orders
from orders.exchanges.kis.base import KisMarket, OrderPlan, holding_position, unsupported
from orders.exchanges.kis.ticks import krx_table, on_step
from orders.exchanges.kis.venue_orders import is_new_order, kst_time, side_of
from quanttrade.vocabulary import ZERO, MarketType, OrderType, Side, decimal_str, to_decimal

# SPEC §2.1: order_type -> domestic ORD_DVSN. STOP_LIMIT is KIS's 스톱지정가 (with CNDT_PRIC).
ORD_DVSN: dict[str, str] = {
    OrderType.LIMIT: "00",
    OrderType.MARKET: "01",
    OrderType.CONDITIONAL_LIMIT: "02",
    OrderType.BEST_LIMIT: "03",
    OrderType.PRE_MARKET: "05",
    OrderType.AFTER_MARKET: "06",
    OrderType.STOP_LIMIT: "22",
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


def pdno(symbol: str) -> str:
    """KR005930 -> 005930 (KIS takes the 6-character short code)."""
    return symbol[2:] if symbol.upper().startswith("KR") and len(symbol) == 8 else symbol


def read_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTC0081R output1 (and TTTC0084R output, which has the same names)."""
    if not is_new_order(row):
        return None
    quantity, filled = to_decimal(row.get("ord_qty"), ZERO), to_decimal(row.get("tot_ccld_qty"), ZERO)
    cancelled, rejected = row.get("cncl_yn") == "Y", to_decimal(row.get("rjct_qty"), ZERO) > 0
    return VenueOrder(
        order_no=str(row["odno"]),
        product=str(row.get("pdno") or ""),
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


class DomesticStock(KisMarket):
    market_type = MarketType.DOMESTIC_STOCK

    def build_order(self, request: OrderRequest, side: str, qty: Decimal) -> OrderPlan:
        ord_dvsn = ORD_DVSN.get(request.order_type)
        if ord_dvsn is None:
            raise unsupported(request.order_type)
        price = request.price if request.order_type in PRICED else None
        notes: list[str] = []
        table = krx_table(request.params)
        if price is not None:
            price = on_step(table, price, side, notes, _("price"))
        stop = request.stop_price
        if request.order_type == OrderType.STOP_LIMIT and stop is not None:
            stop = on_step(table, stop, side, notes, _("stop price"))
        body = {
            **self.kis.fields(),
            "PDNO": pdno(request.symbol),
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": decimal_str(qty, "0"),
            "ORD_UNPR": decimal_str(price.to_integral_value() if price is not None else Decimal(0), "0"),
            "EXCG_ID_DVSN_CD": str(request.params.get("exchange_id") or "KRX"),
            "SLL_TYPE": "01" if side == Side.SELL else "",
            "CNDT_PRIC": decimal_str(stop, "0") if request.order_type == OrderType.STOP_LIMIT else "",
        }
        tr_id = self.client.tr("TTTC0011U" if side == Side.SELL else "TTTC0012U")
        return OrderPlan("/uapi/domestic-stock/v1/trading/order-cash", tr_id, body, tuple(notes))

    def product(self, symbol: str) -> str:
        return pdno(symbol)

    # --- balance ----------------------------------------------------------------------
    def balance(self) -> dict[str, Any]:
        """주식잔고조회: cash (output2) and holdings (output1)."""
        return self.client.request(
            "GET",
            "/uapi/domestic-stock/v1/trading/inquire-balance",
            self.client.tr("TTTC8434R"),
            params={
                **self.kis.fields(),
                "AFHR_FLPR_YN": "N",
                "OFL_YN": "",
                "INQR_DVSN": "02",
                "UNPR_DVSN": "01",
                "FUND_STTL_ICLD_YN": "N",
                "FNCG_AMT_AUTO_RDPT_YN": "N",
                "PRCS_DVSN": "00",
                "CTX_AREA_FK100": "",
                "CTX_AREA_NK100": "",
            },
        )

    def cash(self) -> dict[str, Balance]:
        summary = self.balance().get("output2") or [{}]
        summary = summary[0] if isinstance(summary, list) else summary
        return {"KRW": Balance(asset="KRW", free=to_decimal(summary.get("dnca_tot_amt"), ZERO))}

    def holdings(self, params: dict[str, Any]) -> Holdings:
        """Cash (예수금총금액) and every holding of 주식잔고조회 (TTTC8434R), at 보유수량 with
        매입평균가격 and 현재가 where the answer carries them."""
        data = self.balance()
        summary = data.get("output2") or [{}]
        summary = summary[0] if isinstance(summary, list) else summary
        cash = to_decimal(summary.get("dnca_tot_amt"), ZERO)
        positions = [
            holding_position(self.market_type, str(r.get("pdno")), qty, "KRW", r, "pchs_avg_pric", "prpr")
            for r in data.get("output1") or []
            if (qty := to_decimal(r.get("hldg_qty"), ZERO))
        ]
        return Holdings(self.market_type, {"KRW": Balance(asset="KRW", free=cash)}, positions)

    def position(self, symbol: str, params: dict[str, Any]) -> Decimal:
        code = pdno(symbol)
        rows = self.balance().get("output1") or []
        return sum(
            (
                to_decimal(r.get("ord_psbl_qty") or r.get("hldg_qty"), ZERO)
                for r in rows
                if r.get("pdno") == code
            ),
            Decimal(0),
        )

    # --- order lists ------------------------------------------------------------------
    def orders(
        self, since: date, product: str = "", odno: str = "", *, unfilled_only: bool = False
    ) -> list[VenueOrder]:
        """주식일별주문체결조회 from ``since`` to today (by order number once known)."""
        pages = self.client.inquire_pages(
            "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
            self.client.tr("TTTC0081R"),
            {
                **self.kis.fields(),
                "INQR_STRT_DT": since.strftime("%Y%m%d"),
                "INQR_END_DT": self.kis.today().strftime("%Y%m%d"),
                "SLL_BUY_DVSN_CD": "00",
                "PDNO": product,
                "CCLD_DVSN": "02" if unfilled_only else "00",
                "INQR_DVSN": "00",
                "INQR_DVSN_3": "00",
                "ORD_GNO_BRNO": "",
                "ODNO": odno,
                "INQR_DVSN_1": "",
                # KIS lists KRX orders only unless asked (open-trading-api inquire_daily_ccld:
                # KRX / NXT / SOR / ALL, KRX by default): an NXT or SOR order is found with ALL.
                "EXCG_ID_DVSN_CD": "ALL",
            },
            context_size=100,
        )
        return collect_orders(pages, "output1", read_order)

    def intent_orders(self, intent: Intent) -> list[VenueOrder]:
        return self.orders(self.kis.ledger.sent_on(intent), intent["pdno"], intent["odno"])

    def open_orders(self) -> list[VenueOrder]:
        if self.client.virtual:
            # 모의투자 has no cancellable-orders inquiry: today's unfilled orders instead.
            return self.orders(self.kis.today(), unfilled_only=True)
        pages = self.client.inquire_pages(
            "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl",
            "TTTC0084R",
            {**self.kis.fields(), "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"},
            context_size=100,
        )
        return collect_orders(pages, "output", read_order)

    def cancel(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/domestic-stock/v1/trading/order-rvsecncl",
            self.client.tr("TTTC0013U"),
            body={
                **self.kis.fields(),
                "KRX_FWDG_ORD_ORGNO": str(order.row.get("ord_gno_brno") or ""),
                "ORGN_ODNO": order.order_no,
                "ORD_DVSN": str(order.row.get("ord_dvsn_cd") or "00"),
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0",
                "ORD_UNPR": "0",
                "QTY_ALL_ORD_YN": "Y",
                "EXCG_ID_DVSN_CD": str(order.row.get("excg_id_dvsn_cd") or "KRX"),
            },
        )
