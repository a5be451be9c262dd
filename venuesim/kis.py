"""A KIS (한국투자증권) Open API compatible server: tokenP, hashkey, orders and inquiries.

It checks what the real gateway checks: ``authorization: Bearer <token>`` from /oauth2/tokenP
(expired tokens answer EGW00123, unknown ones EGW00121), the ``appkey``/``appsecret`` the
token was issued to, ``tr_id`` against the path and the environment (virtual = V… ids), the
``custtype`` header, and the body: upper-case keys, every value a string, required fields.
Token requests are limited to one per minute per app key (EGW00133).
Error codes and messages follow KIS where known; a few checks (marked) use invented codes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from venuesim.core import Fault, Request, Route, SimReply, SimServer, dec, fmt, run_from_command_line

KST = ZoneInfo("Asia/Seoul")


def ok(
    output: Any = None, msg: str = "정상처리 되었습니다.", code: str = "MCA00000", **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"rt_cd": "0", "msg_cd": code, "msg1": msg}
    if output is not None:
        body["output"] = output
    body.update(extra)
    return body


def fail(code: str, msg: str, status: int = 500) -> SimReply:
    return SimReply(status, {"rt_cd": "1", "msg_cd": code, "msg1": msg})


US = ("NASD", "NYSE", "AMEX")
OVERSEAS_TR = {  # exchange -> (buy, sell, virtual sell)
    **{x: ("TTTT1002U", "TTTT1006U", "VTTT1001U") for x in US},
    "SEHK": ("TTTS1002U", "TTTS1001U", "VTTS1001U"),
    "SHAA": ("TTTS0202U", "TTTS1005U", "VTTS1005U"),
    "SZAA": ("TTTS0305U", "TTTS0304U", "VTTS0304U"),
    "TKSE": ("TTTS0308U", "TTTS0307U", "VTTS0307U"),
    "HASE": ("TTTS0311U", "TTTS0310U", "VTTS0310U"),
    "VNSE": ("TTTS0311U", "TTTS0310U", "VTTS0310U"),
}
# The exchange's own time zone: overseas order lists are dated in it (ord_dt).
EXCHANGE_TZ = {
    **{x: ZoneInfo("America/New_York") for x in US},
    "SEHK": ZoneInfo("Asia/Hong_Kong"),
    "SHAA": ZoneInfo("Asia/Shanghai"),
    "SZAA": ZoneInfo("Asia/Shanghai"),
    "TKSE": ZoneInfo("Asia/Tokyo"),
    "HASE": ZoneInfo("Asia/Ho_Chi_Minh"),
    "VNSE": ZoneInfo("Asia/Ho_Chi_Minh"),
}
# Price steps as the exchanges set them (KRX since 2023-01-25; ETF/ETN 5 won; HKEX spread
# table; JPX for stocks outside TOPIX100): (lower bound, step), lowest first.
KRX_STEPS = ((0, 1), (2000, 5), (5000, 10), (20000, 50), (50000, 100), (200000, 500), (500000, 1000))
ETF_STEPS = ((0, 5),)
SEHK_STEPS = (
    (0, "0.001"), ("0.25", "0.005"), ("0.50", "0.01"), (10, "0.02"), (20, "0.05"), (100, "0.10"),
    (200, "0.20"), (500, "0.50"), (1000, 1), (2000, 2), (5000, 5),
)  # fmt: skip
TSE_STEPS = (
    (0, 1), (3000, 5), (5000, 10), (30000, 50), (50000, 100), (300000, 500), (500000, 1000),
    (3000000, 5000), (5000000, 10000), (30000000, 50000), (50000000, 100000),
)  # fmt: skip
OVERSEAS_STEPS = {"SEHK": SEHK_STEPS, "TKSE": TSE_STEPS}
# KIS's answer to an off-step price is not in the official material: invented code, KIS wording.
OFF_STEP = ("APBK1690", "호가단위 오류입니다.")


def on_step(price: Decimal, bands: tuple[tuple[Any, Any], ...]) -> bool:
    step = dec(bands[0][1])
    for lower, band_step in bands:
        if price >= dec(lower):
            step = dec(band_step)
    return price % step == 0


LISTED = ("KIOK0510", "조회가 완료되었습니다")
OVERSEAS_EMPTY_ROW = {
    **dict.fromkeys(("ord_dt", "ord_gno_brno", "odno", "orgn_odno", "sll_buy_dvsn_cd", "rvse_cncl_dvsn"), ""),
    **dict.fromkeys(("pdno", "prcs_stat_name", "ord_tmd", "ovrs_excg_cd", "dmst_ord_dt", "thco_ord_tmd"), ""),
    **dict.fromkeys(("ft_ord_qty", "ft_ccld_qty", "nccs_qty"), "0"),
    "ft_ord_unpr3": "0.00000000",
    "ft_ccld_unpr3": "0.00000000",
    "mdia_dvsn_name": "OpenAPI",
}
NOTHING_LISTED = ("KIOK0560", "조회할 내용이 없습니다")
QUOTE_EXCD = {
    "NAS": US,
    "NYS": US,
    "AMS": US,
    "HKS": ("SEHK",),
    "TSE": ("TKSE",),
    "SHS": ("SHAA",),
    "SZS": ("SZAA",),
    "HNX": ("HASE",),
    "HSX": ("VNSE",),
}


def _average_in(
    averages: dict[Any, Decimal], held: dict[Any, Decimal], key: Any, signed: Decimal, price: Decimal
) -> None:
    """A buy moves the holding's 매입평균가격 to the quantity-weighted average; a sell leaves it."""
    before = held.get(key, Decimal(0))
    if signed > 0:
        averages[key] = (before * averages.get(key, Decimal(0)) + signed * price) / (before + signed)


class KisSim(SimServer):
    name = "kis"

    def __init__(
        self,
        app_key: str = "sim-appkey",
        app_secret: str = "sim-appsecret",
        *,
        virtual: bool = False,
        account: str = "12345678",
        token_lifetime: int = 86400,
        token_min_interval: float = 60.0,
    ) -> None:
        self.apps = {app_key: app_secret}
        self.virtual = virtual
        self.account = account
        self.token_lifetime = token_lifetime
        self.token_min_interval = token_min_interval
        self.tokens: dict[str, dict[str, Any]] = {}
        self.last_token_at: dict[str, float] = {}
        self.token_requests = 0
        self.cash_krw = dec("100000000")
        self.cash_usd = dec("100000")
        # 선물옵션 계좌 예수금현금 (CTFO6118R output2 dnca_cash) and 해외선물옵션 예수금잔액
        # (OTFM1411R fm_dnca_rmnd, USD): fills do not move them (margin is not modelled).
        self.fo_cash_krw = dec("50000000")
        self.ofo_cash_usd = dec("200000")
        # Tests: CTRP6504R output2 also lists a KRW row (whether KIS sends one is not documented).
        self.present_balance_krw_row = False
        self.prices: dict[str, Decimal] = {
            "005930": dec("70000"),
            "000660": dec("140000"),
            "069500": dec("35000"),
            "035420": dec("200000"),
        }
        self.overseas_prices: dict[tuple[str, str], Decimal] = {
            ("NASD", "AAPL"): dec("190.00"),
            ("NASD", "MSFT"): dec("410.00"),
            ("NASD", "NVDA"): dec("480.00"),
            ("NYSE", "TSLA"): dec("250.00"),
            ("NYSE", "BRK.B"): dec("420.00"),
            ("SEHK", "9988"): dec("80.000"),
            ("TKSE", "7203"): dec("2500"),
            ("VNSE", "VNM"): dec("85000"),
        }
        self.fo_prices: dict[str, Decimal] = {
            "101TC000": dec("320.50"),
            "201PC260": dec("5.00"),
            "201CA320": dec("3.00"),
        }
        self.ofo_prices: dict[str, Decimal] = {
            "ESZ4": dec("5000.00"),
            "NQH5": dec("16500.00"),
            "CL-DEC24": dec("75.00"),
            "GCZ24": dec("2050.00"),
            "6E_Z4": dec("1.0800"),
        }
        self.etfs = {"069500"}  # KODEX 200: ETF price steps
        self.holdings: dict[str, Decimal] = {"005930": dec("100")}
        self.overseas_holdings: dict[tuple[str, str], Decimal] = {
            ("NASD", "MSFT"): dec("20"),
            ("NYSE", "BRK.B"): dec("5"),
        }
        # 매입평균가격 (pchs_avg_pric) per holding: buys average in, sells leave it (as KIS shows).
        self.avg_prices: dict[str, Decimal] = {"005930": dec("65000")}
        self.overseas_avg_prices: dict[tuple[str, str], Decimal] = {
            ("NASD", "MSFT"): dec("400.00"),
            ("NYSE", "BRK.B"): dec("410.00"),
        }
        self.fo_positions: dict[str, Decimal] = {}
        # Trades of the night session: in the night balance (CTFN6118R) only, not in the day
        # balance (CTFO6118R). Their settlement into the next day is not modelled.
        self.fo_night_positions: dict[str, Decimal] = {}
        self.ofo_positions: dict[str, Decimal] = {}
        self.orders: list[dict[str, Any]] = []
        self._odno = itertools.count(117057)
        self.page_size = 100  # rows per inquiry page; later pages follow tr_cont F/M -> N
        self.clock: Callable[[], datetime] = lambda: datetime.now(KST)  # stamps new orders
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return SimReply(502, b"<html><body>502 Bad Gateway</body></html>")
        if fault.kind == "rate_limit":
            return fail("EGW00201", "초당 거래건수를 초과하였습니다.")
        if fault.kind == "token_expired":
            return fail("EGW00123", "기간이 만료된 token 입니다.")
        if fault.kind == "reject":
            return fail("APBK0952", fault.message or "주문가능금액을 초과 했습니다", status=200)
        raise ValueError(fault.kind)

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token["expires_at"] = time.time() - 1

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        d, o = "/uapi/domestic-stock/v1/trading", "/uapi/overseas-stock/v1/trading"
        dfo, ofo = "/uapi/domestic-futureoption/v1/trading", "/uapi/overseas-futureoption/v1/trading"
        return {
            ("POST", "/oauth2/tokenP"): self.token_issue,
            ("POST", "/uapi/hashkey"): self.hashkey,
            ("POST", f"{d}/order-cash"): self.domestic_order,
            (
                "GET",
                "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice",
            ): self.domestic_daily_chart,
            ("GET", f"{d}/inquire-balance"): self.domestic_balance,
            ("GET", f"{d}/inquire-daily-ccld"): self.domestic_daily,
            ("GET", f"{d}/inquire-psbl-rvsecncl"): self.domestic_cancellable,
            ("POST", f"{d}/order-rvsecncl"): self.domestic_cancel,
            ("POST", f"{o}/order"): self.overseas_order,
            ("GET", "/uapi/overseas-price/v1/quotations/price"): self.overseas_quote,
            ("GET", f"{o}/inquire-balance"): self.overseas_balance,
            ("GET", f"{o}/inquire-present-balance"): self.overseas_present_balance,
            ("GET", f"{o}/inquire-nccs"): self.overseas_open,
            ("GET", f"{o}/inquire-ccnl"): self.overseas_orders,
            ("POST", f"{o}/order-rvsecncl"): self.overseas_cancel,
            ("POST", f"{dfo}/order"): self.dfo_order,
            ("GET", f"{dfo}/inquire-balance"): self.dfo_balance,
            ("GET", f"{dfo}/inquire-ngt-balance"): self.dfo_night_balance,
            ("GET", f"{dfo}/inquire-ccnl"): self.dfo_orders,
            ("GET", f"{dfo}/inquire-ngt-ccnl"): self.dfo_night_orders,
            ("POST", f"{dfo}/order-rvsecncl"): self.dfo_cancel,
            ("POST", f"{ofo}/order"): self.ofo_order,
            ("GET", f"{ofo}/inquire-ccld"): self.ofo_orders,
            ("POST", f"{ofo}/order-rvsecncl"): self.ofo_cancel,
            ("GET", f"{ofo}/inquire-unpd"): self.ofo_unpd,
            ("GET", f"{ofo}/inquire-deposit"): self.ofo_deposit,
        }

    # --- auth -------------------------------------------------------------------------
    def token_issue(self, request: Request) -> dict[str, Any]:
        body = request.json()
        key, secret = body.get("appkey", ""), body.get("appsecret", "")
        if body.get("grant_type") != "client_credentials":
            raise SimReply(
                403, {"error_description": "grant_type 값을 확인해주세요.", "error_code": "EGW00002"}
            )
        if self.apps.get(key) != secret:
            raise SimReply(
                403, {"error_description": "유효하지 않은 AppKey입니다.", "error_code": "EGW00103"}
            )
        with self.lock:
            self.token_requests += 1
            if time.time() - self.last_token_at.get(key, 0) < self.token_min_interval:
                raise SimReply(
                    403,
                    {
                        "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
                        "error_code": "EGW00133",
                    },
                )
            self.last_token_at[key] = time.time()
            token = secrets.token_urlsafe(48)
            expires = time.time() + self.token_lifetime
            self.tokens[token] = {"appkey": key, "expires_at": expires}
        expired_at = datetime.fromtimestamp(expires, KST).strftime("%Y-%m-%d %H:%M:%S")
        return {
            "access_token": token,
            "access_token_token_expired": expired_at,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
        }

    def _app(self, request: Request) -> str:
        key = request.header("appkey")
        if not key or self.apps.get(key) != request.header("appsecret"):
            raise fail("EGW00103", "유효하지 않은 AppKey입니다.")
        return key

    def hashkey(self, request: Request) -> dict[str, Any]:
        self._app(request)
        return {"BODY": request.json(), "HASH": hashlib.sha256(request.body).hexdigest()}

    def _auth(
        self,
        request: Request,
        tr_ids: tuple[str, ...],
        required: tuple[str, ...] = (),
        form: str = "query",
        account: bool = True,
    ) -> dict[str, str]:
        """Gateway checks, in the gateway's order; returns the (string-valued) fields."""
        key = self._app(request)
        authorization = request.header("authorization")
        if not authorization.startswith("Bearer "):
            raise fail("EGW00121", "유효하지 않은 token 입니다.")
        token = self.tokens.get(authorization[7:])
        if token is None or token["appkey"] != key:
            raise fail("EGW00121", "유효하지 않은 token 입니다.")
        if token["expires_at"] < time.time():
            raise fail("EGW00123", "기간이 만료된 token 입니다.")
        if request.header("custtype") not in ("P", "B"):
            raise fail("EGW00205", "custtype 값이 올바르지 않습니다.")  # invented code
        tr_id = request.header("tr_id")
        if tr_id not in tr_ids:
            raise fail("EGW00202", f"tr_id가 올바르지 않습니다: {tr_id}")  # invented code
        fields: dict[str, Any] = request.json() if form == "body" else dict(request.query)
        for name, value in fields.items():
            if name != name.upper() or not isinstance(value, str):
                raise fail("OPSQ2001", f"입력값 형식 오류: {name}")  # invented code
        for name in (("CANO", "ACNT_PRDT_CD") if account else ()) + tuple(required):
            if name not in fields:
                raise fail("OPSQ2002", f"필수항목 누락: {name}")  # invented code
        if account and fields["CANO"] != self.account:
            raise fail("OPSQ2000", "ERROR : INPUT_FIELD_SIZE 계좌번호 확인")
        return fields

    def _tr(self, real: str, virtual: str | None = None) -> tuple[str, ...]:
        if self.virtual:
            return (virtual or "V" + real[1:],)
        return (real,)

    # --- quotations -------------------------------------------------------------------
    def domestic_daily_chart(self, request: Request) -> dict[str, Any]:
        """FHKST03010100: daily bars between two dates, newest first (as KIS sends them); a
        bar per weekday, closing at the current price, 1 % apart."""
        fields = self._auth(
            request,
            ("FHKST03010100",),
            (
                "FID_COND_MRKT_DIV_CODE",
                "FID_INPUT_ISCD",
                "FID_INPUT_DATE_1",
                "FID_INPUT_DATE_2",
                "FID_PERIOD_DIV_CODE",
                "FID_ORG_ADJ_PRC",
            ),
            account=False,
        )
        ticker = fields["FID_INPUT_ISCD"]
        if ticker not in self.prices:
            raise fail("OPSQ0002", "종목코드 오류입니다")  # invented code
        start = datetime.strptime(fields["FID_INPUT_DATE_1"], "%Y%m%d").date()
        day = datetime.strptime(fields["FID_INPUT_DATE_2"], "%Y%m%d").date()
        close = self.prices[ticker]
        rows: list[dict[str, str]] = []
        while day >= start and len(rows) < 100:
            if day.weekday() < 5:
                rows.append(
                    {
                        "stck_bsop_date": day.strftime("%Y%m%d"),
                        "stck_oprc": fmt(close),
                        "stck_hgpr": fmt(close * dec("1.01")),
                        "stck_lwpr": fmt(close * dec("0.99")),
                        "stck_clpr": fmt(close),
                        "acml_vol": "1000",
                    }
                )
                close = (close * dec("0.99")).quantize(dec("1"))
            day -= timedelta(days=1)
        return ok(None, output1={"stck_shrn_iscd": ticker}, output2=rows)

    # --- domestic stock ---------------------------------------------------------------
    def _new_order(self, market: str, **fields: Any) -> dict[str, Any]:
        now = self.clock()
        order = {
            "market": market,
            "odno": f"{next(self._odno):010d}",
            "branch": "91252",
            "placed_at": now,
            "ord_dt": now.strftime("%Y%m%d"),
            "ord_tmd": now.strftime("%H%M%S"),
            "filled": Decimal(0),
            "avg": Decimal(0),
            "cancelled": False,
            **fields,
        }
        self.orders.append(order)
        return order

    def domestic_order(self, request: Request) -> dict[str, Any]:
        fields = self._auth(
            request,
            self._tr("TTTC0012U") + self._tr("TTTC0011U"),
            ("PDNO", "ORD_DVSN", "ORD_QTY", "ORD_UNPR"),
            form="body",
        )
        side = "SELL" if request.header("tr_id").endswith("0011U") else "BUY"
        pdno, dvsn = fields["PDNO"], fields["ORD_DVSN"]
        if pdno not in self.prices:
            raise fail("APBK0656", "해당종목정보가 없습니다.", 200)
        if dvsn not in ("00", "01", "02", "03", "04", "05", "06", "07", "22"):
            raise fail("APBK1680", "주문구분코드를 확인하세요.", 200)
        if fields.get("EXCG_ID_DVSN_CD", "KRX") not in ("KRX", "NXT", "SOR", ""):
            raise fail("APBK1681", "거래소ID구분코드를 확인하세요.", 200)
        if not fields["ORD_QTY"].isdigit() or int(fields["ORD_QTY"]) < 1:
            raise fail("APBK0914", "주문수량을 확인하세요.", 200)
        qty, price = dec(fields["ORD_QTY"]), dec(fields["ORD_UNPR"] or "0")
        market_like = dvsn in ("01", "03", "04")
        if market_like and price != 0:
            raise fail("APBK1225", "시장가 주문은 주문단가를 0으로 입력하세요.", 200)  # invented code
        if not market_like and price <= 0:
            raise fail("APBK0917", "주문단가를 입력하세요.", 200)
        if dvsn == "22" and not fields.get("CNDT_PRIC"):
            raise fail("APBK1226", "조건가격을 입력하세요.", 200)  # invented code
        steps = ETF_STEPS if pdno in self.etfs else KRX_STEPS
        if not market_like and not on_step(price, steps):
            raise fail(*OFF_STEP, 200)
        if dvsn == "22" and not on_step(dec(fields["CNDT_PRIC"]), steps):
            raise fail(*OFF_STEP, 200)
        with self.lock:
            fill_price = self.prices[pdno]
            if side == "BUY" and qty * (price or fill_price) > self.cash_krw:
                raise fail("APBK0952", "주문가능금액을 초과 했습니다", 200)
            if side == "SELL" and qty > self.holdings.get(pdno, Decimal(0)):
                raise fail("APBK0400", "주문 가능한 수량을 초과하였습니다.", 200)
            order = self._new_order(
                "domestic",
                pdno=pdno,
                side=side,
                qty=qty,
                price=price,
                dvsn=dvsn,
                excg=fields.get("EXCG_ID_DVSN_CD") or "KRX",
            )
            if market_like:
                self._fill(order, fill_price)
        return ok(
            {"KRX_FWDG_ORD_ORGNO": order["branch"], "ODNO": order["odno"], "ORD_TMD": order["ord_tmd"]},
            "주문 전송 완료 되었습니다.",
            "APBK0013",
        )

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        """The whole order trades at ``price``: holdings, positions and cash follow."""
        signed = order["qty"] if order["side"] == "BUY" else -order["qty"]
        market, pdno = order["market"], order["pdno"]
        if market == "domestic":
            _average_in(self.avg_prices, self.holdings, pdno, signed, price)
            self.holdings[pdno] = self.holdings.get(pdno, Decimal(0)) + signed
            self.cash_krw -= signed * price
        elif market == "overseas":
            key = (order["excg"], pdno)
            _average_in(self.overseas_avg_prices, self.overseas_holdings, key, signed, price)
            self.overseas_holdings[key] = self.overseas_holdings.get(key, Decimal(0)) + signed
            self.cash_usd -= signed * price
        elif market == "dfo":
            book = self.fo_night_positions if order.get("session") == "STTN1101U" else self.fo_positions
            book[pdno] = book.get(pdno, Decimal(0)) + signed
        else:
            self.ofo_positions[pdno] = self.ofo_positions.get(pdno, Decimal(0)) + signed
        order.update(filled=order["qty"], avg=price)

    def fill_order(self, odno: str, price: Decimal | None = None) -> dict[str, Any]:
        """The market trades a resting order (tests): at ``price``, else its limit price."""
        with self.lock:
            order = next(o for o in self.orders if o["odno"] == odno)
            if order["cancelled"] or order["filled"] >= order["qty"]:
                raise ValueError(f"order {odno} is not resting")
            self._fill(order, price if price is not None else order["price"])
            return order

    def domestic_balance(self, request: Request) -> dict[str, Any]:
        """TTTC8434R 주식잔고조회: output1 rows carry 보유수량, 매입평균가격 and 현재가 under the
        names open-trading-api's inquire_balance lists (hldg_qty, pchs_avg_pric, prpr)."""
        self._auth(request, self._tr("TTTC8434R"), ("INQR_DVSN", "UNPR_DVSN", "PRCS_DVSN"))
        rows = [
            {
                "pdno": p,
                "prdt_name": p,
                "hldg_qty": fmt(q),
                "ord_psbl_qty": fmt(q),
                "pchs_avg_pric": fmt(self.avg_prices.get(p, Decimal(0))),
                "prpr": fmt(self.prices.get(p)),
            }
            for p, q in self.holdings.items()
            if q
        ]
        summary = [
            {
                "dnca_tot_amt": fmt(self.cash_krw),
                "tot_evlu_amt": fmt(self.cash_krw),
                "nass_amt": fmt(self.cash_krw),
            }
        ]
        return ok(None, output1=rows, output2=summary, ctx_area_fk100="", ctx_area_nk100="")

    def _domestic_row(self, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "ord_dt": o["ord_dt"],
            "ord_gno_brno": o["branch"],
            "odno": o["odno"],
            "orgn_odno": "",
            "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
            "pdno": o["pdno"],
            "ord_qty": fmt(o["qty"]),
            "ord_unpr": fmt(o["price"]),
            "ord_tmd": o["ord_tmd"],
            "tot_ccld_qty": fmt(o["filled"]),
            "avg_prvs": fmt(o["avg"]),
            "cncl_yn": "Y" if o["cancelled"] else "N",
            "rmn_qty": fmt(o["qty"] - o["filled"]),
            "rjct_qty": "0",
            "ord_dvsn_cd": o["dvsn"],
            "excg_id_dvsn_cd": o["excg"],
        }

    def _cancellable_row(self, o: dict[str, Any]) -> dict[str, Any]:
        """A row of TTTC0084R 주식정정취소가능주문조회 (the fields inquire_psbl_rvsecncl lists)."""
        return {
            "ord_gno_brno": o["branch"],
            "odno": o["odno"],
            "orgn_odno": "",
            "pdno": o["pdno"],
            "prdt_name": o["pdno"],
            "ord_qty": fmt(o["qty"]),
            "ord_unpr": fmt(o["price"]),
            "ord_tmd": o["ord_tmd"],
            "tot_ccld_qty": fmt(o["filled"]),
            "tot_ccld_amt": fmt(o["avg"] * o["filled"]),
            "psbl_qty": fmt(o["qty"] - o["filled"]),
            "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
            "ord_dvsn_cd": o["dvsn"],
            "excg_id_dvsn_cd": o["excg"],
        }

    def domestic_daily(self, request: Request) -> SimReply:
        """TTTC0081R 주식일별주문체결조회 (open-trading-api inquire_daily_ccld): EXCG_ID_DVSN_CD
        KRX (the default when absent), NXT or SOR lists the orders sent to that venue only, ALL
        lists every one. Pages of 100 rows (모의투자: 15), continued with tr_cont N."""
        fields = self._auth(
            request, self._tr("TTTC0081R"), ("INQR_STRT_DT", "INQR_END_DT", "SLL_BUY_DVSN_CD", "CCLD_DVSN")
        )
        venue = fields.get("EXCG_ID_DVSN_CD") or "KRX"
        if venue not in ("KRX", "NXT", "SOR", "ALL"):
            raise fail("APBK1681", "거래소ID구분코드를 확인하세요.", 200)
        with self.lock:
            rows = [
                self._domestic_row(o)
                for o in self.orders
                if o["market"] == "domestic"
                and fields["INQR_STRT_DT"] <= o["ord_dt"] <= fields["INQR_END_DT"]
                and (venue == "ALL" or o["excg"] == venue)
                and (not fields.get("PDNO") or o["pdno"] == fields["PDNO"])
                and (not fields.get("ODNO") or o["odno"] == fields["ODNO"])
                and (fields["CCLD_DVSN"] != "02" or (not o["cancelled"] and o["filled"] < o["qty"]))
            ]
        rows.sort(key=lambda r: r["odno"], reverse=fields.get("INQR_DVSN", "00") == "00")
        size = min(self.page_size, 15) if self.virtual else self.page_size
        return self._page(
            request, rows, "output1", context=100, size=size, output2={"tot_ord_qty": str(len(rows))}
        )

    def domestic_cancellable(self, request: Request) -> SimReply:
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        self._auth(request, ("TTTC0084R",), ("INQR_DVSN_1", "INQR_DVSN_2"))
        with self.lock:
            rows = [
                self._cancellable_row(o)
                for o in self.orders
                if o["market"] == "domestic" and not o["cancelled"] and o["filled"] < o["qty"]
            ]
        return self._page(request, rows, "output", context=100)

    def domestic_cancel(self, request: Request) -> dict[str, Any]:
        fields = self._auth(
            request,
            self._tr("TTTC0013U"),
            (
                "KRX_FWDG_ORD_ORGNO",
                "ORGN_ODNO",
                "ORD_DVSN",
                "RVSE_CNCL_DVSN_CD",
                "ORD_QTY",
                "ORD_UNPR",
                "QTY_ALL_ORD_YN",
            ),
            form="body",
        )
        if fields["RVSE_CNCL_DVSN_CD"] != "02":
            raise fail("APBK1680", "정정취소구분코드를 확인하세요.", 200)  # 01 (modify) is not modelled
        return self._cancel("domestic", fields["ORGN_ODNO"])

    def _cancel(self, market: str, odno: str) -> dict[str, Any]:
        with self.lock:
            for o in self.orders:
                if (
                    o["market"] == market
                    and o["odno"] == odno
                    and not o["cancelled"]
                    and o["filled"] < o["qty"]
                ):
                    o["cancelled"] = True
                    new = f"{next(self._odno):010d}"
                    # The answer's fields per market, as the order_rvsecncl samples list them.
                    output: dict[str, str] = {
                        "KRX_FWDG_ORD_ORGNO": o["branch"],
                        "ODNO": new,
                        "ORD_TMD": o["ord_tmd"],
                    }
                    if market == "dfo":
                        output = {
                            "ACNT_NAME": "SIM",
                            "TRAD_DVSN_NAME": "취소",
                            "ITEM_NAME": o["pdno"],
                            "ORD_TMD": o["ord_tmd"],
                            "ORD_GNO_BRNO": o["branch"],
                            "ORGN_ODNO": o["odno"],
                            "ODNO": new,
                        }
                    elif market == "ofo":
                        output = {"ORD_DT": o["ord_dt"], "ODNO": new}
                    return ok(output, "주문 전송 완료 되었습니다.", "APBK0013")
        raise fail("APBK0918", "정정/취소할 수량이 없습니다.", 200)

    # --- overseas stock ---------------------------------------------------------------
    def overseas_order(self, request: Request) -> dict[str, Any]:
        all_trs: set[str] = set()
        for buy, sell, vsell in OVERSEAS_TR.values():
            all_trs.update(self._tr(buy) + self._tr(sell, vsell))
        fields = self._auth(
            request,
            tuple(all_trs),
            ("OVRS_EXCG_CD", "PDNO", "ORD_QTY", "OVRS_ORD_UNPR", "ORD_SVR_DVSN_CD", "ORD_DVSN"),
            form="body",
        )
        code, symbol, tr_id = fields["OVRS_EXCG_CD"], fields["PDNO"], request.header("tr_id")
        if code not in OVERSEAS_TR:
            raise fail("APBK1510", "해외거래소코드를 확인하세요.", 200)
        buy, sell, vsell = OVERSEAS_TR[code]
        if tr_id in self._tr(buy):
            side = "BUY"
        elif tr_id in self._tr(sell, vsell):
            side = "SELL"
        else:
            raise fail("EGW00202", f"tr_id가 거래소와 맞지 않습니다: {tr_id}")  # invented code
        if (code, symbol) not in self.overseas_prices:
            raise fail("APBK0656", "해당종목정보가 없습니다.", 200)
        if fields["ORD_DVSN"] != "00" and (
            self.virtual or fields["ORD_DVSN"] not in ("31", "32", "33", "34")
        ):
            raise fail("APBK1680", "주문구분코드를 확인하세요.", 200)
        qty, price = dec(fields["ORD_QTY"]), dec(fields["OVRS_ORD_UNPR"] or "0")
        if not fields["ORD_QTY"].isdigit() or qty < 1:
            raise fail("APBK0914", "주문수량을 확인하세요.", 200)
        if fields["ORD_DVSN"] == "00" and price <= 0:
            raise fail("APBK0917", "주문단가를 입력하세요.", 200)
        if code in OVERSEAS_STEPS and not on_step(price, OVERSEAS_STEPS[code]):
            raise fail(*OFF_STEP, 200)
        with self.lock:
            last = self.overseas_prices[(code, symbol)]
            if side == "SELL" and qty > self.overseas_holdings.get((code, symbol), Decimal(0)):
                raise fail("APBK0400", "주문 가능한 수량을 초과하였습니다.", 200)
            order = self._new_order(
                "overseas", pdno=symbol, excg=code, side=side, qty=qty, price=price, dvsn="00"
            )
            if (side == "BUY" and price >= last) or (side == "SELL" and price <= last):
                self._fill(order, last)
        return ok(
            {"KRX_FWDG_ORD_ORGNO": order["branch"], "ODNO": order["odno"], "ORD_TMD": order["ord_tmd"]},
            "주문 전송 완료 되었습니다.",
            "APBK0013",
        )

    def overseas_quote(self, request: Request) -> dict[str, Any]:
        self._app(request)
        excd, symbol = request.query.get("EXCD", ""), request.query.get("SYMB", "")
        for code in QUOTE_EXCD.get(excd, ()):
            if (code, symbol) in self.overseas_prices:
                last = self.overseas_prices[(code, symbol)]
                return ok(
                    {
                        "rsym": f"D{excd}{symbol}",
                        "zdiv": "4",
                        "base": fmt(last),
                        "pvol": "0",
                        "last": fmt(last),
                        "sign": "3",
                        "diff": "0",
                        "rate": "0.00",
                        "tvol": "0",
                        "tamt": "0",
                        "ordy": "매수가능",
                    }
                )
        return ok({"rsym": "", "last": "", "base": ""})

    def overseas_balance(self, request: Request) -> dict[str, Any]:
        """TTTS3012R 해외주식 잔고 (field names as open-trading-api's overseas inquire_balance:
        ovrs_cblc_qty, pchs_avg_pric, now_pric2)."""
        fields = self._auth(request, self._tr("TTTS3012R"), ("OVRS_EXCG_CD", "TR_CRCY_CD"))
        code = fields["OVRS_EXCG_CD"]
        us = code in US
        rows = [
            {
                "ovrs_pdno": s,
                "ovrs_item_name": s,
                "ovrs_cblc_qty": fmt(q),
                "ord_psbl_qty": fmt(q),
                "ovrs_excg_cd": c,
                "pchs_avg_pric": fmt(self.overseas_avg_prices.get((c, s), Decimal(0))),
                "now_pric2": fmt(self.overseas_prices.get((c, s))),
                "tr_crcy_cd": "USD",
            }
            for (c, s), q in self.overseas_holdings.items()
            if q and (c == code or (us and c in US))
        ]
        return ok(
            None,
            output1=rows,
            output2={"frcr_pchs_amt1": "0", "tot_evlu_pfls_amt": "0"},
            ctx_area_fk200="",
            ctx_area_nk200="",
        )

    def overseas_present_balance(self, request: Request) -> dict[str, Any]:
        """CTRP6504R 해외주식 체결기준현재잔고 (open-trading-api examples_llm/overseas_stock/
        inquire_present_balance): output1 a row per holding, output2 a row per currency
        (crcy_cd, 외화예수금액2 frcr_dncl_amt_2, 외화출금가능금액1 frcr_drwg_psbl_amt_1),
        output3 the account totals. Only the US (USD) is modelled: NATN_CD 000 or 840."""
        fields = self._auth(
            request,
            self._tr("CTRP6504R", "VTRP6504R"),
            ("WCRC_FRCR_DVSN_CD", "NATN_CD", "TR_MKET_CD", "INQR_DVSN_CD"),
        )
        if fields["WCRC_FRCR_DVSN_CD"] not in ("01", "02"):
            raise fail("OPSQ2003", "원화외화구분코드를 확인하세요.", 200)  # invented code
        if fields["NATN_CD"] not in ("000", "840", "344", "156", "392", "704"):
            raise fail("OPSQ2003", "국가코드를 확인하세요.", 200)  # invented code
        if fields["INQR_DVSN_CD"] not in ("00", "01", "02"):
            raise fail("OPSQ2003", "조회구분코드를 확인하세요.", 200)  # invented code
        us = fields["NATN_CD"] in ("000", "840")
        rows = [
            {
                "pdno": s,
                "prdt_name": s,
                "cblc_qty13": fmt(q),
                "ord_psbl_qty1": fmt(q),
                "avg_unpr3": fmt(self.overseas_avg_prices.get((c, s), Decimal(0))),
                "ovrs_now_pric1": fmt(self.overseas_prices.get((c, s))),
                "ovrs_excg_cd": c,
                "buy_crcy_cd": "USD",
            }
            for (c, s), q in self.overseas_holdings.items()
            if q and us and c in US
        ]
        currencies = (
            [
                {
                    "crcy_cd": "USD",
                    "frcr_dncl_amt_2": fmt(self.cash_usd),
                    "frcr_drwg_psbl_amt_1": fmt(self.cash_usd),
                    "frcr_buy_mgn_amt": "0",
                    "frcr_etc_mgna": "0",
                    "nxdy_frcr_drwg_psbl_amt": fmt(self.cash_usd),
                }
            ]
            if us
            else []
        )
        if self.present_balance_krw_row:
            currencies.append({"crcy_cd": "KRW", "frcr_dncl_amt_2": fmt(self.cash_krw)})
        totals = {"tot_dncl_amt": "0", "frcr_use_psbl_amt": fmt(self.cash_usd) if us else "0"}
        return ok(None, output1=rows, output2=currencies, output3=totals)

    def overseas_open(self, request: Request) -> SimReply:
        """TTTS3018R 해외주식 미체결내역 (fields as open-trading-api inquire_nccs lists them).
        OVRS_EXCG_CD NASD lists every US exchange (NYSE and AMEX too); any other code lists that
        exchange only; a blank code is refused (the sample: "반드시 거래소코드 입력")."""
        fields = self._auth(
            request, self._tr("TTTS3018R"), ("OVRS_EXCG_CD", "SORT_SQN", "CTX_AREA_FK200", "CTX_AREA_NK200")
        )
        code = fields["OVRS_EXCG_CD"]
        if code not in OVERSEAS_TR:
            raise fail("APBK1510", "해외거래소코드를 확인하세요.", 200)
        wanted = US if code == "NASD" else (code,)
        with self.lock:
            rows = [
                {
                    "ord_dt": o["placed_at"].astimezone(EXCHANGE_TZ[o["excg"]]).strftime("%Y%m%d"),
                    "ord_gno_brno": o["branch"],
                    "odno": o["odno"],
                    "orgn_odno": "",
                    "pdno": o["pdno"],
                    "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
                    "rvse_cncl_dvsn_cd": "00",
                    "rjct_rson": "",
                    "ord_tmd": o["ord_tmd"],
                    "tr_crcy_cd": "USD" if o["excg"] in US else "",
                    "natn_cd": "840" if o["excg"] in US else "",
                    "ft_ord_qty": fmt(o["qty"]),
                    "ft_ccld_qty": fmt(o["filled"]),
                    "nccs_qty": fmt(o["qty"] - o["filled"]),
                    "ft_ord_unpr3": f"{o['price']:.8f}",
                    "ft_ccld_unpr3": f"{o['avg']:.8f}",
                    "ft_ccld_amt3": f"{o['avg'] * o['filled']:.5f}",
                    "ovrs_excg_cd": o["excg"],
                    "loan_type_cd": "10",
                    "loan_dt": "",
                    "usa_amk_exts_rqst_yn": "N",
                }
                for o in self.orders
                if o["market"] == "overseas"
                and o["excg"] in wanted
                and not o["cancelled"]
                and o["filled"] < o["qty"]
            ]
        # "DS : 정순, 그외 : 역순" (inquire_nccs)
        rows.sort(key=lambda r: r["odno"], reverse=fields["SORT_SQN"] != "DS")
        return self._page(request, rows, "output")

    def overseas_cancel(self, request: Request) -> dict[str, Any]:
        fields = self._auth(
            request,
            self._tr("TTTT1004U"),
            ("OVRS_EXCG_CD", "PDNO", "ORGN_ODNO", "RVSE_CNCL_DVSN_CD", "ORD_QTY", "OVRS_ORD_UNPR"),
            form="body",
        )
        if fields["RVSE_CNCL_DVSN_CD"] != "02":
            raise fail("APBK1680", "정정취소구분코드를 확인하세요.", 200)
        return self._cancel("overseas", fields["ORGN_ODNO"])

    # --- futures/options --------------------------------------------------------------
    def dfo_order(self, request: Request) -> dict[str, Any]:
        trs = ("VTTO1101U",) if self.virtual else ("TTTO1101U", "STTN1101U")
        fields = self._auth(
            request,
            trs,
            (
                "ORD_PRCS_DVSN_CD",
                "SLL_BUY_DVSN_CD",
                "SHTN_PDNO",
                "ORD_QTY",
                "UNIT_PRICE",
                "NMPR_TYPE_CD",
                "KRX_NMPR_CNDT_CD",
                "ORD_DVSN_CD",
            ),
            form="body",
        )
        code = fields["SHTN_PDNO"]
        if code not in self.fo_prices:
            raise fail("APBK0656", "해당종목정보가 없습니다.", 200)
        if fields["SLL_BUY_DVSN_CD"] not in ("01", "02") or fields["ORD_DVSN_CD"] not in (
            "01",
            "02",
            "03",
            "04",
        ):
            raise fail("APBK1680", "주문구분코드를 확인하세요.", 200)
        qty = dec(fields["ORD_QTY"])
        side = "SELL" if fields["SLL_BUY_DVSN_CD"] == "01" else "BUY"
        with self.lock:
            order = self._new_order(
                "dfo",
                pdno=code,
                side=side,
                qty=qty,
                price=dec(fields["UNIT_PRICE"] or "0"),
                dvsn=fields["ORD_DVSN_CD"],
                excg="KRX",
                session=request.header("tr_id"),
            )
            if fields["ORD_DVSN_CD"] in ("02", "04"):
                self._fill(order, self.fo_prices[code])
        return ok(  # the fields open-trading-api domestic_futureoption/order lists
            {"KRX_FWDG_ORD_ORGNO": order["branch"], "ODNO": order["odno"], "ORD_TMD": order["ord_tmd"]},
            "주문 전송 완료 되었습니다.",
            "APBK0013",
        )

    def dfo_balance(self, request: Request) -> SimReply:
        """CTFO6118R 선물옵션 잔고현황: the day session's positions (night trades not in it)."""
        self._auth(request, self._tr("CTFO6118R", "VTFO6118R"), ("MGNA_DVSN", "EXCC_STAT_CD"))
        return self._dfo_balance(self.fo_positions)

    def dfo_night_balance(self, request: Request) -> SimReply:
        """CTFN6118R (야간)선물옵션 잔고현황 (open-trading-api inquire_ngt_balance): real
        accounts only; the day positions with the night session's trades."""
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        self._auth(request, ("CTFN6118R",), ("MGNA_DVSN", "EXCC_STAT_CD", "CTX_AREA_FK200", "CTX_AREA_NK200"))
        merged = dict(self.fo_positions)
        for code, qty in self.fo_night_positions.items():
            merged[code] = merged.get(code, Decimal(0)) + qty
        return self._dfo_balance(merged)

    def _dfo_balance(self, positions: dict[str, Decimal]) -> SimReply:
        rows = [
            {
                "cano": self.account,
                "acnt_prdt_cd": "03",
                "pdno": c,
                "prdt_type_cd": "301",
                "shtn_pdno": c,
                "prdt_name": c,
                "sll_buy_dvsn_name": "매수" if q > 0 else "매도",
                "sll_buy_dvsn_cd": "02" if q > 0 else "01",
                "cblc_qty": fmt(abs(q)),
                "lqd_psbl_qty": fmt(abs(q)),
            }
            for c, q in positions.items()
            if q
        ]
        # output2: the account summary under open-trading-api's names (inquire_balance of
        # domestic_futureoption): 예수금현금 dnca_cash, 총예수금액 tot_dncl_amt, 주문가능현금.
        cash = fmt(self.fo_cash_krw)
        summary = {"dnca_cash": cash, "tot_dncl_amt": cash, "ord_psbl_cash": cash, "mgna_tota": "0"}
        body = ok(None, output1=rows, output2=summary, ctx_area_fk200="", ctx_area_nk200="")
        return SimReply(200, body, {"tr_cont": "D"})

    def ofo_order(self, request: Request) -> dict[str, Any]:
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        fields = self._auth(
            request,
            ("OTFM3001U",),
            (
                "OVRS_FUTR_FX_PDNO",
                "SLL_BUY_DVSN_CD",
                "PRIC_DVSN_CD",
                "FM_LIMIT_ORD_PRIC",
                "FM_STOP_ORD_PRIC",
                "FM_ORD_QTY",
                "CCLD_CNDT_CD",
            ),
            form="body",
        )
        code, kind = fields["OVRS_FUTR_FX_PDNO"], fields["PRIC_DVSN_CD"]
        if code not in self.ofo_prices:
            raise fail("APBK0656", "해당종목정보가 없습니다.", 200)
        if kind not in ("1", "2", "3", "4"):
            raise fail("APBK1680", "가격구분코드를 확인하세요.", 200)
        if kind in ("1", "4") and not fields["FM_LIMIT_ORD_PRIC"]:
            raise fail("APBK0917", "주문단가를 입력하세요.", 200)
        if kind in ("3", "4") and not fields["FM_STOP_ORD_PRIC"]:
            raise fail("APBK0917", "STOP 가격을 입력하세요.", 200)
        if kind == "2" and fields["CCLD_CNDT_CD"] != "2":
            raise fail("APBK1681", "시장가 주문의 체결조건은 2입니다.", 200)  # invented code
        qty = dec(fields["FM_ORD_QTY"])
        side = "SELL" if fields["SLL_BUY_DVSN_CD"] == "01" else "BUY"
        with self.lock:
            order = self._new_order(
                "ofo",
                pdno=code,
                side=side,
                qty=qty,
                price=dec(fields["FM_LIMIT_ORD_PRIC"] or "0"),
                dvsn=kind,
                excg="",
                stop=fields["FM_STOP_ORD_PRIC"],
            )
            if kind == "2":
                self._fill(order, self.ofo_prices[code])
        return ok(
            {"ORD_DT": order["ord_dt"], "ODNO": order["odno"]}, "주문 전송 완료 되었습니다.", "APBK0013"
        )

    def ofo_unpd(self, request: Request) -> dict[str, Any]:
        self._auth(request, ("OTFM1412R",), ("FUOP_DVSN",))
        rows = [
            {
                "ovrs_futr_fx_pdno": c,
                "sll_buy_dvsn_cd": "02" if q > 0 else "01",
                "fm_ustl_qty": fmt(abs(q)),
                "fm_lqd_psbl_qty": fmt(abs(q)),
            }
            for c, q in self.ofo_positions.items()
            if q
        ]
        return ok(rows, ctx_area_fk100="", ctx_area_nk100="")

    def ofo_deposit(self, request: Request) -> dict[str, Any]:
        """OTFM1411R 해외선물옵션 예수금현황 (open-trading-api examples_llm/overseas_futureoption/
        inquire_deposit): CRCY_CD TUS/TKR (totals) or one currency; INQR_DT YYYYMMDD. Only USD
        is held: any other single currency answers zeros."""
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        fields = self._auth(request, ("OTFM1411R",), ("CRCY_CD", "INQR_DT"))
        currency, day = fields["CRCY_CD"], fields["INQR_DT"]
        if currency not in ("TUS", "TKR", "KRW", "USD", "EUR", "HKD", "CNY", "JPY", "VND"):
            raise fail("OPSQ2003", "통화코드를 확인하세요.", 200)  # invented code
        if len(day) != 8 or not day.isdigit():
            raise fail("OPSQ2003", "조회일자를 확인하세요.", 200)  # invented code
        held = self.ofo_cash_usd if currency in ("TUS", "USD") else Decimal(0)
        return ok(
            {
                "cano": self.account,
                "acnt_prdt_cd": "08",
                "crcy_cd": currency,
                "resp_dt": day,
                "fm_dnca_rmnd": fmt(held),
                "fm_tot_asst_evlu_amt": fmt(held),
                "fm_ord_psbl_amt": fmt(held),
                "fm_drwg_psbl_amt": fmt(held),
                "fm_brkg_mgn_amt": "0",
                "fm_fuop_evlu_pfls_amt": "0",
            }
        )

    def dfo_cancel(self, request: Request) -> dict[str, Any]:
        trs = ("VTTO1103U",) if self.virtual else ("TTTO1103U", "TTTN1103U")
        fields = self._auth(
            request,
            trs,
            (
                "ORD_PRCS_DVSN_CD",
                "RVSE_CNCL_DVSN_CD",
                "ORGN_ODNO",
                "ORD_QTY",
                "UNIT_PRICE",
                "NMPR_TYPE_CD",
                "KRX_NMPR_CNDT_CD",
                "RMN_QTY_YN",
                "ORD_DVSN_CD",
            ),
            form="body",
        )
        if fields["RVSE_CNCL_DVSN_CD"] != "02":
            raise fail("APBK1680", "정정취소구분코드를 확인하세요.", 200)
        return self._cancel("dfo", fields["ORGN_ODNO"])

    def ofo_cancel(self, request: Request) -> dict[str, Any]:
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        fields = self._auth(request, ("OTFM3003U",), ("ORGN_ORD_DT", "ORGN_ODNO"), form="body")
        with self.lock:
            if not any(
                o["market"] == "ofo"
                and o["odno"] == fields["ORGN_ODNO"]
                and o["ord_dt"] == fields["ORGN_ORD_DT"]
                for o in self.orders
            ):
                raise fail("APBK0918", "정정/취소할 수량이 없습니다.", 200)
        return self._cancel("ofo", fields["ORGN_ODNO"])

    # --- order lists (inquiries) ------------------------------------------------------
    def _dates(self, fields: dict[str, str], *names: str) -> list[str]:
        for name in names:
            try:
                datetime.strptime(fields[name], "%Y%m%d")
            except ValueError:
                raise fail("OPSQ2001", f"입력값 형식 오류: {name}") from None  # invented code
        return [fields[name] for name in names]

    def _page(
        self,
        request: Request,
        rows: list[dict[str, Any]],
        key: str,
        *,
        context: int = 200,
        size: int | None = None,
        **extra: Any,
    ) -> SimReply:
        """One page of ``rows`` under ``key``: tr_cont M while more follow, asked for with
        tr_cont N and the previous answer's ctx_area keys (here the next row's index)."""
        nk = f"CTX_AREA_NK{context}"
        start = request.query.get(nk, "").strip()
        if start and request.header("tr_cont") != "N":
            raise fail("OPSQ2005", "연속조회 구분(tr_cont)을 확인하세요.")  # invented code
        first = int(start) if start.isdigit() else 0
        size = size or self.page_size
        page, more = rows[first : first + size], first + size < len(rows)
        code, msg = LISTED if rows else NOTHING_LISTED
        body = {
            "rt_cd": "0",
            "msg_cd": code,
            "msg1": msg,
            key: page,
            **extra,
            f"ctx_area_fk{context}": request.query.get(f"CTX_AREA_FK{context}", ""),
            f"ctx_area_nk{context}": str(first + size) if more else "",
        }
        return SimReply(200, body, {"tr_cont": "M" if more else "D"})

    def _overseas_row(self, o: dict[str, Any]) -> dict[str, Any]:
        """A row of 해외주식 주문체결내역 (field names from the open-trading-api samples): ord_dt is
        the exchange's local date, dmst_ord_dt/thco_ord_tmd the Korean date and time."""
        left = Decimal(0) if o["cancelled"] else o["qty"] - o["filled"]
        return {
            "ord_dt": o["placed_at"].astimezone(EXCHANGE_TZ[o["excg"]]).strftime("%Y%m%d"),
            "ord_gno_brno": o["branch"],
            "odno": o["odno"],
            "orgn_odno": "",
            "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
            "sll_buy_dvsn_cd_name": "매도" if o["side"] == "SELL" else "매수",
            "rvse_cncl_dvsn": "00",
            "rvse_cncl_dvsn_name": "",
            "pdno": o["pdno"],
            "prdt_name": o["pdno"],
            "ft_ord_qty": fmt(o["qty"]),
            "ft_ord_unpr3": f"{o['price']:.8f}",
            "ft_ccld_qty": fmt(o["filled"]),
            "ft_ccld_unpr3": f"{o['avg']:.8f}",
            "ft_ccld_amt3": f"{o['avg'] * o['filled']:.5f}",
            "nccs_qty": fmt(left),
            "prcs_stat_name": "완료" if left == 0 else "접수",
            "rjct_rson": "",
            "rjct_rson_name": "",
            "ord_tmd": o["ord_tmd"],
            "tr_mket_name": o["excg"],
            "tr_crcy_cd": "USD" if o["excg"] in US else "",
            "tr_natn": "840" if o["excg"] in US else "",
            "ovrs_excg_cd": o["excg"],
            "tr_natn_name": "미국" if o["excg"] in US else "",
            "dmst_ord_dt": o["ord_dt"],
            "thco_ord_tmd": o["ord_tmd"],
            "loan_type_cd": "10",
            "loan_dt": "",
            "mdia_dvsn_name": "OpenAPI",
            "usa_amk_exts_rqst_yn": "N",
            "splt_buy_attr_name": "",
        }

    def overseas_orders(self, request: Request) -> SimReply:
        """TTTS3035R 해외주식 주문체결내역. Dates are the exchange's local dates; no search by
        order number; 모의투자 takes only the unfiltered query. An empty list is one blank row."""
        fields = self._auth(
            request,
            self._tr("TTTS3035R"),
            (
                "PDNO",
                "ORD_STRT_DT",
                "ORD_END_DT",
                "SLL_BUY_DVSN",
                "CCLD_NCCS_DVSN",
                "OVRS_EXCG_CD",
                "SORT_SQN",
                "ORD_DT",
                "ORD_GNO_BRNO",
                "ODNO",
                "CTX_AREA_NK200",
                "CTX_AREA_FK200",
            ),
        )
        start, end = self._dates(fields, "ORD_STRT_DT", "ORD_END_DT")
        pdno, side, state, excg = (
            fields[k] for k in ("PDNO", "SLL_BUY_DVSN", "CCLD_NCCS_DVSN", "OVRS_EXCG_CD")
        )
        if (
            side not in ("00", "01", "02")
            or state not in ("00", "01", "02")
            or fields["SORT_SQN"]
            not in (
                "DS",
                "AS",
            )
        ):
            raise fail("OPSQ2001", "입력값 형식 오류: 구분코드")  # invented code
        if fields["ODNO"]:
            raise fail("OPSQ2003", "주문번호로 조회할 수 없습니다.")  # invented code
        if self.virtual and (pdno or side != "00" or state != "00" or excg):
            raise fail("OPSQ2004", "모의투자계좌는 전체 조회만 가능합니다.")  # invented code
        with self.lock:
            rows = [
                self._overseas_row(o)
                for o in self.orders
                if o["market"] == "overseas"
                and (pdno in ("", "%") or o["pdno"] == pdno)
                and (excg in ("", "%") or o["excg"] == excg or (excg == "NASD" and o["excg"] in US))
                and (side == "00" or side == ("01" if o["side"] == "SELL" else "02"))
            ]
        rows = [
            r
            for r in rows
            if start <= r["ord_dt"] <= end and (state == "00" or (state == "01") == (r["ft_ccld_qty"] != "0"))
        ]
        rows.sort(key=lambda r: r["odno"], reverse=fields["SORT_SQN"] == "AS")
        if not rows:  # KIS answers an empty list with one row of blanks
            return self._page(request, [], "output", output=OVERSEAS_EMPTY_ROW)
        return self._page(request, rows, "output")

    def _dfo_row(self, o: dict[str, Any], night: bool) -> dict[str, Any]:
        """A row of 선물옵션 주문체결내역 (night: ord_idx4 for ord_idx): qty is what is left."""
        return {
            "ord_gno_brno": o["branch"],
            "cano": self.account,
            "csac_name": "SIM",
            "acnt_prdt_cd": "03",
            "ord_dt": o["ord_dt"],
            "odno": o["odno"],
            "orgn_odno": "",
            "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
            "trad_dvsn_name": "매도" if o["side"] == "SELL" else "매수",
            **({} if night else {"nmpr_type_cd": o["dvsn"]}),  # the night list has no code
            "nmpr_type_name": "지정가" if o["dvsn"] == "01" else "시장가",
            "pdno": o["pdno"],
            "prdt_name": o["pdno"],
            "prdt_type_cd": "301",
            "ord_qty": fmt(o["qty"]),
            "ord_idx4" if night else "ord_idx": fmt(o["price"]),
            "qty": "0" if o["cancelled"] else fmt(o["qty"] - o["filled"]),
            "ord_tmd": o["ord_tmd"],
            "tot_ccld_qty": fmt(o["filled"]),
            "avg_idx": fmt(o["avg"]),
            "tot_ccld_amt": fmt(o["avg"] * o["filled"]),
            "rjct_qty": "0",
            "ingr_trad_rjct_rson_cd": "",
            "ingr_trad_rjct_rson_name": "",
            "ord_stfno": "",
            "sprd_item_yn": "N",
            "ord_ip_addr": "127.0.0.1",
        }

    def _dfo_list(self, request: Request, fields: dict[str, str], night: bool) -> SimReply:
        start, end = self._dates(fields, "STRT_ORD_DT", "END_ORD_DT")
        side, state = fields["SLL_BUY_DVSN_CD"], fields["CCLD_NCCS_DVSN"]
        if side not in ("00", "01", "02", "") or state not in ("00", "01", "02"):
            raise fail("OPSQ2001", "입력값 형식 오류: 구분코드")  # invented code
        with self.lock:
            rows = [
                self._dfo_row(o, night)
                for o in self.orders
                if o["market"] == "dfo"
                and (o["session"] == "STTN1101U") == night
                # The night list's end date is the day after the last one wanted.
                and (start <= o["ord_dt"] < end if night else start <= o["ord_dt"] <= end)
                and (not fields["PDNO"] or o["pdno"] == fields["PDNO"])
                and (side in ("00", "") or side == ("01" if o["side"] == "SELL" else "02"))
                and (
                    state == "00"
                    or (state == "01" and o["filled"] > 0)
                    or (state == "02" and not o["cancelled"] and o["filled"] < o["qty"])
                )
            ]
        rows.sort(key=lambda r: r["odno"], reverse=fields["SORT_SQN"] == "DS")
        total = {
            "tot_ord_qty": fmt(sum((dec(r["ord_qty"]) for r in rows), Decimal(0))),
            "tot_ccld_qty_smtl" if not night else "tot_ccld_qty": fmt(
                sum((dec(r["tot_ccld_qty"]) for r in rows), Decimal(0))
            ),
            "tot_ccld_amt_smtl" if not night else "tot_ccld_amt": fmt(
                sum((dec(r["tot_ccld_amt"]) for r in rows), Decimal(0))
            ),
            "fee_smtl" if not night else "fee": "0",
        }
        return self._page(request, rows, "output1", output2=total)

    def dfo_orders(self, request: Request) -> SimReply:
        """TTTO5201R 선물옵션 주문체결내역 (day session orders); SORT_SQN AS 정순, DS 역순."""
        fields = self._auth(
            request,
            self._tr("TTTO5201R"),
            (
                "STRT_ORD_DT",
                "END_ORD_DT",
                "SLL_BUY_DVSN_CD",
                "CCLD_NCCS_DVSN",
                "SORT_SQN",
                "PDNO",
                "STRT_ODNO",
                "MKET_ID_CD",
                "CTX_AREA_FK200",
                "CTX_AREA_NK200",
            ),
        )
        if fields["SORT_SQN"] not in ("AS", "DS"):
            raise fail("OPSQ2001", "입력값 형식 오류: SORT_SQN")  # invented code
        return self._dfo_list(request, fields, night=False)

    def dfo_night_orders(self, request: Request) -> SimReply:
        """STTN5201R (야간)선물옵션 주문체결 내역조회: real accounts only."""
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        fields = self._auth(
            request,
            ("STTN5201R",),
            (
                "STRT_ORD_DT",
                "END_ORD_DT",
                "SLL_BUY_DVSN_CD",
                "CCLD_NCCS_DVSN",
                "SORT_SQN",
                "STRT_ODNO",
                "PDNO",
                "MKET_ID_CD",
                "FUOP_DVSN_CD",
                "SCRN_DVSN",
                "CTX_AREA_FK200",
                "CTX_AREA_NK200",
            ),
        )
        return self._dfo_list(request, fields, night=True)

    def ofo_orders(self, request: Request) -> SimReply:
        """OTFM3116R 해외선물옵션 당일주문내역: today's orders; CCLD_NCCS_DVSN 01 all, 02 filled,
        03 unfilled; SLL_BUY_DVSN_CD %% all; erlm_dtl_dtime YYYYMMDDHHMMSSmmm."""
        if self.virtual:
            raise fail("OPSQ0002", "모의투자에서는 해당업무가 제공되지 않습니다.", 200)
        fields = self._auth(
            request,
            ("OTFM3116R",),
            ("CCLD_NCCS_DVSN", "SLL_BUY_DVSN_CD", "FUOP_DVSN", "CTX_AREA_FK200", "CTX_AREA_NK200"),
        )
        state, side = fields["CCLD_NCCS_DVSN"], fields["SLL_BUY_DVSN_CD"]
        if state not in ("01", "02", "03") or side not in ("%%", "01", "02"):
            raise fail("OPSQ2001", "입력값 형식 오류: 구분코드")  # invented code
        today = datetime.now(KST).strftime("%Y%m%d")
        with self.lock:
            rows = [
                {
                    "cano": self.account,
                    "acnt_prdt_cd": "08",
                    "ord_dt": o["ord_dt"],
                    "odno": o["odno"],
                    "orgn_ord_dt": "",
                    "orgn_odno": "",
                    "ovrs_futr_fx_pdno": o["pdno"],
                    "rcit_dvsn_cd": "00",
                    "sll_buy_dvsn_cd": "01" if o["side"] == "SELL" else "02",
                    "trad_stgy_dvsn_cd": "00",
                    "bass_pric_type_cd": o["dvsn"],
                    "ord_stat_cd": "02",
                    "fm_ord_qty": fmt(o["qty"]),
                    "fm_ord_pric": fmt(o["price"]),
                    "fm_stop_ord_pric": o["stop"] or "0",
                    "rsvn_dvsn": "N",
                    "fm_ccld_qty": fmt(o["filled"]),
                    "fm_ccld_pric": fmt(o["avg"]),
                    "fm_ord_rmn_qty": "0" if o["cancelled"] else fmt(o["qty"] - o["filled"]),
                    "ord_grp_name": "",
                    "erlm_dtl_dtime": o["placed_at"].strftime("%Y%m%d%H%M%S%f")[:17],
                    "ccld_dtl_dtime": "",
                    "ord_stfno": "",
                    "rmks1": "",
                    "new_lqd_dvsn_cd": "1",
                    "fm_lqd_lmt_ord_pric": "0",
                    "fm_lqd_stop_pric": "0",
                    "ccld_cndt_cd": "2" if o["dvsn"] == "2" else "6",
                    "noti_vald_dt": "",
                    "acnt_type_cd": "1",
                    "fuop_dvsn": "01",
                }
                for o in self.orders
                if o["market"] == "ofo"
                and o["ord_dt"] == today
                and (side == "%%" or side == ("01" if o["side"] == "SELL" else "02"))
                and (
                    state == "01"
                    or (state == "02" and o["filled"] > 0)
                    or (state == "03" and not o["cancelled"] and o["filled"] < o["qty"])
                )
            ]
        rows.sort(key=lambda r: r["odno"], reverse=True)
        return self._page(request, rows, "output")

    # --- for tests --------------------------------------------------------------------
    def order_requests(self) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(("/order", "/order-cash"))]

    def last_body(self) -> dict[str, Any]:
        return json.loads(self.order_requests()[-1].body)


if __name__ == "__main__":
    run_from_command_line(KisSim, 9003)
