"""A Kiwoom (키움증권) REST API compatible server, with its realtime WebSocket on a thread.

Wire format from the official guide as exported in ``Kiwoom-Securities/Kiwoom-REST-API``
(``kiwoom/_data/kiwoom_api_spec.json``): every call is ``POST`` with a JSON body, names its API
in the ``api-id`` header and authenticates with ``authorization: Bearer <token>``; inquiries page
with the ``cont-yn`` / ``next-key`` headers; answers carry ``return_code`` (0 = success) and
``return_msg``. Numbers in answers are zero-padded strings, as the guide's examples show.

Modelled: au10001 (token, with expiry), kt10000/kt10001 (buy/sell), kt10003 (cancel), kt00007
(the day's orders and fills, paged), kt00018 (holdings), kt00001 (cash), ka10081 (daily chart,
made-up bars, paged); per-app-key rate limit
(opt-in); 모의투자 (``mock=True``) accepts KRX only; KRX price steps; faults as in core.py.
The WebSocket (``start_ws``) takes ``LOGIN`` with a REST token first, ``REG``/``REMOVE`` by
group, sends ``PING`` (to be echoed) and ``REAL`` 0B ticks keyed by field id.

Error codes come from the official client's classification (``kiwoom/core/errors.py``: 1700
rate limit, 8005 token, 8001 credentials, 1901 symbol, 1501+ input). The guide gives no
message texts for them: the Korean wordings below are this simulator's own (marked).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from venuesim.core import Fault, Request, Route, SimReply, SimServer, dec

KST = ZoneInfo("Asia/Seoul")
ORDER_PATH, ACCOUNT_PATH, TOKEN_PATH = "/api/dostk/ordr", "/api/dostk/acnt", "/oauth2/token"
CHART_PATH = "/api/dostk/chart"
WS_PATH = "/api/dostk/websocket"
# Return codes (official client's errors.py); messages are this simulator's own wording.
RATE_LIMIT = (1700, "허용된 요청 개수를 초과하였습니다")  # wording invented
TOKEN_INVALID = (8005, "Token이 유효하지 않습니다")  # wording invented
BAD_CREDENTIALS = (8001, "App Key와 Secret Key 검증에 실패했습니다")  # wording invented
UNKNOWN_SYMBOL = (1901, "종목코드가 존재하지 않습니다")  # wording invented
INPUT_ERROR = 1501  # required field missing / wrong format (wording invented)
ORDER_REFUSED = 20  # invented: the guide lists no order refusal codes
# trde_tp (guide: 0 보통, 3 시장가, 5 조건부지정가, 6 최유리지정가, 7 최우선지정가, 61 장시작전시간외,
# 81 장마감후시간외, 62 시간외단일가, 28 스톱지정가, 10/13/16/20/23/26 IOC/FOK, 29-31 중간가)
TRDE_TP_NAMES = {
    "0": "보통",
    "3": "시장가",
    "5": "조건부지정가",
    "6": "최유리지정가",
    "7": "최우선지정가",
    "61": "장시작전시간외",
    "81": "장마감후시간외",
    "62": "시간외단일가",
    "28": "스톱지정가",
    "10": "보통(IOC)",
    "13": "시장가(IOC)",
    "16": "최유리(IOC)",
    "20": "보통(FOK)",
    "23": "시장가(FOK)",
    "26": "최유리(FOK)",
    "29": "중간가",
    "30": "중간가(IOC)",
    "31": "중간가(FOK)",
}
# How order lists name an order kind where it differs from the order request's wording
# (guide examples: 지정가 for 0, 시장가 for 3).
LIST_NAMES = {"0": "지정가"}
UNPRICED = frozenset({"3", "6", "7", "13", "16", "23", "26", "29", "30", "31"})
FILLS_AT_ONCE = frozenset({"3", "6", "7", "13", "16", "23", "26"})
# KRX stock price steps (lower bound, step).
KRX_STEPS = (
    (Decimal(0), Decimal(1)),
    (Decimal(2000), Decimal(5)),
    (Decimal(5000), Decimal(10)),
    (Decimal(20000), Decimal(50)),
    (Decimal(50000), Decimal(100)),
    (Decimal(200000), Decimal(500)),
    (Decimal(500000), Decimal(1000)),
)


def krx_step(price: Decimal) -> Decimal:
    return [step for lower, step in KRX_STEPS if price >= lower][-1]


def pad(value: Decimal | int, width: int) -> str:
    """Zero-padded with the sign inside the width, as the guide's examples show."""
    number = int(value)
    text = str(abs(number)).zfill(width - (1 if number < 0 else 0))
    return f"-{text}" if number < 0 else text


def answer(msg: str = "정상적으로 처리되었습니다", **fields: Any) -> dict[str, Any]:
    return {**fields, "return_code": 0, "return_msg": msg}


def refuse(code: int, msg: str, status: int = 200) -> SimReply:
    return SimReply(status, {"return_code": code, "return_msg": msg})


class KiwoomSim(SimServer):
    name = "kiwoom"

    def __init__(
        self,
        app_key: str = "sim-appkey",
        secret_key: str = "sim-secretkey",
        *,
        mock: bool = False,
        token_lifetime: int = 86400,
        rate_limit: int | None = None,
        max_items_per_group: int = 100,
        max_groups: int = 100,
    ) -> None:
        self.apps = {app_key: secret_key}
        self.mock = mock
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self.max_items_per_group = max_items_per_group
        self.max_groups = max_groups
        self.tokens: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        self._calls: dict[str, list[float]] = {}
        self.cash = dec("100000000")
        self.prices: dict[str, Decimal] = {
            "005930": dec("70000"),
            "000660": dec("140000"),
            "069500": dec("35000"),
            "035420": dec("200000"),
        }
        self.holdings: dict[str, Decimal] = {"005930": dec("100")}
        self.orders: list[dict[str, Any]] = []  # new orders only (what the venue executes)
        self.rows: list[dict[str, Any]] = []  # every order-list row, cancels included
        self._ord_no = itertools.count(138)
        self.page_size = 50
        # ka10081: the guide states no page size; these are the simulator's own.
        self.chart_page_size = 100
        self.chart_bars = 600  # weekday bars of history per code, ending at base_dt
        self.chart_requests = 0
        self.clock: Callable[[], datetime] = lambda: datetime.now(KST)
        # WebSocket side
        self.ws_connections: list[ServerConnection] = []
        self.ws_logins: list[str] = []
        self.ws_messages: list[dict[str, Any]] = []
        self.ws_registrations: dict[int, dict[str, set[str]]] = {}
        self.ws_echoes: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_server: Server | None = None
        self._ws_thread: threading.Thread | None = None
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return SimReply(502, b"<html><body>502 Bad Gateway</body></html>")
        if fault.kind == "rate_limit":
            return refuse(*RATE_LIMIT)
        if fault.kind == "token_expired":
            return refuse(*TOKEN_INVALID)
        if fault.kind == "reject":
            return refuse(ORDER_REFUSED, fault.message or "주문가능금액을 초과하였습니다")
        raise ValueError(fault.kind)

    def expire_tokens(self) -> None:
        with self.lock:
            for token in self.tokens.values():
                token["expires_at"] = time.time() - 1

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("POST", TOKEN_PATH): self.token_issue,
            ("POST", ORDER_PATH): self.order_route,
            ("POST", ACCOUNT_PATH): self.account_route,
            ("POST", CHART_PATH): self.chart_route,
        }

    def order_route(self, request: Request) -> Any:
        api_id, fields = self._auth(request, {"kt10000", "kt10001", "kt10003"})
        if api_id == "kt10003":
            return self.cancel(fields)
        return self.order(fields, buy=api_id == "kt10000")

    def account_route(self, request: Request) -> Any:
        api_id, fields = self._auth(request, {"kt00007", "kt00018", "kt00001"})
        if api_id == "kt00007":
            return self.order_list(request, fields)
        if api_id == "kt00018":
            return self.balance(request, fields)
        return self.deposit(fields)

    # --- auth -------------------------------------------------------------------------
    def token_issue(self, request: Request) -> dict[str, Any]:
        if request.header("api-id") != "au10001":
            raise refuse(INPUT_ERROR, "api-id 헤더를 확인하세요")  # wording invented
        body = request.json()
        if body.get("grant_type") != "client_credentials":
            raise refuse(INPUT_ERROR, "grant_type 값을 확인하세요")  # wording invented
        key = body.get("appkey", "")
        if not key or self.apps.get(key) != body.get("secretkey"):
            raise refuse(*BAD_CREDENTIALS)
        with self.lock:
            self.token_requests += 1
            token = secrets.token_urlsafe(48)
            expires = time.time() + self.token_lifetime
            self.tokens[token] = {"appkey": key, "expires_at": expires}
        expires_dt = datetime.fromtimestamp(expires, KST).strftime("%Y%m%d%H%M%S")
        return {
            "expires_dt": expires_dt,
            "token_type": "bearer",
            "token": token,
            "return_code": 0,
            "return_msg": "정상적으로 처리되었습니다",
        }

    def token_valid(self, token: str) -> bool:
        with self.lock:
            record = self.tokens.get(token)
            return record is not None and record["expires_at"] > time.time()

    def _auth(self, request: Request, api_ids: set[str]) -> tuple[str, dict[str, str]]:
        """The gateway's checks; returns (api-id, body fields, every value a string)."""
        if "application/json" not in request.header("content-type"):
            raise refuse(INPUT_ERROR, "Content-Type을 확인하세요")  # wording invented
        authorization = request.header("authorization")
        token = authorization[7:] if authorization.startswith("Bearer ") else ""
        if not self.token_valid(token):
            raise refuse(*TOKEN_INVALID)
        app = self.tokens[token]["appkey"]
        self._count(app)
        api_id = request.header("api-id")
        if api_id not in api_ids:
            raise refuse(INPUT_ERROR, f"api-id가 올바르지 않습니다: {api_id}")  # wording invented
        fields = request.json()
        if not isinstance(fields, dict):
            raise refuse(INPUT_ERROR, "입력값 형식 오류")  # wording invented
        for name, value in fields.items():
            if not isinstance(value, str):
                raise refuse(INPUT_ERROR, f"입력값 형식 오류: {name}")  # wording invented
        return api_id, fields

    def _count(self, app: str) -> None:
        if not self.rate_limit:
            return
        with self.lock:
            now = time.monotonic()
            calls = [t for t in self._calls.get(app, []) if now - t < 1.0]
            calls.append(now)
            self._calls[app] = calls
            if len(calls) > self.rate_limit:
                raise refuse(*RATE_LIMIT)

    @staticmethod
    def _required(fields: dict[str, str], *names: str) -> None:
        for name in names:
            if not fields.get(name):
                raise refuse(INPUT_ERROR, f"필수입력값 누락: {name}")  # wording invented

    # --- orders -----------------------------------------------------------------------
    def order(self, fields: dict[str, str], *, buy: bool) -> dict[str, Any]:
        self._required(fields, "dmst_stex_tp", "stk_cd", "ord_qty", "trde_tp")
        exchange, code, trde_tp = fields["dmst_stex_tp"], fields["stk_cd"], fields["trde_tp"]
        if exchange not in ("KRX", "NXT", "SOR") or (self.mock and exchange != "KRX"):
            raise refuse(INPUT_ERROR, f"국내거래소구분을 확인하세요: {exchange}")  # wording invented
        if trde_tp not in TRDE_TP_NAMES:
            raise refuse(INPUT_ERROR, f"매매구분을 확인하세요: {trde_tp}")  # wording invented
        if code not in self.prices:
            raise refuse(*UNKNOWN_SYMBOL)
        if not fields["ord_qty"].isdigit() or int(fields["ord_qty"]) < 1:
            raise refuse(INPUT_ERROR, "주문수량을 확인하세요")  # wording invented
        qty = dec(fields["ord_qty"])
        market = self.prices[code]
        price = market
        if trde_tp not in UNPRICED:
            self._required(fields, "ord_uv")
            price = self._price(fields["ord_uv"])
        stop = Decimal(0)
        if trde_tp == "28":
            self._required(fields, "cond_uv")
            stop = self._price(fields["cond_uv"])
        with self.lock:
            if buy and qty * price > self.cash:
                raise refuse(ORDER_REFUSED, "주문가능금액을 초과하였습니다")  # wording invented
            if not buy and qty > self.holdings.get(code, Decimal(0)):
                raise refuse(ORDER_REFUSED, "매도가능수량이 부족합니다")  # wording invented
            ord_no = pad(next(self._ord_no), 7)
            now = self.clock()
            order = {
                "ord_no": ord_no,
                "stk_cd": code,
                "side": "BUY" if buy else "SELL",
                "qty": qty,
                "price": price if trde_tp not in UNPRICED else Decimal(0),
                "stop": stop,
                "trde_tp": trde_tp,
                "exchange": exchange,
                "filled": Decimal(0),
                "avg": Decimal(0),
                "cancelled": Decimal(0),
                "ord_tm": now.strftime("%H:%M:%S"),
                "ord_dt": now.strftime("%Y%m%d"),
                "ori_ord": "0000000",
            }
            self.orders.append(order)
            self.rows.append(order)
            if trde_tp in FILLS_AT_ONCE:
                self._fill(order, market)
        msg = "매수주문이 완료되었습니다." if buy else "매도주문이 완료되었습니다."
        return answer(msg, ord_no=ord_no, dmst_stex_tp=exchange)

    @staticmethod
    def _price(text: str) -> Decimal:
        if not text.isdigit() or int(text) <= 0:
            raise refuse(INPUT_ERROR, f"주문단가를 확인하세요: {text}")  # wording invented
        price = dec(text)
        if price % krx_step(price):
            raise refuse(INPUT_ERROR, f"호가단위가 올바르지 않습니다: {text}")  # wording invented
        return price

    def _fill(self, order: dict[str, Any], price: Decimal) -> None:
        left = order["qty"] - order["filled"] - order["cancelled"]
        if left <= 0:
            return
        order["avg"] = (order["avg"] * order["filled"] + price * left) / (order["filled"] + left)
        order["filled"] += left
        signed = left if order["side"] == "BUY" else -left
        self.holdings[order["stk_cd"]] = self.holdings.get(order["stk_cd"], Decimal(0)) + signed
        self.cash -= signed * price

    def fill_order(self, ord_no: str, price: Decimal | None = None) -> dict[str, Any]:
        """Trade a resting order (test helper) at ``price`` or the current price."""
        with self.lock:
            order = next(o for o in self.orders if o["ord_no"] == ord_no)
            self._fill(order, price if price is not None else self.prices[order["stk_cd"]])
            return order

    def cancel(self, fields: dict[str, str]) -> dict[str, Any]:
        self._required(fields, "dmst_stex_tp", "orig_ord_no", "stk_cd", "cncl_qty")
        with self.lock:
            order = next((o for o in self.orders if o["ord_no"] == fields["orig_ord_no"]), None)
            if order is None or order["stk_cd"] != fields["stk_cd"]:
                raise refuse(ORDER_REFUSED, "원주문번호가 존재하지 않습니다")  # wording invented
            left = order["qty"] - order["filled"] - order["cancelled"]
            if left <= 0:
                raise refuse(ORDER_REFUSED, "취소가능수량이 없습니다")  # wording invented
            wanted = dec(fields["cncl_qty"]) if fields["cncl_qty"].isdigit() else Decimal(-1)
            if wanted < 0:
                raise refuse(INPUT_ERROR, "취소수량을 확인하세요")  # wording invented
            qty = left if wanted == 0 else min(wanted, left)
            order["cancelled"] += qty
            ord_no = pad(next(self._ord_no), 7)
            now = self.clock()
            self.rows.append(
                {
                    **order,
                    "ord_no": ord_no,
                    "qty": qty,
                    "filled": Decimal(0),
                    "avg": Decimal(0),
                    "cancelled": Decimal(0),
                    "ori_ord": order["ord_no"],
                    "cancel_row": True,
                    "ord_tm": now.strftime("%H:%M:%S"),
                }
            )
        side = "매수" if order["side"] == "BUY" else "매도"
        return answer(
            f"{side}취소 주문입력이 완료되었습니다",
            ord_no=ord_no,
            base_orig_ord_no=order["ord_no"],
            cncl_qty=pad(qty, 12),
        )

    # --- inquiries --------------------------------------------------------------------
    def _page(
        self, request: Request, rows: list[dict[str, Any]], size: int | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """One page of ``rows``: the request's ``next-key`` is where it starts (with cont-yn Y)."""
        size = size or self.page_size
        start = 0
        if request.header("cont-yn") == "Y":
            key = request.header("next-key")
            if not key.isdigit():
                raise refuse(INPUT_ERROR, "연속조회키를 확인하세요")  # wording invented
            start = int(key)
        page = rows[start : start + size]
        more = start + size < len(rows)
        headers = {"api-id": request.header("api-id"), "cont-yn": "Y" if more else "N"}
        headers["next-key"] = str(start + size) if more else ""
        return page, headers

    def chart_route(self, request: Request) -> SimReply:
        """ka10081 주식일봉차트조회요청: adjusted daily bars ending at ``base_dt``, newest first, one
        per weekday (no holidays). Made up but consistent: the newest close is today's price,
        each older close steps 0.5 % down then up in a 10-bar cycle (KRX steps), the open is the
        previous close, high/low bracket both, ``pred_pre`` is the change on the previous bar."""
        _api_id, fields = self._auth(request, {"ka10081"})
        self._required(fields, "stk_cd", "base_dt", "upd_stkpc_tp")
        if fields["upd_stkpc_tp"] not in ("0", "1"):
            raise refuse(INPUT_ERROR, "수정주가구분을 확인하세요")  # wording invented
        try:
            base = datetime.strptime(fields["base_dt"], "%Y%m%d").date()
        except ValueError:
            raise refuse(INPUT_ERROR, "기준일자를 확인하세요") from None  # wording invented
        code = fields["stk_cd"].removesuffix("_NX").removesuffix("_AL")
        with self.lock:
            self.chart_requests += 1
            price = self.prices.get(code)
        if price is None:
            raise refuse(*UNKNOWN_SYMBOL)
        rows = self.daily_bars(code, base, price)
        page, headers = self._page(request, rows, self.chart_page_size)
        return SimReply(200, answer(stk_cd=code, stk_dt_pole_chart_qry=page), headers)

    def daily_bars(self, code: str, base: date, price: Decimal) -> list[dict[str, str]]:
        """The ka10081 rows for ``code`` up to ``base`` (see chart_route), newest first."""
        days: list[date] = []
        day = base
        while len(days) < self.chart_bars:
            if day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        closes = [price]
        for n in range(1, len(days) + 1):
            factor = Decimal("0.995") if (n // 5) % 2 == 0 else Decimal("1.005")
            raw = closes[-1] * factor
            closes.append((raw / krx_step(raw)).to_integral_value(ROUND_FLOOR) * krx_step(raw))
        rows = []
        for n, day in enumerate(days):
            close, previous = closes[n], closes[n + 1]
            high = max(close, previous) + krx_step(close)
            low = min(close, previous) - krx_step(close)
            volume = 1_000_000 + 1000 * n
            change = close - previous
            rows.append(
                {
                    "cur_prc": str(int(close)),
                    "trde_qty": str(volume),
                    "trde_prica": str(int(close * volume / 1_000_000)),
                    "dt": day.strftime("%Y%m%d"),
                    "open_pric": str(int(previous)),
                    "high_pric": str(int(high)),
                    "low_pric": str(int(low)),
                    "pred_pre": f"{int(change):+d}" if change else "0",
                    "pred_pre_sig": "2" if change > 0 else "5" if change < 0 else "3",
                    "trde_tern_rt": "+0.16",
                }
            )
        return rows

    def order_list(self, request: Request, fields: dict[str, str]) -> SimReply:
        """kt00007 계좌별주문체결내역상세요청: the day's orders (``ord_dt``), cancels as their own rows."""
        self._required(fields, "qry_tp", "stk_bond_tp", "sell_tp", "dmst_stex_tp")
        day = fields.get("ord_dt") or self.clock().strftime("%Y%m%d")
        with self.lock:
            rows = [
                self._row(o)
                for o in self.rows
                if o["ord_dt"] == day
                and fields.get("stk_cd", "").removeprefix("A") in ("", o["stk_cd"])
                and fields["sell_tp"] in ("0", "1" if o["side"] == "SELL" else "2")
                and fields["dmst_stex_tp"] in ("%", o["exchange"])
                and (fields["qry_tp"] != "3" or (o["qty"] - o["filled"] - o["cancelled"] > 0))
            ]
        if fields["qry_tp"] == "2":
            rows.reverse()
        page, headers = self._page(request, rows)
        return SimReply(200, answer("조회가 완료되었습니다", acnt_ord_cntr_prps_dtl=page), headers)

    @staticmethod
    def _row(o: dict[str, Any]) -> dict[str, Any]:
        """One kt00007 row as the guide's example shows it (``A``-prefixed code, 현금매수/현금매도,
        the order kind's name); a cancel is its own row naming the original (wording invented)."""
        side = "현금매수" if o["side"] == "BUY" else "현금매도"
        cancel = bool(o.get("cancel_row"))
        return {
            "ord_no": o["ord_no"],
            "stk_cd": f"A{o['stk_cd']}",
            "trde_tp": LIST_NAMES.get(o["trde_tp"], TRDE_TP_NAMES[o["trde_tp"]]),
            "crd_tp": "보통매매",
            "ord_qty": pad(o["qty"], 10),
            "ord_uv": pad(o["price"], 10),
            "cnfm_qty": pad(o["qty"] if cancel else 0, 10),
            "acpt_tp": "확인" if cancel else "접수",
            "rsrv_tp": "",
            "ord_tm": o["ord_tm"],
            "ori_ord": o["ori_ord"],
            "stk_nm": "",
            "io_tp_nm": f"{side}취소" if cancel else side,
            "loan_dt": "",
            "cntr_qty": pad(o["filled"], 10),
            "cntr_uv": pad(o["avg"].to_integral_value(rounding=ROUND_FLOOR), 10),
            "ord_remnq": pad(0 if cancel else o["qty"] - o["filled"] - o["cancelled"], 10),
            "comm_ord_tp": "REST API",
            "mdfy_cncl": "취소" if cancel else "",
            "cnfm_tm": o["ord_tm"] if cancel else "",
            "dmst_stex_tp": o["exchange"],
            "cond_uv": pad(o["stop"], 10),
        }

    def balance(self, request: Request, fields: dict[str, str]) -> SimReply:
        """kt00018 계좌평가잔고내역요청 (holdings; ``stk_cd`` carries the ``A`` prefix)."""
        self._required(fields, "qry_tp", "dmst_stex_tp")
        with self.lock:
            held = [(code, qty) for code, qty in sorted(self.holdings.items()) if qty > 0]
            rows = [self._holding_row(code, qty) for code, qty in held]
            total = sum((qty * self.prices.get(code, Decimal(0)) for code, qty in held), Decimal(0))
        page, headers = self._page(request, rows)
        body = answer(
            "조회가 완료되었습니다",
            tot_pur_amt=pad(total, 15),
            tot_evlt_amt=pad(total, 15),
            tot_evlt_pl=pad(0, 15),
            tot_prft_rt="0.00",
            prsm_dpst_aset_amt=pad(self.cash + total, 15),
            tot_loan_amt=pad(0, 15),
            tot_crd_loan_amt=pad(0, 15),
            tot_crd_ls_amt=pad(0, 15),
            acnt_evlt_remn_indv_tot=page,
        )
        return SimReply(200, body, headers)

    def _holding_row(self, code: str, qty: Decimal) -> dict[str, Any]:
        """One kt00018 row; bought at today's price here, so no P&L, fees or tax."""
        price = self.prices.get(code, Decimal(0))
        return {
            "stk_cd": f"A{code}",
            "stk_nm": "",
            "evltv_prft": pad(0, 15),
            "prft_rt": "0.00",
            "pur_pric": pad(price, 15),
            "pred_close_pric": pad(price, 12),
            "rmnd_qty": pad(qty, 15),
            "trde_able_qty": pad(qty - self._selling(code), 15),
            "cur_prc": pad(price, 12),
            "pred_buyq": pad(0, 15),
            "pred_sellq": pad(0, 15),
            "tdy_buyq": pad(0, 15),
            "tdy_sellq": pad(0, 15),
            "pur_amt": pad(qty * price, 15),
            "pur_cmsn": pad(0, 15),
            "evlt_amt": pad(qty * price, 15),
            "sell_cmsn": pad(0, 15),
            "tax": pad(0, 15),
            "sum_cmsn": pad(0, 15),
            "poss_rt": "0.00",
            "crd_tp": "00",
            "crd_tp_nm": "",
            "crd_loan_dt": "",
        }

    def _selling(self, code: str) -> Decimal:
        """Shares held back by resting sell orders."""
        return sum(
            (
                o["qty"] - o["filled"] - o["cancelled"]
                for o in self.orders
                if o["stk_cd"] == code and o["side"] == "SELL"
            ),
            Decimal(0),
        )

    def deposit(self, fields: dict[str, str]) -> dict[str, Any]:
        """kt00001 예수금상세현황요청 (a subset of its fields)."""
        self._required(fields, "qry_tp")
        with self.lock:
            resting = sum(
                (
                    (o["qty"] - o["filled"] - o["cancelled"]) * o["price"]
                    for o in self.orders
                    if o["side"] == "BUY"
                ),
                Decimal(0),
            )
            return answer(
                "조회가 완료되었습니다",
                entr=pad(self.cash, 15),
                ord_alow_amt=pad(self.cash - resting, 15),
                pymn_alow_amt=pad(self.cash - resting, 15),
                d2_entra=pad(self.cash, 15),
            )

    # --- WebSocket --------------------------------------------------------------------
    def start_ws(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the realtime socket in a daemon thread; returns its URL."""
        started = threading.Event()
        self._loop = asyncio.new_event_loop()
        stop_future: list[asyncio.Future[None]] = []

        async def main() -> None:
            async with serve(self._ws_handler, host, port) as server:
                self._ws_server = server
                stop_future.append(asyncio.get_running_loop().create_future())
                started.set()
                await stop_future[0]

        self._ws_stop = stop_future
        self._ws_thread = threading.Thread(
            target=self._loop.run_until_complete, args=(main(),), name="kiwoom-ws", daemon=True
        )
        self._ws_thread.start()
        started.wait(5)
        return self.ws_url

    @property
    def ws_url(self) -> str:
        assert self._ws_server is not None
        host, port = next(iter(self._ws_server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}{WS_PATH}"

    def stop(self) -> None:
        super().stop()
        if self._loop is not None and self._ws_thread is not None:
            loop, future = self._loop, self._ws_stop[0]
            loop.call_soon_threadsafe(future.set_result, None)
            self._ws_thread.join(5)
            self._loop = None

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        try:
            await ws.send(json.dumps(message, ensure_ascii=False))
        except ConnectionClosed:
            pass

    async def _ws_handler(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != WS_PATH:
            await ws.close(1008, "unknown path")
            return
        conn = id(ws)
        logged_in = False
        self.ws_connections.append(ws)
        self.ws_registrations[conn] = {}
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    await self._send(ws, {"trnm": "SYSTEM", "return_code": 1, "return_msg": "invalid json"})
                    continue
                self.ws_messages.append(message)
                trnm = message.get("trnm")
                if trnm == "PING":
                    self.ws_echoes.append(message)
                    continue
                if trnm == "LOGIN":
                    token = str(message.get("token", ""))
                    self.ws_logins.append(token)
                    if not self.token_valid(token):
                        await self._send(
                            ws,
                            {
                                "trnm": "LOGIN",
                                "return_code": TOKEN_INVALID[0],
                                "return_msg": TOKEN_INVALID[1],
                            },
                        )
                        await ws.close()
                        return
                    logged_in = True
                    await self._send(ws, {"trnm": "LOGIN", "return_code": 0, "return_msg": ""})
                    continue
                if not logged_in:
                    # The server closes a socket that registers before LOGIN (wording invented).
                    await self._send(ws, {"trnm": trnm, "return_code": 1, "return_msg": "LOGIN이 필요합니다"})
                    await ws.close()
                    return
                if trnm in ("REG", "REMOVE"):
                    await self._send(ws, self._register(conn, message))
                    continue
                await self._send(
                    ws, {"trnm": trnm, "return_code": 1, "return_msg": "알 수 없는 서비스명입니다"}
                )
        except ConnectionClosed:
            pass
        finally:
            self.ws_connections.remove(ws)
            self.ws_registrations.pop(conn, None)

    def _register(self, conn: int, message: dict[str, Any]) -> dict[str, Any]:
        trnm, grp_no = message["trnm"], str(message.get("grp_no", ""))
        groups = self.ws_registrations[conn]
        data = message.get("data")
        if not grp_no or not isinstance(data, list):
            return {"trnm": trnm, "return_code": 1, "return_msg": "grp_no/data를 확인하세요"}
        items = {str(i) for entry in data for i in entry.get("item", [])}
        types = {str(t) for entry in data for t in entry.get("type", [])}
        if trnm == "REMOVE":
            groups[grp_no] = groups.get(grp_no, set()) - items
            return {"trnm": trnm, "return_code": 0, "return_msg": ""}
        if not types <= {"0B", "00", "04", "0A", "0C", "0D"}:
            return {"trnm": trnm, "return_code": 1, "return_msg": "실시간 항목을 확인하세요"}
        current = groups.get(grp_no, set()) if str(message.get("refresh", "1")) == "1" else set()
        merged = current | items
        if len(merged) > self.max_items_per_group or (
            grp_no not in groups and len(groups) >= self.max_groups
        ):
            return {"trnm": trnm, "return_code": 1, "return_msg": "실시간 등록 한도를 초과하였습니다"}
        groups[grp_no] = merged
        return {"trnm": trnm, "return_code": 0, "return_msg": ""}

    def registered(self) -> list[set[str]]:
        """Items registered per open connection."""
        return [
            set().union(*groups.values()) if groups else set() for groups in self.ws_registrations.values()
        ]

    def push_tick(self, item: str, values: dict[str, str]) -> int:
        """Send a 0B 주식체결 REAL frame to every connection registered for ``item``; returns how many."""
        frame = {"trnm": "REAL", "data": [{"type": "0B", "name": "주식체결", "item": item, "values": values}]}

        async def send() -> int:
            sent = 0
            for ws in list(self.ws_connections):
                groups = self.ws_registrations.get(id(ws), {})
                if any(item in g for g in groups.values()):
                    await self._send(ws, frame)
                    sent += 1
            return sent

        return int(self._run(send()))

    def ping_all(self) -> None:
        async def send() -> None:
            for ws in list(self.ws_connections):
                await self._send(ws, {"trnm": "PING"})

        self._run(send())

    def drop_all(self) -> None:
        """Close every realtime connection (the venue drops the session)."""

        async def close() -> None:
            for ws in list(self.ws_connections):
                await ws.close()

        self._run(close())


def tick_values(
    price: int, change: int, rate: str, volume: int, ask: int, bid: int, at: str = "093001"
) -> dict[str, str]:
    """0B values in the guide's form: signed strings keyed by field id."""
    sign = "+" if change > 0 else "-" if change < 0 else ""
    return {
        "20": at,
        "10": f"{sign}{price}",
        "11": f"{sign}{abs(change)}" if change else "0",
        "12": f"{sign}{rate.lstrip('+-')}",
        "27": f"{sign}{ask}",
        "28": f"{sign}{bid}",
        "13": str(volume),
        "9081": "1",
    }


def main() -> None:
    """``python -m venuesim.kiwoom --port N``: REST on N, the realtime socket on N+1 (or --ws-port)."""
    parser = argparse.ArgumentParser(description="Local Kiwoom REST + WebSocket simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--ws-port", type=int, default=None)
    parser.add_argument("--mock", action="store_true", help="behave as 모의투자 (KRX only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    sim = KiwoomSim(mock=args.mock)
    url = sim.start(args.host, args.port)
    ws_url = sim.start_ws(args.host, args.ws_port if args.ws_port is not None else args.port + 1)
    print(f"kiwoom simulator listening on {url} (realtime {ws_url})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
