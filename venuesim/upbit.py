"""An Upbit-compatible REST subset (/v1): markets, ticker, accounts, orders, with its JWT auth.

Private calls carry ``Authorization: Bearer <JWT HS256>`` signed with the secret key; the
payload names the ``access_key``, a unique ``nonce`` and, when there are parameters, the
SHA512 ``query_hash`` of the unencoded query string (``query_hash_alg: SHA512``).
Orders follow Upbit's rules: bid/ask, ord_type limit | price (market buy by KRW amount) |
market (market sell by volume), a 5,000 KRW minimum total, a buy's fee locked on top of its
amount (``FEE_RATE``; a buy that cannot pay its fee too is ``insufficient_funds_bid``), prices on
the venue's price units
(invalid_price_bid / invalid_price_ask), and ``identifier`` as the client's own order id, unique
for the account whatever became of the earlier request (even a refused one).

A market order answers its creation ``wait`` with no trades; the fill shows at the next read, at
the best ask (buy) or bid (sell), one price unit off the last trade:
a market sell ends ``done``; a market buy spends its KRW amount in whole volume units (8
decimals) and ends ``cancel`` with ``executed_volume > 0`` when a remainder is returned, ``done``
when nothing is left (Upbit: a market buy ends either way). Times are KST (+09:00).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import unquote

from venuesim.core import (
    Fault,
    Request,
    Route,
    SimReply,
    SimServer,
    dec,
    fmt,
    hmac_sha256,
    now_ms,
    run_from_command_line,
)

MIN_TOTAL = {"KRW": Decimal("5000"), "BTC": Decimal("0.00005"), "USDT": Decimal("0.5")}
# Trading fee per quote currency. KRW: 0.05 % — tests/venues/recorded/upbit/
# 04_lookup_market_ask_done.json pays 3.697095875 KRW on 7,394.19 KRW of proceeds, and ccxt's
# upbit ``tradingFeesByQuoteCurrency`` says the same; BTC and USDT markets: ccxt's default
# Upbit trading fee (0.25 %), the only figure found. A buy locks its fee on top of its amount
# (01_placement_limit_bid.json: price 100 x volume 0.01 locks 1.0015 with reserved_fee 0.0015)
# and pays it in the quote currency; a sell reserves none and pays it out of its proceeds.
FEE_RATE = {"KRW": Decimal("0.0005"), "BTC": Decimal("0.0025"), "USDT": Decimal("0.0025")}
KST = timezone(timedelta(hours=9))
VOLUME_UNIT = Decimal("0.00000001")
# Price units per quote currency, (lower bound, unit) lowest first. KRW: "원화(KRW) 마켓 주문 가격
# 단위" https://docs.upbit.com/kr/docs/krw-market-info (2025-07-31 policy; below 100 KRW the bands
# of https://docs.upbit.com/v1.5.2/changelog/krw_tick_unit_change); USDT:
# https://docs.upbit.com/docs/usdt-market-info; BTC: https://docs.upbit.com/docs/btc-market-info.
_SUB_ONE = [
    ("0", "0.00000001"),
    ("0.0001", "0.0000001"),
    ("0.001", "0.000001"),
    ("0.01", "0.00001"),
    ("0.1", "0.0001"),
    ("1", "0.001"),
]
PRICE_UNITS: dict[str, list[tuple[Decimal, Decimal]]] = {
    "KRW": [
        (dec(a), dec(b))
        for a, b in [
            *_SUB_ONE,
            ("10", "0.01"),
            ("100", "1"),
            ("5000", "5"),
            ("10000", "10"),
            ("50000", "50"),
            ("100000", "100"),
            ("500000", "500"),
            ("1000000", "1000"),
        ]
    ],
    "USDT": [(dec(a), dec(b)) for a, b in [*_SUB_ONE, ("10", "0.01")]],
    "BTC": [(dec("0"), dec("0.00000001"))],
}
# The venue's refusal of an off-unit price (https://docs.upbit.com/kr/changelog/orderbook-instruments).
INVALID_PRICE_MESSAGE = "주문가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요."


def price_unit(quote: str, price: Decimal) -> Decimal:
    unit = PRICE_UNITS[quote][0][1]
    for lower, band_unit in PRICE_UNITS[quote]:
        if price >= lower:
            unit = band_unit
    return unit


def error(status: int, name: str, message: str) -> SimReply:
    return SimReply(status, {"error": {"name": name, "message": message}})


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class UpbitSim(SimServer):
    name = "upbit"

    def __init__(self, access_key: str = "sim-access", secret_key: str = "sim-secret") -> None:
        self.keys = {access_key: secret_key}
        self.prices: dict[str, Decimal] = {
            "KRW-BTC": dec("90000000"),
            "KRW-ETH": dec("4000000"),
            "KRW-XRP": dec("800"),
            "USDT-BTC": dec("50000"),
        }
        self.balances: dict[str, Decimal] = {"KRW": dec("10000000"), "BTC": dec("0.1"), "USDT": dec("10000")}
        self.orders: list[dict[str, Any]] = []
        self.nonces: set[str] = set()
        self.identifiers: set[str] = set()
        self._seq = itertools.count(1)
        super().__init__()

    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return SimReply(500, {"error": {"name": "server_error", "message": "Internal Server Error"}})
        if fault.kind == "rate_limit":
            return SimReply(429, b"Too many API requests.")
        if fault.kind == "reject":
            return error(400, "insufficient_funds_bid", fault.message or "주문가능한 금액(KRW)이 부족합니다.")
        raise ValueError(fault.kind)

    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/v1/market/all"): self.market_all,
            ("GET", "/v1/ticker"): self.ticker,
            ("GET", "/v1/accounts"): self.accounts,
            ("POST", "/v1/orders"): self.order_create,
            ("GET", "/v1/order"): self.order_get,
            ("DELETE", "/v1/order"): self.order_cancel,
            ("GET", "/v1/orders/open"): lambda r: self.order_list(r, {"wait", "watch"}),
            ("GET", "/v1/orders/closed"): lambda r: self.order_list(r, {"done", "cancel"}),
        }

    # --- auth -------------------------------------------------------------------------
    def _auth(self, request: Request, params: dict[str, Any], raw: str) -> None:
        header = request.header("authorization")
        if not header.startswith("Bearer "):
            raise error(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.")
        try:
            head_b64, payload_b64, signature_b64 = header[7:].split(".")
            payload = json.loads(_b64decode(payload_b64))
            head = json.loads(_b64decode(head_b64))
        except ValueError as exc:
            raise error(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.") from exc
        secret = self.keys.get(payload.get("access_key", ""))
        if secret is None:
            raise error(401, "invalid_access_key", "잘못된 엑세스 키입니다.")
        expected = hmac_sha256(secret, f"{head_b64}.{payload_b64}")
        if head.get("alg") != "HS256" or not hmac.compare_digest(expected, _b64decode(signature_b64)):
            raise error(401, "jwt_verification", "Jwt 토큰 검증에 실패했습니다.")
        nonce = str(payload.get("nonce", ""))
        with self.lock:
            if not nonce or nonce in self.nonces:
                raise error(401, "nonce_used", "이미 요청한 nonce값이 다시 사용되었습니다.")
            self.nonces.add(nonce)
        if params:
            digest = hashlib.sha512(raw.encode()).hexdigest()
            if payload.get("query_hash") != digest or payload.get("query_hash_alg", "SHA512") != "SHA512":
                raise error(401, "invalid_query_payload", "Jwt 토큰의 쿼리 정보가 일치하지 않습니다.")

    def _query(self, request: Request) -> dict[str, str]:
        self._auth(request, request.query, unquote(request.raw_query))
        return request.query

    # --- public -----------------------------------------------------------------------
    def market_all(self, request: Request) -> list[dict[str, Any]]:
        names = {"BTC": ("비트코인", "Bitcoin"), "ETH": ("이더리움", "Ethereum"), "XRP": ("리플", "XRP")}
        return [
            {"market": m, "korean_name": names[m.split("-")[1]][0], "english_name": names[m.split("-")[1]][1]}
            for m in self.prices
        ]

    def ticker(self, request: Request) -> list[dict[str, Any]]:
        now = now_ms()
        rows = []
        for market in request.query.get("markets", "").split(","):
            if market not in self.prices:
                raise error(404, "Code not found", "Code not found")
            price = float(self.prices[market])
            rows.append(
                {
                    "market": market,
                    "trade_date": "",
                    "trade_time": "",
                    "trade_timestamp": now,
                    "opening_price": price,
                    "high_price": price,
                    "low_price": price,
                    "trade_price": price,
                    "prev_closing_price": price,
                    "change": "EVEN",
                    "change_price": 0.0,
                    "change_rate": 0.0,
                    "signed_change_price": 0.0,
                    "signed_change_rate": 0.0,
                    "trade_volume": 0.1,
                    "acc_trade_price": 1.0,
                    "acc_trade_price_24h": 1.0,
                    "acc_trade_volume": 1.0,
                    "acc_trade_volume_24h": 1.0,
                    "timestamp": now,
                }
            )
        return rows

    # --- private ----------------------------------------------------------------------
    def _locked(self, currency: str) -> Decimal:
        total = Decimal(0)
        for o in self.orders:
            if o["state"] != "wait":
                continue
            if o["side"] == "bid" and currency == o["market"].split("-")[0]:
                total += self._locked_by(o)
            elif o["side"] == "ask" and currency == o["market"].split("-")[1]:
                total += o["volume"] - o["executed"]
        return total

    def accounts(self, request: Request) -> list[dict[str, Any]]:
        self._query(request)
        with self.lock:
            self._settle_all()
            rows = []
            for c, v in self.balances.items():
                locked = self._locked(c)
                rows.append(
                    {
                        "currency": c,
                        "balance": fmt(v - locked),
                        "locked": fmt(locked),
                        "avg_buy_price": "0",
                        "avg_buy_price_modified": False,
                        "unit_currency": "KRW",
                    }
                )
            return rows

    def order_create(self, request: Request) -> dict[str, Any]:
        body = request.json()
        raw = "&".join(f"{k}={v}" for k, v in body.items())
        self._auth(request, body, raw)
        identifier = body.get("identifier")
        with self.lock:
            # Unique for the account whatever became of the earlier request, a refused one too.
            if identifier and identifier in self.identifiers:
                raise error(400, "validation_error", "identifier가 중복되었습니다.")
            if identifier:
                self.identifiers.add(identifier)
        market, side, ord_type = body.get("market", ""), body.get("side", ""), body.get("ord_type", "")
        if market not in self.prices:
            raise error(400, "market_does_not_exist", "마켓 정보가 존재하지 않습니다.")
        if side not in ("bid", "ask") or ord_type not in ("limit", "price", "market"):
            raise error(400, "validation_error", "잘못된 파라미터입니다.")
        if (
            (ord_type == "price" and (side != "bid" or not body.get("price") or body.get("volume")))
            or (ord_type == "market" and (side != "ask" or not body.get("volume") or body.get("price")))
            or (ord_type == "limit" and not (body.get("price") and body.get("volume")))
        ):
            raise error(400, "validation_error", "잘못된 파라미터입니다.")
        quote, base = market.split("-")
        last = self.prices[market]
        price = dec(body.get("price") or last)
        if ord_type == "limit" and price % price_unit(quote, price) != 0:
            raise error(
                400, "invalid_price_bid" if side == "bid" else "invalid_price_ask", INVALID_PRICE_MESSAGE
            )
        volume = dec(body["volume"]) if body.get("volume") else Decimal(0)
        total = price if ord_type == "price" else volume * (price if ord_type == "limit" else last)
        if total < MIN_TOTAL[quote]:
            raise error(
                400,
                "under_min_total_bid" if side == "bid" else "under_min_total_ask",
                f"최소주문금액 이상으로 주문해주세요 ({fmt(MIN_TOTAL[quote])} {quote})",
            )
        with self.lock:
            needed = total + total * FEE_RATE[quote] if side == "bid" else total
            if side == "bid" and needed > self.balances.get(quote, Decimal(0)) - self._locked(quote):
                raise error(400, "insufficient_funds_bid", f"주문가능한 금액({quote})이 부족합니다.")
            if side == "ask" and volume > self.balances.get(base, Decimal(0)) - self._locked(base):
                raise error(400, "insufficient_funds_ask", f"주문가능한 금액({base})이 부족합니다.")
            order = {
                "uuid": str(uuid.uuid4()),
                "side": side,
                "ord_type": ord_type,
                "price": price,
                "market": market,
                "volume": volume,
                "executed": Decimal(0),
                "funds": Decimal(0),
                "fee_rate": FEE_RATE[quote],
                "paid_fee": Decimal(0),
                "state": "wait",
                "identifier": identifier,
                "created_at": datetime.now(KST).isoformat(timespec="seconds"),
                "trades": [],
                "seq": next(self._seq),
                # a market order fills at the next read: its creation answer has no trades
                "unsettled": ord_type in ("price", "market"),
            }
            self.orders.append(order)
            return self._render(order)

    def _settle_all(self) -> None:
        for o in self.orders:
            if o["unsettled"]:
                self._settle(o)

    def _settle(self, o: dict[str, Any]) -> None:
        """Fill a market order at the last price: a sell entirely (``done``); a buy spends its
        KRW amount in whole volume units and ends ``cancel`` when the remainder is returned,
        ``done`` when nothing is left."""
        o["unsettled"] = False
        quote, base = o["market"].split("-")
        # a market order takes the book: a buy fills at the best ask, one price unit above the
        # last trade, a sell at the best bid, one unit below
        unit = price_unit(quote, self.prices[o["market"]])
        last = self.prices[o["market"]] + (unit if o["side"] == "bid" else -unit)
        if o["ord_type"] == "price":
            volume = (o["price"] / last).quantize(VOLUME_UNIT, rounding=ROUND_DOWN)
        else:
            volume = o["volume"]
        funds = volume * last
        fee = funds * o["fee_rate"]
        signed = volume if o["side"] == "bid" else -volume
        self.balances[base] = self.balances.get(base, Decimal(0)) + signed
        self.balances[quote] -= signed * last + fee
        o.update(executed=volume, funds=funds, paid_fee=fee)
        o["state"] = "cancel" if o["ord_type"] == "price" and funds < o["price"] else "done"
        o["trades"] = [
            {
                "market": o["market"],
                "uuid": str(uuid.uuid4()),
                "price": fmt(last),
                "volume": fmt(volume),
                "funds": fmt(funds),
                "trend": "up" if o["side"] == "bid" else "down",
                "created_at": o["created_at"],
                "side": o["side"],
            }
        ]

    def _render(self, o: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uuid": o["uuid"],
            "side": o["side"],
            "ord_type": o["ord_type"],
        }
        if o["ord_type"] != "market":
            body["price"] = fmt(o["price"])
        body.update(
            {
                "state": o["state"],
                "market": o["market"],
                "created_at": o["created_at"],
            }
        )
        if o["ord_type"] != "price":
            body["volume"] = fmt(o["volume"])
            body["remaining_volume"] = fmt(o["volume"] - o["executed"]) if o["state"] == "wait" else "0"
        else:
            body["remaining_volume"] = None
        body.update(
            {
                "reserved_fee": fmt(self._reserved_fee(o)),
                "remaining_fee": fmt(self._reserved_fee(o) - o["paid_fee"]) if o["state"] == "wait" else "0",
                "paid_fee": fmt(o["paid_fee"]),
                "locked": fmt(self._locked_by(o)),
                # self-match prevention (v1.5.8): nothing is ever prevented here
                "prevented_volume": "0",
                "prevented_locked": "0",
                "executed_volume": fmt(o["executed"]),
                "executed_funds": fmt(o["funds"]),
                "trades_count": len(o["trades"]),
            }
        )
        if o["identifier"]:
            body["identifier"] = o["identifier"]
        if o["trades"]:
            body["trades"] = o["trades"]
        return body

    @staticmethod
    def _reserved_fee(o: dict[str, Any]) -> Decimal:
        """The fee a buy sets aside with its amount (a sell's is taken from its proceeds)."""
        if o["side"] == "ask":
            return Decimal(0)
        amount = o["price"] if o["ord_type"] == "price" else o["volume"] * o["price"]
        return amount * o["fee_rate"]

    @classmethod
    def _locked_by(cls, o: dict[str, Any]) -> Decimal:
        """What a waiting order holds: a sell its volume left; a buy its amount left (a market
        buy, ord_type price, its KRW amount; a limit buy volume x price) with the fee on it."""
        if o["state"] != "wait":
            return Decimal(0)
        if o["side"] == "ask":
            return o["volume"] - o["executed"]
        amount = o["price"] if o["ord_type"] == "price" else (o["volume"] - o["executed"]) * o["price"]
        return amount + amount * o["fee_rate"]

    def _find(self, params: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            for o in self.orders:
                if (params.get("uuid") and o["uuid"] == params["uuid"]) or (
                    params.get("identifier") and o["identifier"] == params["identifier"]
                ):
                    if o["unsettled"]:
                        self._settle(o)
                    return o
        raise error(404, "order_not_found", "주문을 찾지 못했습니다.")

    def order_get(self, request: Request) -> dict[str, Any]:
        order = self._find(self._query(request))
        with self.lock:
            return self._render(order)

    def order_cancel(self, request: Request) -> dict[str, Any]:
        order = self._find(self._query(request))
        with self.lock:
            if order["state"] != "wait":
                raise error(400, "order_not_found", "주문을 찾지 못했습니다.")
            answer = self._render(order)  # the answer shows the order as it was (still wait)
            order["state"] = "cancel"
        return answer

    def order_list(self, request: Request, states: set[str]) -> list[dict[str, Any]]:
        params = self._query(request)
        with self.lock:
            self._settle_all()
            rows = []
            for o in reversed(self.orders):
                if o["state"] in states and (not params.get("market") or o["market"] == params["market"]):
                    row = self._render(o)
                    row.pop("trades", None)  # the lists carry no trades
                    rows.append(row)
            return rows

    def orders_for(self, identifier: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.orders if o["identifier"] == identifier]


if __name__ == "__main__":
    run_from_command_line(UpbitSim, 9002)
