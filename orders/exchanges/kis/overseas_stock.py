"""KIS overseas stocks (해외주식): limit orders per exchange (a MARKET order is a limit priced
through the quote), the order list, balance and cancel."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.utils.translation import gettext as _

from orders.exchanges.base import Balance, Holdings, OrderRejected, OrderRequest
from orders.exchanges.brokerkit.ledger import Intent
from orders.exchanges.brokerkit.venue_orders import VenueOrder, collect_orders
from orders.exchanges.kis.base import KisMarket, OrderPlan, holding_position, unsupported
from orders.exchanges.kis.client import kis_error
from orders.exchanges.kis.ticks import on_step, overseas_table
from orders.exchanges.kis.venue_orders import is_new_order, kst_time, side_code, side_of
from quanttrade.vocabulary import ZERO, MarketType, OrderType, Side, decimal_str, to_decimal


class OverseasMarket(NamedTuple):
    buy: str
    sell: str
    virtual_sell: str
    quote_code: str
    decimals: int


# OVRS_EXCG_CD -> order TR ids (open-trading-api overseas_stock/order), quote EXCD, price decimals.
OVERSEAS = {
    "NASD": OverseasMarket("TTTT1002U", "TTTT1006U", "VTTT1001U", "NAS", 2),
    "NYSE": OverseasMarket("TTTT1002U", "TTTT1006U", "VTTT1001U", "NYS", 2),
    "AMEX": OverseasMarket("TTTT1002U", "TTTT1006U", "VTTT1001U", "AMS", 2),
    "SEHK": OverseasMarket("TTTS1002U", "TTTS1001U", "VTTS1001U", "HKS", 3),
    "SHAA": OverseasMarket("TTTS0202U", "TTTS1005U", "VTTS1005U", "SHS", 2),
    "SZAA": OverseasMarket("TTTS0305U", "TTTS0304U", "VTTS0304U", "SZS", 2),
    "TKSE": OverseasMarket("TTTS0308U", "TTTS0307U", "VTTS0307U", "TSE", 0),
    "HASE": OverseasMarket("TTTS0311U", "TTTS0310U", "VTTS0310U", "HNX", 0),
    "VNSE": OverseasMarket("TTTS0311U", "TTTS0310U", "VTTS0310U", "HSX", 0),
}
# The exchanges 해외주식 미체결내역 is asked for: "NASD" lists all of the US.
NCCS_EXCHANGES = ("NASD", "SEHK", "SHAA", "SZAA", "TKSE", "HASE", "VNSE")
OVERSEAS_ALIASES = {
    "NASDAQ": "NASD",
    "NAS": "NASD",
    "NYS": "NYSE",
    "AMS": "AMEX",
    "HKEX": "SEHK",
    "HKS": "SEHK",
    "TSE": "TKSE",
    "JPX": "TKSE",
    "SHS": "SHAA",
    "SSE": "SHAA",
    "SZS": "SZAA",
    "SZSE": "SZAA",
    "HNX": "HASE",
    "HSX": "VNSE",
    "HCM": "VNSE",
    "HOSE": "VNSE",
}


def exchange_code(params: dict[str, Any]) -> str:
    """params.exchange_code as KIS's OVRS_EXCG_CD (NASD by default; aliases resolved)."""
    code = str(params.get("exchange_code") or "NASD").upper()
    return OVERSEAS_ALIASES.get(code, code)


def read_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTS3035R output (and TTTS3018R's). ord_dt is the exchange's local date, so the Korean
    time of the order is dmst_ord_dt + thco_ord_tmd. Nothing unfilled on a processed order
    ("완료") that did not fill is a cancel (or the day's end); "거부" is a refusal."""
    if not is_new_order(row) or str(row.get("rvse_cncl_dvsn") or "00") != "00":
        return None
    quantity, filled = to_decimal(row.get("ft_ord_qty"), ZERO), to_decimal(row.get("ft_ccld_qty"), ZERO)
    state = str(row.get("prcs_stat_name") or "").strip()
    remaining = to_decimal(row.get("nccs_qty"), ZERO)
    return VenueOrder(
        order_no=str(row["odno"]),
        product=str(row.get("pdno") or ""),
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


class OverseasStock(KisMarket):
    market_type = MarketType.OVERSEAS_STOCK

    def build_order(self, request: OrderRequest, side: str, qty: Decimal) -> OrderPlan:
        code = exchange_code(request.params)
        if code not in OVERSEAS:
            raise OrderRejected(_("Unknown overseas exchange code: %(code)s") % {"code": code})
        market = OVERSEAS[code]
        if request.order_type == OrderType.LIMIT:
            price = request.price
        elif request.order_type == OrderType.MARKET:
            # The overseas order API takes limit orders only (00); a market order is a limit
            # priced through the current quote by a small margin, which fills like one.
            slip = Decimal(str(self.kis.settings.get("overseas_market_slippage_pct", "0.5"))) / 100
            last = self.quote(code, request.symbol)
            price = last * (1 + slip) if side == Side.BUY else last * (1 - slip)
        else:
            raise unsupported(request.order_type)
        assert price is not None
        notes: list[str] = []
        # A market order's price is ours (through the quote): moved without a note.
        noted = notes if request.order_type == OrderType.LIMIT else []
        price = on_step(overseas_table(code, market.decimals), price, side, noted, _("price"))
        body = {
            **self.kis.fields(),
            "OVRS_EXCG_CD": code,
            "PDNO": request.symbol.upper(),
            "ORD_QTY": decimal_str(qty, "0"),
            "OVRS_ORD_UNPR": format(price, "f"),
            "CTAC_TLNO": "",
            "MGCO_APTM_ODNO": "",
            "SLL_TYPE": "00" if side == Side.SELL else "",
            "ORD_SVR_DVSN_CD": "0",
            "ORD_DVSN": "00",
        }
        if side == Side.BUY:
            tr_id = self.client.tr(market.buy)
        else:
            tr_id = self.client.tr(market.sell, market.virtual_sell)
        return OrderPlan("/uapi/overseas-stock/v1/trading/order", tr_id, body, tuple(notes))

    def quote(self, code: str, symbol: str) -> Decimal:
        """The last price on exchange ``code`` (OVRS_EXCG_CD)."""
        data = self.client.request(
            "GET",
            "/uapi/overseas-price/v1/quotations/price",
            "HHDFS00000300",
            params={"AUTH": "", "EXCD": OVERSEAS[code].quote_code, "SYMB": symbol.upper()},
        )
        last = to_decimal((data.get("output") or {}).get("last"), ZERO)
        if last <= 0:
            raise OrderRejected(kis_error(_("no price for %(symbol)s") % {"symbol": symbol}))
        return last

    def _balance_rows(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """해외주식 잔고 (TTTS3012R) rows of the exchange ``params`` name (NASD lists every US one)."""
        data = self.client.request(
            "GET",
            "/uapi/overseas-stock/v1/trading/inquire-balance",
            self.client.tr("TTTS3012R"),
            params={
                **self.kis.fields(),
                "OVRS_EXCG_CD": exchange_code(params),
                "TR_CRCY_CD": str(params.get("currency") or "USD"),
                "CTX_AREA_FK200": "",
                "CTX_AREA_NK200": "",
            },
        )
        return list(data.get("output1") or [])

    def position(self, symbol: str, params: dict[str, Any]) -> Decimal:
        rows = self._balance_rows(params)
        return sum(
            (
                to_decimal(r.get("ord_psbl_qty") or r.get("ovrs_cblc_qty"), ZERO)
                for r in rows
                if r.get("ovrs_pdno") == symbol.upper()
            ),
            Decimal(0),
        )

    def holdings(self, params: dict[str, Any]) -> Holdings:
        """Every holding of 해외주식 잔고 (해외잔고수량, 매입평균가격, 현재가) and the foreign
        cash of 체결기준현재잔고 (see :meth:`cash`)."""
        positions = [
            holding_position(
                self.market_type,
                str(r.get("ovrs_pdno")),
                qty,
                str(r.get("tr_crcy_cd") or params.get("currency") or "USD"),
                r,
                "pchs_avg_pric",
                "now_pric2",
                exchange=str(r.get("ovrs_excg_cd") or ""),
            )
            for r in self._balance_rows(params)
            if (qty := to_decimal(r.get("ovrs_cblc_qty"), ZERO))
        ]
        return Holdings(self.market_type, self.cash(), positions)

    def cash(self) -> dict[str, Balance]:
        """Foreign cash per currency: 해외주식 체결기준현재잔고 (CTRP6504R / VTRP6504R,
        /uapi/overseas-stock/v1/trading/inquire-present-balance), asked as open-trading-api's
        examples_llm/overseas_stock/inquire_present_balance sample asks it (WCRC_FRCR_DVSN_CD
        02 외화, NATN_CD 000 every country, TR_MKET_CD 00, INQR_DVSN_CD 00); its output2 has a
        row per currency: crcy_cd and 외화예수금액2 ``frcr_dncl_amt_2`` (the deposit, counted as
        free like the domestic 예수금총금액). A KRW row is left out: the won deposit is the
        domestic market's cash (TTTC8434R), and counting it here too would count it twice."""
        data = self.client.request(
            "GET",
            "/uapi/overseas-stock/v1/trading/inquire-present-balance",
            self.client.tr("CTRP6504R", "VTRP6504R"),
            params={
                **self.kis.fields(),
                "WCRC_FRCR_DVSN_CD": "02",
                "NATN_CD": "000",
                "TR_MKET_CD": "00",
                "INQR_DVSN_CD": "00",
            },
        )
        rows = data.get("output2") or []
        balances: dict[str, Balance] = {}
        for row in rows if isinstance(rows, list) else [rows]:
            currency = str(row.get("crcy_cd") or "").strip().upper()
            if currency and currency != "KRW":
                amount = to_decimal(row.get("frcr_dncl_amt_2"), ZERO)
                before = balances[currency].free if currency in balances else ZERO
                balances[currency] = Balance(asset=currency, free=before + amount)
        return balances

    def orders(self, since: date, exchange: str = "", product: str = "", side: str = "") -> list[VenueOrder]:
        """해외주식 주문체결내역. Its dates are the exchange's local dates, which run up to a day
        behind Korea's: the window opens a day before ``since``. It cannot search by order number;
        모의투자 accepts only the unfiltered query."""
        virtual = self.client.virtual
        pages = self.client.inquire_pages(
            "/uapi/overseas-stock/v1/trading/inquire-ccnl",
            self.client.tr("TTTS3035R"),
            {
                **self.kis.fields(),
                "PDNO": "" if virtual else product or "%",
                "ORD_STRT_DT": (since - timedelta(days=1)).strftime("%Y%m%d"),
                "ORD_END_DT": self.kis.today().strftime("%Y%m%d"),
                "SLL_BUY_DVSN": side_code(side) if side and not virtual else "00",
                "CCLD_NCCS_DVSN": "00",
                "OVRS_EXCG_CD": "" if virtual else exchange or "%",
                "SORT_SQN": "DS",
                "ORD_DT": "",
                "ORD_GNO_BRNO": "",
                "ODNO": "",
            },
        )
        return collect_orders(pages, "output", read_order)

    def intent_orders(self, intent: Intent) -> list[VenueOrder]:
        return self.orders(
            self.kis.ledger.sent_on(intent), intent.get("exchange", ""), intent["pdno"], intent["side"]
        )

    def open_orders(self) -> list[VenueOrder]:
        """해외주식 미체결내역, exchange by exchange. NASD answers for every US exchange (NYSE and
        AMEX included; open-trading-api inquire_nccs), so the US is asked once, as NASD."""
        orders = []
        for code in NCCS_EXCHANGES:
            pages = self.client.inquire_pages(
                "/uapi/overseas-stock/v1/trading/inquire-nccs",
                self.client.tr("TTTS3018R"),
                {**self.kis.fields(), "OVRS_EXCG_CD": code, "SORT_SQN": "DS"},
            )
            for order in collect_orders(pages, "output", read_order):
                order.row.setdefault("ovrs_excg_cd", code)
                orders.append(order)
        return orders

    def cancel(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/overseas-stock/v1/trading/order-rvsecncl",
            self.client.tr("TTTT1004U"),
            body={
                **self.kis.fields(),
                "OVRS_EXCG_CD": str(order.row.get("ovrs_excg_cd")),
                "PDNO": order.product,
                "ORGN_ODNO": order.order_no,
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": decimal_str(order.remaining, "0"),
                "OVRS_ORD_UNPR": "0",
                "MGCO_APTM_ODNO": "",
                "ORD_SVR_DVSN_CD": "0",
            },
        )
