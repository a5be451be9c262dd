"""KIS domestic futures/options (국내선물옵션): day and night sessions, each with its own order
TR and order list; the session comes from the account's clock unless params/settings name it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from orders.exchanges.base import Balance, Holdings, OrderRequest
from orders.exchanges.brokerkit.ledger import Intent
from orders.exchanges.brokerkit.venue_orders import VenueOrder, collect_orders
from orders.exchanges.kis.base import KisMarket, OrderPlan, cancel_each, holding_position, unsupported
from orders.exchanges.kis.sessions import fo_session, night_session_start
from orders.exchanges.kis.venue_orders import SELL_CODE, is_new_order, kst_time, side_code, side_of
from quanttrade.vocabulary import ZERO, MarketType, OrderType, decimal_str, to_decimal

# NMPR_TYPE_CD / ORD_DVSN_CD (01 limit, 02 market, 04 best).
ORDER_TYPE: dict[str, str] = {
    OrderType.LIMIT: "01",
    OrderType.MARKET: "02",
    OrderType.CONDITIONAL_LIMIT: "03",
    OrderType.BEST_LIMIT: "04",
}
PRICED = frozenset({OrderType.LIMIT, OrderType.CONDITIONAL_LIMIT})
NIGHT_ORDER_TR = "STTN1101U"


def read_order(row: dict[str, Any]) -> VenueOrder | None:
    """TTTO5201R / STTN5201R output1: qty is what is left of the order."""
    if not is_new_order(row):
        return None
    quantity, filled = to_decimal(row.get("ord_qty"), ZERO), to_decimal(row.get("tot_ccld_qty"), ZERO)
    remaining, rejected = to_decimal(row.get("qty"), ZERO), to_decimal(row.get("rjct_qty"), ZERO) > 0
    return VenueOrder(
        order_no=str(row["odno"]),
        product=str(row.get("pdno") or row.get("shtn_pdno") or ""),
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


def signed_rows(data: dict[str, Any]) -> list[tuple[str, Decimal, dict[str, Any]]]:
    """(code, signed quantity, row) of a 선물옵션 잔고현황 answer's output1."""
    rows = []
    for row in data.get("output1") or []:
        qty = to_decimal(row.get("cblc_qty"), ZERO)
        short = row.get("sll_buy_dvsn_cd") == SELL_CODE or "매도" in str(row.get("sll_buy_dvsn_name", ""))
        rows.append((str(row.get("shtn_pdno") or row.get("pdno")), -qty if short else qty, row))
    return rows


class DomesticFutureOption(KisMarket):
    market_type = MarketType.DOMESTIC_FUTUREOPTION
    product_field = "SHTN_PDNO"

    def session(self, params: dict[str, Any]) -> str:
        """day | night: params/settings "session", else by the KST clock."""
        session = str(params.get("session") or self.kis.settings.get("session") or "").lower()
        if session in ("day", "night"):
            return session
        return fo_session(self.kis.clock())

    def build_order(self, request: OrderRequest, side: str, qty: Decimal) -> OrderPlan:
        kind = ORDER_TYPE.get(request.order_type)
        if kind is None:
            raise unsupported(request.order_type)
        price = request.price if request.order_type in PRICED else None
        body = {
            "ORD_PRCS_DVSN_CD": "02",
            **self.kis.fields(),
            "SLL_BUY_DVSN_CD": side_code(side),
            "SHTN_PDNO": request.symbol.upper(),
            "ORD_QTY": decimal_str(qty, "0"),
            "UNIT_PRICE": decimal_str(price, "0"),
            "NMPR_TYPE_CD": kind,
            "KRX_NMPR_CNDT_CD": "0",
            "CTAC_TLNO": "",
            "FUOP_ITEM_DVSN_CD": "",
            "ORD_DVSN_CD": kind,
        }
        night = self.session(request.params) == "night" and not self.client.virtual
        tr_id = NIGHT_ORDER_TR if night else self.client.tr("TTTO1101U")
        return OrderPlan("/uapi/domestic-futureoption/v1/trading/order", tr_id, body)

    def session_of(self, plan: OrderPlan) -> str:
        return "night" if plan.tr_id == NIGHT_ORDER_TR else "day"

    def position(self, symbol: str, params: dict[str, Any]) -> Decimal:
        """Signed holding from the balance of the current session (see :meth:`_signed_rows`)."""
        return sum((qty for code, qty, _row in self._signed_rows(params) if code == symbol.upper()), ZERO)

    def holdings(self, params: dict[str, Any]) -> Holdings:
        """Every open F&O position of the current session's balance (signed, at 체결평균단가
        ``ccld_avg_unpr1`` where the answer carries it) and, from the same answer's output2,
        예수금현금 ``dnca_cash`` as KRW (the field open-trading-api's examples_llm/
        domestic_futureoption/inquire_balance sample names for CTFO6118R and CTFN6118R)."""
        data = self._balance(params)
        positions = [
            holding_position(self.market_type, code, qty, "KRW", row, "ccld_avg_unpr1", "")
            for code, qty, row in signed_rows(data)
            if qty
        ]
        summary = data.get("output2") or {}
        if isinstance(summary, list):
            summary = summary[0] if summary else {}
        balances = {}
        if "dnca_cash" in summary:
            balances["KRW"] = Balance(asset="KRW", free=to_decimal(summary.get("dnca_cash"), ZERO))
        return Holdings(self.market_type, balances, positions)

    def _signed_rows(self, params: dict[str, Any]) -> list[tuple[str, Decimal, dict[str, Any]]]:
        return signed_rows(self._balance(params))

    def _balance(self, params: dict[str, Any]) -> dict[str, Any]:
        """The balance of the current session: by night 야간 잔고현황 (CTFN6118R,
        inquire-ngt-balance; real accounts only), which counts the night's trades that the day
        balance (CTFO6118R) does not."""
        night = self.session(params) == "night" and not self.client.virtual
        if night:
            path, tr_id = "/uapi/domestic-futureoption/v1/trading/inquire-ngt-balance", "CTFN6118R"
        else:
            path, tr_id = (
                "/uapi/domestic-futureoption/v1/trading/inquire-balance",
                self.client.tr("CTFO6118R", "VTFO6118R"),
            )
        return self.client.request(
            "GET",
            path,
            tr_id,
            params={
                **self.kis.fields(),
                "MGNA_DVSN": "01",
                "EXCC_STAT_CD": "1",
                **({"ACNT_PWD": ""} if night else {}),
                "CTX_AREA_FK200": "",
                "CTX_AREA_NK200": "",
            },
        )

    def orders(
        self, since: date, session: str, product: str = "", side: str = "", *, unfilled_only: bool = False
    ) -> list[VenueOrder]:
        """선물옵션 주문체결내역; the night session has its own list (whose end date is the day
        after the last one wanted)."""
        today = self.kis.today()
        params = {
            **self.kis.fields(),
            "STRT_ORD_DT": since.strftime("%Y%m%d"),
            "END_ORD_DT": today.strftime("%Y%m%d"),
            "SLL_BUY_DVSN_CD": side_code(side) if side else "00",
            "CCLD_NCCS_DVSN": "02" if unfilled_only else "00",
            "SORT_SQN": "AS",
            "STRT_ODNO": "",
            "PDNO": product,
            "MKET_ID_CD": "",
        }
        if session == "night" and not self.client.virtual:
            params["END_ORD_DT"] = (today + timedelta(days=1)).strftime("%Y%m%d")
            pages = self.client.inquire_pages(
                "/uapi/domestic-futureoption/v1/trading/inquire-ngt-ccnl",
                "STTN5201R",
                {**params, "FUOP_DVSN_CD": "", "SCRN_DVSN": "02"},
            )
        else:
            pages = self.client.inquire_pages(
                "/uapi/domestic-futureoption/v1/trading/inquire-ccnl", self.client.tr("TTTO5201R"), params
            )
        return collect_orders(pages, "output1", read_order)

    def intent_orders(self, intent: Intent) -> list[VenueOrder]:
        return self.orders(
            self.kis.ledger.sent_on(intent), intent.get("session", "day"), intent["pdno"], intent["side"]
        )

    def open_orders(self) -> list[VenueOrder]:
        """The current session's unfilled orders (a night session from the evening it opened)."""
        return self._open_orders(self.session({}))

    def _open_orders(self, session: str) -> list[VenueOrder]:
        since = night_session_start(self.kis.clock()) if session == "night" else self.kis.today()
        return self.orders(since, session, unfilled_only=True)

    def cancel_all(self, symbol: str | None) -> int:
        session = self.session({})
        return cancel_each(self._open_orders(session), symbol, lambda order: self._cancel(order, session))

    def cancel(self, order: VenueOrder) -> None:
        self._cancel(order, self.session({}))

    def _cancel(self, order: VenueOrder, session: str) -> None:
        kind = str(order.row.get("nmpr_type_cd") or "01")
        night = session == "night" and not self.client.virtual
        self.client.request(
            "POST",
            "/uapi/domestic-futureoption/v1/trading/order-rvsecncl",
            "TTTN1103U" if night else self.client.tr("TTTO1103U"),
            body={
                "ORD_PRCS_DVSN_CD": "02",
                **self.kis.fields(),
                "RVSE_CNCL_DVSN_CD": "02",
                "ORGN_ODNO": order.order_no,
                "ORD_QTY": "0",
                "UNIT_PRICE": "0",
                "NMPR_TYPE_CD": kind,
                "KRX_NMPR_CNDT_CD": "0",
                "RMN_QTY_YN": "Y",
                "ORD_DVSN_CD": kind,
                "FUOP_ITEM_DVSN_CD": "",
            },
        )
