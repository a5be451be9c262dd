"""KisAdapter: Korean and overseas stocks and futures/options on one KIS account.

Account.settings keys (docs/venues.md): ``account_number`` ("12345678" or "12345678-01"),
``product_code`` (ACNT_PRDT_CD, default "01"; F&O accounts "03", overseas F&O "08"),
``api_base_url`` (simulator), ``timeout_seconds``, ``rate_limit_per_second``,
``overseas_market_slippage_pct`` (how far through the quote a MARKET order on an overseas
exchange is priced, default 0.5), ``use_hashkey`` (send the hashkey header on orders).

KIS has no client order id. To keep "an order is never placed twice" the adapter records the
intent (market, product, side, quantity, time) in the shared cache before sending, and the
venue's order number once it is known. After a timeout the order is looked for in that market's
order list (venue_orders.py): an order of the same product, side and quantity placed since the
intent was sent, not claimed by another intent, is claimed atomically and is this one; none means
the request never arrived and the order may be sent again. While another request of the same
shape awaits its answer the lookup waits (retryable), since the match may be that one's.

An order answer carries the order number only, so every accepted order is read once from the
same order list (by that number) before it is reported: a market order that traded reads
filled at once, a resting one open. That read never fails the placement.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext as _

from orders.exchanges.base import (
    Balance,
    ExchangeAdapter,
    OrderRejected,
    OrderRequest,
    OrderResult,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
    VenueError,
)
from orders.exchanges.kis.client import KisClient, kis_error
from orders.exchanges.kis.sessions import KST, fo_session, kst_now, night_session_start
from orders.exchanges.kis.venue_orders import (
    VenueOrder,
    domestic_fo_order,
    domestic_stock_order,
    overseas_fo_order,
    overseas_stock_order,
    side_code,
    venue_orders,
)
from quanttrade.vocabulary import ZERO, OrderStatus, decimal_str, to_decimal

log = logging.getLogger("quanttrade.orders")
INTENT_TTL = 3 * 24 * 3600
# An order at the venue stamped this much before the intent's send time may still be its own:
# the two clocks (ours, KIS's) are not the same clock.
CLOCK_SKEW = timedelta(seconds=2)
# How long past the HTTP timeout an in-flight mark lasts when its worker died mid-request.
IN_FLIGHT_MARGIN = 30

# SPEC §2.1: order_type -> domestic ORD_DVSN. STOP_LIMIT is KIS's 스톱지정가 (with CNDT_PRIC).
DOMESTIC_ORD_DVSN = {
    "LIMIT": "00",
    "MARKET": "01",
    "CONDITIONAL_LIMIT": "02",
    "BEST_LIMIT": "03",
    "PRE_MARKET": "05",
    "AFTER_MARKET": "06",
    "STOP_LIMIT": "22",
}
DOMESTIC_PRICED = frozenset({"LIMIT", "CONDITIONAL_LIMIT", "PRE_MARKET", "AFTER_MARKET", "STOP_LIMIT"})


class OverseasMarket:
    def __init__(self, buy: str, sell: str, virtual_sell: str, quote_code: str, decimals: int):
        self.buy, self.sell, self.virtual_sell = buy, sell, virtual_sell
        self.quote_code, self.decimals = quote_code, decimals


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
# Overseas futures/options PRIC_DVSN_CD: 1 limit, 2 market, 3 stop, 4 stop-limit.
OVERSEAS_FO_PRICE_TYPE = {"LIMIT": "1", "MARKET": "2", "STOP_MARKET": "3", "STOP_LIMIT": "4"}
# Domestic futures/options: NMPR_TYPE_CD / ORD_DVSN_CD (01 limit, 02 market, 04 best).
DOMESTIC_FO_TYPE = {"LIMIT": "01", "MARKET": "02", "CONDITIONAL_LIMIT": "03", "BEST_LIMIT": "04"}


class KisAdapter(ExchangeAdapter):
    display_name = "한투"

    def __init__(self, account: Any):
        super().__init__(account)
        self.settings: dict[str, Any] = dict(account.settings or {})
        number = str(self.settings.get("account_number", "")).replace("-", "")
        if len(number) < 8:
            raise PermanentVenueError(_('KIS account number is not set (Account.settings["account_number"])'))
        # The adapter's only clock (KST): F&O sessions, inquiry dates and intent times.
        self.clock: Callable[[], datetime] = kst_now
        self.cano = number[:8]
        self.product_code = str(self.settings.get("product_code") or number[8:10] or "01")
        self.client = KisClient(
            app_key=account.api_key,
            app_secret=account.api_secret,
            virtual=account.is_testnet,
            base_url=self.settings.get("api_base_url") or None,
            timeout=float(self.settings.get("timeout_seconds", 10)),
            rate_per_second=int(self.settings["rate_limit_per_second"])
            if self.settings.get("rate_limit_per_second")
            else None,
        )

    def warm(self, market_type: str) -> None:
        """Have a valid access token in the shared cache before the first order needs one."""
        self.client.token()

    def close(self) -> None:
        self.client.session.close()

    # --- helpers ----------------------------------------------------------------------
    def _account(self) -> dict[str, str]:
        return {"CANO": self.cano, "ACNT_PRDT_CD": self.product_code}

    @staticmethod
    def _pdno(symbol: str) -> str:
        """KR005930 -> 005930 (KIS takes the 6-character short code)."""
        return symbol[2:] if symbol.upper().startswith("KR") and len(symbol) == 8 else symbol

    @staticmethod
    def _exchange(request: OrderRequest) -> str:
        code = str(request.params.get("exchange_code") or "NASD").upper()
        code = OVERSEAS_ALIASES.get(code, code)
        if code not in OVERSEAS:
            raise OrderRejected(_("Unknown overseas exchange code: %(code)s") % {"code": code})
        return code

    def _unsupported(self, order_type: str) -> OrderRejected:
        return OrderRejected(
            _("%(order_type)s orders are not supported on %(venue)s")
            % {"order_type": order_type, "venue": self.display_name}
        )

    def _intent_key(self, client_order_id: str) -> str:
        return f"kis:intent:{self.account.pk}:{client_order_id}"

    # --- quantities -------------------------------------------------------------------
    def _quantity(self, request: OrderRequest) -> tuple[str, Decimal]:
        """(side, whole quantity). Negative qty_per closes that percent of the holding."""
        qty = request.qty_per
        if qty is None:
            raise OrderRejected(_("qty_per is required"))
        side = request.side
        if request.is_close:
            held = self.position(request.market_type, request.symbol, request.params)
            if held == 0:
                raise OrderRejected(_("No position to close for %(symbol)s") % {"symbol": request.symbol})
            qty = (abs(held) * min(abs(qty), Decimal(100)) / 100).to_integral_value(rounding=ROUND_DOWN)
            side = "SELL" if held > 0 else "BUY"
        if qty < 1 or qty != qty.to_integral_value():
            raise OrderRejected(_("Quantity must be a whole number of at least 1: %(qty)s") % {"qty": qty})
        return side, qty

    # --- place ------------------------------------------------------------------------
    def place_order(self, request: OrderRequest) -> OrderResult:
        builders = {
            "DOMESTIC_STOCK": self._domestic_stock_order,
            "OVERSEAS_STOCK": self._overseas_stock_order,
            "DOMESTIC_FUTUREOPTION": self._domestic_fo_order,
            "OVERSEAS_FUTUREOPTION": self._overseas_fo_order,
        }
        builder = builders.get(request.market_type)
        if builder is None:
            raise self._unsupported(request.market_type)
        side, qty = self._quantity(request)
        path, tr_id, body = builder(request, side, qty)
        # Record what is about to be sent, so a timeout can be resolved by looking it up.
        intent = {
            "market_type": request.market_type,
            "pdno": str(body.get("PDNO") or body.get("SHTN_PDNO") or body.get("OVRS_FUTR_FX_PDNO")),
            "side": side,
            "qty": decimal_str(qty, "0"),
            "sent_at": self.clock().strftime("%Y%m%d%H%M%S"),
            "odno": "",
            "exchange": str(body.get("OVRS_EXCG_CD") or ""),
            "session": "night" if tr_id == "STTN1101U" else "day",
        }
        key = self._intent_key(request.client_order_id)
        cache.set(key, intent, timeout=INTENT_TTL)
        log.info(
            "한투 주문 전송: %s %s %s %s qty=%s tr=%s",
            request.market_type,
            request.symbol,
            side,
            request.order_type,
            qty,
            tr_id,
        )
        in_flight = self._in_flight_key(intent)
        self._in_flight_add(in_flight, 1)
        try:
            data = self.client.request(
                "POST", path, tr_id, body=body, place=True, use_hashkey=bool(self.settings.get("use_hashkey"))
            )
            output = data.get("output") or {}
            if isinstance(output, list):
                output = output[0] if output else {}
            odno = str(output.get("ODNO") or output.get("odno") or "")
            intent["odno"] = odno
            intent["branch"] = str(output.get("KRX_FWDG_ORD_ORGNO") or "")
            cache.set(key, intent, timeout=INTENT_TTL)
            if odno:
                # Claimed before the in-flight mark goes: a lookup then sees one or the other.
                cache.set(self._claim_key(odno), request.client_order_id, timeout=INTENT_TTL)
        except OrderUncertain:
            raise  # the intent stays: the lookup resolves it
        except VenueError:
            # A definite answer (refused, rate limited, token…): nothing was placed.
            cache.delete(key)
            raise
        finally:
            self._in_flight_add(in_flight, -1)
        accepted = OrderResult(
            status=OrderStatus.OPEN,
            exchange_order_id=odno,
            quantity=qty,
            message=str(data.get("msg1") or "").strip(),
        )
        return self._state_after_acceptance(intent, accepted)

    def _state_after_acceptance(self, intent: dict[str, Any], accepted: OrderResult) -> OrderResult:
        """The accepted order as its market's order inquiry shows it right now, so a market
        order that traded reads filled (KIS answers an order with its number only). The order
        is placed whatever this read does: when it fails or does not list the order yet, the
        answer stays ``accepted`` (open) and the sweep's refresh reads it later. Never raises."""
        if not intent["odno"]:
            return accepted
        try:
            found = self._find(intent)
        except VenueError as e:
            log.warning("한투 주문 상태 조회 실패 (주문은 접수됨): odno=%s %s", intent["odno"], e.message)
            return accepted
        except Exception:
            # A bug in reading must not turn a placed order into a failed one.
            log.exception("한투 주문 상태 조회 오류 (주문은 접수됨): odno=%s", intent["odno"])
            return accepted
        if found is None:
            log.warning(
                "한투 주문 상태 조회: 주문이 아직 목록에 없습니다 (주문은 접수됨): odno=%s", intent["odno"]
            )
            return accepted
        state = found.result()
        state.message = accepted.message
        return state

    def _domestic_stock_order(
        self, request: OrderRequest, side: str, qty: Decimal
    ) -> tuple[str, str, dict[str, Any]]:
        ord_dvsn = DOMESTIC_ORD_DVSN.get(request.order_type)
        if ord_dvsn is None:
            raise self._unsupported(request.order_type)
        price = request.price if request.order_type in DOMESTIC_PRICED else None
        body = {
            **self._account(),
            "PDNO": self._pdno(request.symbol),
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": decimal_str(qty, "0"),
            "ORD_UNPR": decimal_str(price.to_integral_value() if price is not None else Decimal(0), "0"),
            "EXCG_ID_DVSN_CD": str(request.params.get("exchange_id") or "KRX"),
            "SLL_TYPE": "01" if side == "SELL" else "",
            "CNDT_PRIC": decimal_str(request.stop_price, "0") if request.order_type == "STOP_LIMIT" else "",
        }
        tr_id = self.client.tr("TTTC0011U" if side == "SELL" else "TTTC0012U")
        return "/uapi/domestic-stock/v1/trading/order-cash", tr_id, body

    def _overseas_stock_order(
        self, request: OrderRequest, side: str, qty: Decimal
    ) -> tuple[str, str, dict[str, Any]]:
        code = self._exchange(request)
        market = OVERSEAS[code]
        if request.order_type == "LIMIT":
            price = request.price
        elif request.order_type == "MARKET":
            # The overseas order API takes limit orders only (00); a market order is a limit
            # priced through the current quote by a small margin, which fills like one.
            slip = Decimal(str(self.settings.get("overseas_market_slippage_pct", "0.5"))) / 100
            last = self.overseas_quote(code, request.symbol)
            price = last * (1 + slip) if side == "BUY" else last * (1 - slip)
        else:
            raise self._unsupported(request.order_type)
        assert price is not None
        price = price.quantize(Decimal(1).scaleb(-market.decimals), rounding=ROUND_HALF_UP)
        body = {
            **self._account(),
            "OVRS_EXCG_CD": code,
            "PDNO": request.symbol.upper(),
            "ORD_QTY": decimal_str(qty, "0"),
            "OVRS_ORD_UNPR": format(price, "f"),
            "CTAC_TLNO": "",
            "MGCO_APTM_ODNO": "",
            "SLL_TYPE": "00" if side == "SELL" else "",
            "ORD_SVR_DVSN_CD": "0",
            "ORD_DVSN": "00",
        }
        if side == "BUY":
            tr_id = self.client.tr(market.buy)
        else:
            tr_id = self.client.tr(market.sell, market.virtual_sell)
        return "/uapi/overseas-stock/v1/trading/order", tr_id, body

    def _today(self) -> date:
        return self.clock().date()

    def _session(self, params: dict[str, Any]) -> str:
        """day | night for domestic F&O: params/settings "session", else by the KST clock."""
        session = str(params.get("session") or self.settings.get("session") or "").lower()
        if session in ("day", "night"):
            return session
        return fo_session(self.clock())

    def _domestic_fo_order(
        self, request: OrderRequest, side: str, qty: Decimal
    ) -> tuple[str, str, dict[str, Any]]:
        kind = DOMESTIC_FO_TYPE.get(request.order_type)
        if kind is None:
            raise self._unsupported(request.order_type)
        price = request.price if request.order_type in ("LIMIT", "CONDITIONAL_LIMIT") else None
        body = {
            "ORD_PRCS_DVSN_CD": "02",
            **self._account(),
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
        night = self._session(request.params) == "night" and not self.client.virtual
        tr_id = "STTN1101U" if night else self.client.tr("TTTO1101U")
        return "/uapi/domestic-futureoption/v1/trading/order", tr_id, body

    def _overseas_fo_order(
        self, request: OrderRequest, side: str, qty: Decimal
    ) -> tuple[str, str, dict[str, Any]]:
        price_type = OVERSEAS_FO_PRICE_TYPE.get(request.order_type)
        if price_type is None:
            raise self._unsupported(request.order_type)
        for field in ("exchange_code", "contract_month"):
            if not request.params.get(field):
                raise OrderRejected(
                    _("params.%(field)s is required for %(market)s orders")
                    % {"field": field, "market": request.market_type}
                )
        limit = request.price if request.order_type in ("LIMIT", "STOP_LIMIT") else None
        stop = request.stop_price if request.order_type in ("STOP_MARKET", "STOP_LIMIT") else None
        body = {
            **self._account(),
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
            "CCLD_CNDT_CD": "2" if request.order_type == "MARKET" else "6",
            "CPLX_ORD_DVSN_CD": "0",
            "ECIS_RSVN_ORD_YN": "N",
            "FM_HDGE_ORD_SCRN_YN": "N",
        }
        return "/uapi/overseas-futureoption/v1/trading/order", "OTFM3001U", body

    # --- inquiries --------------------------------------------------------------------
    def overseas_quote(self, exchange_code: str, symbol: str) -> Decimal:
        data = self.client.request(
            "GET",
            "/uapi/overseas-price/v1/quotations/price",
            "HHDFS00000300",
            params={"AUTH": "", "EXCD": OVERSEAS[exchange_code].quote_code, "SYMB": symbol.upper()},
        )
        last = to_decimal((data.get("output") or {}).get("last"), ZERO)
        if last <= 0:
            raise OrderRejected(kis_error(_("no price for %(symbol)s") % {"symbol": symbol}))
        return last

    def _domestic_balance(self) -> dict[str, Any]:
        return self.client.request(
            "GET",
            "/uapi/domestic-stock/v1/trading/inquire-balance",
            self.client.tr("TTTC8434R"),
            params={
                **self._account(),
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

    def _overseas_balance(self, exchange_code: str, currency: str) -> dict[str, Any]:
        return self.client.request(
            "GET",
            "/uapi/overseas-stock/v1/trading/inquire-balance",
            self.client.tr("TTTS3012R"),
            params={
                **self._account(),
                "OVRS_EXCG_CD": exchange_code,
                "TR_CRCY_CD": currency,
                "CTX_AREA_FK200": "",
                "CTX_AREA_NK200": "",
            },
        )

    def balances(self) -> dict[str, Balance]:
        data = self._domestic_balance()
        summary = data.get("output2") or [{}]
        summary = summary[0] if isinstance(summary, list) else summary
        return {"KRW": Balance(asset="KRW", free=to_decimal(summary.get("dnca_tot_amt"), ZERO))}

    def position(self, market_type: str, symbol: str, params: dict[str, Any] | None = None) -> Decimal:
        params = params or {}
        if market_type == "DOMESTIC_STOCK":
            pdno = self._pdno(symbol)
            rows = self._domestic_balance().get("output1") or []
            return sum(
                (
                    to_decimal(r.get("ord_psbl_qty") or r.get("hldg_qty"), ZERO)
                    for r in rows
                    if r.get("pdno") == pdno
                ),
                Decimal(0),
            )
        if market_type == "OVERSEAS_STOCK":
            code = str(params.get("exchange_code") or "NASD").upper()
            code = OVERSEAS_ALIASES.get(code, code)
            currency = str(params.get("currency") or "USD")
            rows = self._overseas_balance(code, currency).get("output1") or []
            return sum(
                (
                    to_decimal(r.get("ord_psbl_qty") or r.get("ovrs_cblc_qty"), ZERO)
                    for r in rows
                    if r.get("ovrs_pdno") == symbol.upper()
                ),
                Decimal(0),
            )
        if market_type == "DOMESTIC_FUTUREOPTION":
            data = self.client.request(
                "GET",
                "/uapi/domestic-futureoption/v1/trading/inquire-balance",
                self.client.tr("CTFO6118R", "VTFO6118R"),
                params={
                    **self._account(),
                    "MGNA_DVSN": "01",
                    "EXCC_STAT_CD": "1",
                    "CTX_AREA_FK200": "",
                    "CTX_AREA_NK200": "",
                },
            )
            size = Decimal(0)
            for row in data.get("output1") or []:
                if (row.get("shtn_pdno") or row.get("pdno")) != symbol.upper():
                    continue
                qty = to_decimal(row.get("cblc_qty"), ZERO)
                short = row.get("sll_buy_dvsn_cd") == "01" or "매도" in str(row.get("sll_buy_dvsn_name", ""))
                size += -qty if short else qty
            return size
        if market_type == "OVERSEAS_FUTUREOPTION":
            data = self.client.request(
                "GET",
                "/uapi/overseas-futureoption/v1/trading/inquire-unpd",
                "OTFM1412R",
                params={**self._account(), "FUOP_DVSN": "00", "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""},
            )
            size = Decimal(0)
            for row in data.get("output") or []:
                if row.get("ovrs_futr_fx_pdno") != symbol.upper():
                    continue
                qty = to_decimal(row.get("fm_ustl_qty"), ZERO)
                size += -qty if row.get("sll_buy_dvsn_cd") == "01" else qty
            return size
        return Decimal(0)

    # --- order lists ------------------------------------------------------------------
    def _domestic_stock_orders(
        self, since: date, pdno: str = "", odno: str = "", *, unfilled_only: bool = False
    ) -> list[VenueOrder]:
        pages = self.client.inquire_pages(
            "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
            self.client.tr("TTTC0081R"),
            {
                **self._account(),
                "INQR_STRT_DT": since.strftime("%Y%m%d"),
                "INQR_END_DT": self._today().strftime("%Y%m%d"),
                "SLL_BUY_DVSN_CD": "00",
                "PDNO": pdno,
                "CCLD_DVSN": "02" if unfilled_only else "00",
                "INQR_DVSN": "00",
                "INQR_DVSN_3": "00",
                "ORD_GNO_BRNO": "",
                "ODNO": odno,
                "INQR_DVSN_1": "",
            },
            context_size=100,
        )
        return venue_orders(pages, "output1", domestic_stock_order)

    def _overseas_stock_orders(
        self, since: date, exchange: str = "", pdno: str = "", side: str = ""
    ) -> list[VenueOrder]:
        """해외주식 주문체결내역. Its dates are the exchange's local dates, which run up to a day
        behind Korea's: the window opens a day before ``since``. It cannot search by order number;
        모의투자 accepts only the unfiltered query."""
        virtual = self.client.virtual
        pages = self.client.inquire_pages(
            "/uapi/overseas-stock/v1/trading/inquire-ccnl",
            self.client.tr("TTTS3035R"),
            {
                **self._account(),
                "PDNO": "" if virtual else pdno or "%",
                "ORD_STRT_DT": (since - timedelta(days=1)).strftime("%Y%m%d"),
                "ORD_END_DT": self._today().strftime("%Y%m%d"),
                "SLL_BUY_DVSN": side_code(side) if side and not virtual else "00",
                "CCLD_NCCS_DVSN": "00",
                "OVRS_EXCG_CD": "" if virtual else exchange or "%",
                "SORT_SQN": "DS",
                "ORD_DT": "",
                "ORD_GNO_BRNO": "",
                "ODNO": "",
            },
        )
        return venue_orders(pages, "output", overseas_stock_order)

    def _domestic_fo_orders(
        self, since: date, session: str, pdno: str = "", side: str = "", *, unfilled_only: bool = False
    ) -> list[VenueOrder]:
        """선물옵션 주문체결내역; the night session has its own list (whose end date is the day
        after the last one wanted)."""
        params = {
            **self._account(),
            "STRT_ORD_DT": since.strftime("%Y%m%d"),
            "END_ORD_DT": self._today().strftime("%Y%m%d"),
            "SLL_BUY_DVSN_CD": side_code(side) if side else "00",
            "CCLD_NCCS_DVSN": "02" if unfilled_only else "00",
            "SORT_SQN": "AS",
            "STRT_ODNO": "",
            "PDNO": pdno,
            "MKET_ID_CD": "",
        }
        if session == "night" and not self.client.virtual:
            params["END_ORD_DT"] = (self._today() + timedelta(days=1)).strftime("%Y%m%d")
            pages = self.client.inquire_pages(
                "/uapi/domestic-futureoption/v1/trading/inquire-ngt-ccnl",
                "STTN5201R",
                {**params, "FUOP_DVSN_CD": "", "SCRN_DVSN": "02"},
            )
        else:
            pages = self.client.inquire_pages(
                "/uapi/domestic-futureoption/v1/trading/inquire-ccnl", self.client.tr("TTTO5201R"), params
            )
        return venue_orders(pages, "output1", domestic_fo_order)

    def _overseas_fo_orders(self, side: str = "", *, unfilled_only: bool = False) -> list[VenueOrder]:
        """해외선물옵션 당일주문내역: today's orders only."""
        pages = self.client.inquire_pages(
            "/uapi/overseas-futureoption/v1/trading/inquire-ccld",
            "OTFM3116R",
            {
                **self._account(),
                "CCLD_NCCS_DVSN": "03" if unfilled_only else "01",
                "SLL_BUY_DVSN_CD": side_code(side) if side else "%%",
                "FUOP_DVSN": "00",
            },
        )
        return venue_orders(pages, "output", overseas_fo_order)

    def _intent_orders(self, intent: dict[str, Any]) -> list[VenueOrder]:
        """The venue's orders an intent may be among: same market, product and side, from the
        day it was sent (the order number narrows the domestic stock query once known)."""
        market, pdno, side = intent["market_type"], intent["pdno"], intent["side"]
        since = _sent_at(intent).date()
        if market == "DOMESTIC_STOCK":
            return self._domestic_stock_orders(since, pdno, intent["odno"])
        if market == "OVERSEAS_STOCK":
            return self._overseas_stock_orders(since, intent.get("exchange", ""), pdno, side)
        if market == "DOMESTIC_FUTUREOPTION":
            return self._domestic_fo_orders(since, intent.get("session", "day"), pdno, side)
        return self._overseas_fo_orders(side)

    def _find(self, intent: dict[str, Any]) -> VenueOrder | None:
        """The intent's order by its known order number."""
        return next((o for o in self._intent_orders(intent) if o.odno == intent["odno"]), None)

    # --- lookup by client order id ----------------------------------------------------
    def _claim_key(self, odno: str) -> str:
        return f"kis:odno:{self.account.pk}:{odno}"

    def _in_flight_key(self, intent: dict[str, Any]) -> str:
        shape = ":".join(str(intent[k]) for k in ("market_type", "pdno", "side", "qty"))
        return f"kis:in-flight:{self.account.pk}:{shape}"

    def _in_flight_add(self, key: str, step: int) -> None:
        """Count the order requests of one shape (product, side, quantity) awaiting their answer.
        The mark outlives a dead worker only by its HTTP timeout and a margin."""
        ttl = int(self.client.timeout) + IN_FLIGHT_MARGIN
        try:
            if step > 0:
                cache.add(key, 0, timeout=ttl)
                cache.incr(key, step)
                cache.touch(key, ttl)
            else:
                cache.decr(key, -step)
        except ValueError:  # expired meanwhile
            if step > 0:
                cache.set(key, step, timeout=ttl)

    def _claim(
        self, client_order_id: str, intent: dict[str, Any], orders: list[VenueOrder]
    ) -> VenueOrder | None:
        """The venue order an unanswered intent became: same product, side and quantity, placed
        since the intent was sent, not claimed by another client order id. The claim is atomic
        (``cache.add``), so two intents never take the same order. Orders stamped at or after
        the intent come first; up to CLOCK_SKEW earlier only allows for the two clocks differing.

        Raises RetryableVenueError while another order of the same shape is in flight: the
        match may be that one's, which its answer will claim; asked again later, the lookup
        knows."""
        sent, qty = _sent_at(intent), to_decimal(intent["qty"], ZERO)
        matching = sorted(
            (
                o
                for o in orders
                if o.pdno == intent["pdno"]
                and o.side == intent["side"]
                and o.quantity == qty
                and o.placed_at is not None
                and o.placed_at >= sent - CLOCK_SKEW
            ),
            key=lambda o: (o.placed_at is not None and o.placed_at < sent, o.placed_at, o.odno),
        )
        owners = {o.odno: cache.get(self._claim_key(o.odno)) for o in matching}
        mine = next((o for o in matching if owners[o.odno] == client_order_id), None)
        if mine is not None:
            return mine
        free = [o for o in matching if owners[o.odno] is None]
        if not free:
            return None
        if cache.get(self._in_flight_key(intent)):
            raise RetryableVenueError(
                kis_error(_("an order of the same kind is in flight; looking up again shortly"))
            )
        for order in free:
            if cache.add(self._claim_key(order.odno), client_order_id, timeout=INTENT_TTL):
                return order
        return None

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        key = self._intent_key(request.client_order_id)
        intent = cache.get(key)
        if intent is None:
            return None  # never sent from here
        if intent["odno"]:
            found = self._find(intent)
            if found is not None:
                return found.result()
            return OrderResult(
                status=OrderStatus.OPEN,
                exchange_order_id=intent["odno"],
                quantity=to_decimal(intent["qty"], ZERO),
            )
        # Sent without an answer: the venue's order list says whether it arrived.
        found = self._claim(request.client_order_id, intent, self._intent_orders(intent))
        if found is None:
            return None
        intent["odno"] = found.odno
        cache.set(key, intent, timeout=INTENT_TTL)
        return found.result()

    # --- cancel -----------------------------------------------------------------------
    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        if market_type == "DOMESTIC_STOCK":
            return self._cancel_each(
                self._domestic_open_orders(), self._pdno(symbol) if symbol else None, self._cancel_domestic
            )
        if market_type == "OVERSEAS_STOCK":
            return self._cancel_each(self._overseas_open_orders(), symbol, self._cancel_overseas)
        if market_type == "DOMESTIC_FUTUREOPTION":
            session = self._session({})
            since = night_session_start(self.clock()) if session == "night" else self._today()
            return self._cancel_each(
                self._domestic_fo_orders(since, session, unfilled_only=True),
                symbol,
                lambda order: self._cancel_domestic_fo(order, session),
            )
        if market_type == "OVERSEAS_FUTUREOPTION":
            return self._cancel_each(
                self._overseas_fo_orders(unfilled_only=True), symbol, self._cancel_overseas_fo
            )
        raise OrderRejected(
            _("KIS does not support cancelling all orders for %(market)s") % {"market": market_type}
        )

    @staticmethod
    def _cancel_each(
        orders: list[VenueOrder], symbol: str | None, cancel: Callable[[VenueOrder], None]
    ) -> int:
        """Cancel every order with something left (of ``symbol`` when given); returns how many."""
        count = 0
        for order in orders:
            if (symbol and order.pdno != symbol.upper()) or order.remaining <= 0:
                continue
            cancel(order)
            count += 1
        return count

    def _domestic_open_orders(self) -> list[VenueOrder]:
        if self.client.virtual:
            # 모의투자 has no cancellable-orders inquiry: today's unfilled orders instead.
            return self._domestic_stock_orders(self._today(), unfilled_only=True)
        pages = self.client.inquire_pages(
            "/uapi/domestic-stock/v1/trading/inquire-psbl-rvsecncl",
            "TTTC0084R",
            {**self._account(), "INQR_DVSN_1": "0", "INQR_DVSN_2": "0"},
            context_size=100,
        )
        return venue_orders(pages, "output", domestic_stock_order)

    def _cancel_domestic(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/domestic-stock/v1/trading/order-rvsecncl",
            self.client.tr("TTTC0013U"),
            body={
                **self._account(),
                "KRX_FWDG_ORD_ORGNO": str(order.row.get("ord_gno_brno") or ""),
                "ORGN_ODNO": order.odno,
                "ORD_DVSN": str(order.row.get("ord_dvsn_cd") or "00"),
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0",
                "ORD_UNPR": "0",
                "QTY_ALL_ORD_YN": "Y",
                "EXCG_ID_DVSN_CD": str(order.row.get("excg_id_dvsn_cd") or "KRX"),
            },
        )

    def _overseas_open_orders(self) -> list[VenueOrder]:
        """해외주식 미체결내역, exchange by exchange."""
        orders = []
        for code in OVERSEAS:
            pages = self.client.inquire_pages(
                "/uapi/overseas-stock/v1/trading/inquire-nccs",
                self.client.tr("TTTS3018R"),
                {**self._account(), "OVRS_EXCG_CD": code, "SORT_SQN": "DS"},
            )
            for order in venue_orders(pages, "output", overseas_stock_order):
                order.row.setdefault("ovrs_excg_cd", code)
                orders.append(order)
        return orders

    def _cancel_overseas(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/overseas-stock/v1/trading/order-rvsecncl",
            self.client.tr("TTTT1004U"),
            body={
                **self._account(),
                "OVRS_EXCG_CD": str(order.row.get("ovrs_excg_cd")),
                "PDNO": order.pdno,
                "ORGN_ODNO": order.odno,
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": decimal_str(order.remaining, "0"),
                "OVRS_ORD_UNPR": "0",
                "MGCO_APTM_ODNO": "",
                "ORD_SVR_DVSN_CD": "0",
            },
        )

    def _cancel_domestic_fo(self, order: VenueOrder, session: str) -> None:
        kind = str(order.row.get("nmpr_type_cd") or "01")
        night = session == "night" and not self.client.virtual
        self.client.request(
            "POST",
            "/uapi/domestic-futureoption/v1/trading/order-rvsecncl",
            "TTTN1103U" if night else self.client.tr("TTTO1103U"),
            body={
                "ORD_PRCS_DVSN_CD": "02",
                **self._account(),
                "RVSE_CNCL_DVSN_CD": "02",
                "ORGN_ODNO": order.odno,
                "ORD_QTY": "0",
                "UNIT_PRICE": "0",
                "NMPR_TYPE_CD": kind,
                "KRX_NMPR_CNDT_CD": "0",
                "RMN_QTY_YN": "Y",
                "ORD_DVSN_CD": kind,
                "FUOP_ITEM_DVSN_CD": "",
            },
        )

    def _cancel_overseas_fo(self, order: VenueOrder) -> None:
        self.client.request(
            "POST",
            "/uapi/overseas-futureoption/v1/trading/order-rvsecncl",
            "OTFM3003U",
            body={
                **self._account(),
                "ORGN_ORD_DT": str(order.row.get("ord_dt")),
                "ORGN_ODNO": order.odno,
                "FM_LIMIT_ORD_PRIC": "",
                "FM_STOP_ORD_PRIC": "",
                "FM_LQD_LMT_ORD_PRIC": "",
                "FM_LQD_STOP_ORD_PRIC": "",
                "FM_HDGE_ORD_SCRN_YN": "N",
                "FM_MKPR_CVSN_YN": "N",
            },
        )


def _sent_at(intent: dict[str, Any]) -> datetime:
    return datetime.strptime(intent["sent_at"], "%Y%m%d%H%M%S").replace(tzinfo=KST)
