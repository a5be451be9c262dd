"""An Upbit-compatible REST subset (/v1): markets, ticker, accounts, orders, with its JWT auth.

Private calls carry ``Authorization: Bearer <JWT HS256>`` signed with the secret key; the
payload names the ``access_key``, a unique ``nonce`` and, when there are parameters, the
SHA512 ``query_hash`` of the unencoded query string (``query_hash_alg: SHA512``).
Orders follow Upbit's rules: bid/ask, ord_type limit | price (market buy by KRW amount) |
market (market sell by volume), a 5,000 KRW minimum total, and ``identifier`` as the
client's own order id (unique per account).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
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
                total += o["volume"] * o["price"]
            elif o["side"] == "ask" and currency == o["market"].split("-")[1]:
                total += o["volume"]
        return total

    def accounts(self, request: Request) -> list[dict[str, Any]]:
        self._query(request)
        with self.lock:
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
        last = self.prices[market]
        price = dec(body.get("price") or last)
        volume = dec(body["volume"]) if body.get("volume") else price / last
        total = price if ord_type == "price" else volume * price
        quote, base = market.split("-")
        if total < MIN_TOTAL[quote]:
            raise error(
                400,
                "under_min_total_bid" if side == "bid" else "under_min_total_ask",
                f"최소주문금액 이상으로 주문해주세요 ({fmt(MIN_TOTAL[quote])} {quote})",
            )
        with self.lock:
            identifier = body.get("identifier")
            if identifier and any(o["identifier"] == identifier for o in self.orders):
                raise error(400, "validation_error", "identifier가 중복되었습니다.")
            if side == "bid" and total > self.balances.get(quote, Decimal(0)) - self._locked(quote):
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
                "state": "wait",
                "identifier": identifier,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "trades": [],
                "seq": next(self._seq),
            }
            if ord_type in ("price", "market"):
                signed = volume if side == "bid" else -volume
                self.balances[base] = self.balances.get(base, Decimal(0)) + signed
                self.balances[quote] -= signed * last
                order.update(
                    executed=volume,
                    state="done",
                    trades=[
                        {
                            "market": market,
                            "uuid": str(uuid.uuid4()),
                            "price": fmt(last),
                            "volume": fmt(volume),
                            "funds": fmt(volume * last),
                            "side": side,
                        }
                    ],
                )
            self.orders.append(order)
            return self._render(order)

    def _render(self, o: dict[str, Any]) -> dict[str, Any]:
        body = {
            "uuid": o["uuid"],
            "side": o["side"],
            "ord_type": o["ord_type"],
            "price": fmt(o["price"]),
            "state": o["state"],
            "market": o["market"],
            "created_at": o["created_at"],
            "remaining_volume": fmt(o["volume"] - o["executed"]),
            "reserved_fee": "0",
            "remaining_fee": "0",
            "paid_fee": "0",
            "locked": "0",
            "executed_volume": fmt(o["executed"]),
            "trades_count": len(o["trades"]),
            "identifier": o["identifier"],
            "trades": o["trades"],
        }
        if o["ord_type"] != "price":
            body["volume"] = fmt(o["volume"])
        return body

    def _find(self, params: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            for o in self.orders:
                if (params.get("uuid") and o["uuid"] == params["uuid"]) or (
                    params.get("identifier") and o["identifier"] == params["identifier"]
                ):
                    return o
        raise error(404, "order_not_found", "주문을 찾지 못했습니다.")

    def order_get(self, request: Request) -> dict[str, Any]:
        return self._render(self._find(self._query(request)))

    def order_cancel(self, request: Request) -> dict[str, Any]:
        order = self._find(self._query(request))
        with self.lock:
            if order["state"] != "wait":
                raise error(400, "order_not_found", "주문을 찾지 못했습니다.")
            order["state"] = "cancel"
        return self._render(order)

    def order_list(self, request: Request, states: set[str]) -> list[dict[str, Any]]:
        params = self._query(request)
        with self.lock:
            return [
                self._render(o)
                for o in reversed(self.orders)
                if o["state"] in states and (not params.get("market") or o["market"] == params["market"])
            ]

    def orders_for(self, identifier: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.orders if o["identifier"] == identifier]


if __name__ == "__main__":
    run_from_command_line(UpbitSim, 9002)
