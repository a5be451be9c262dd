"""An OKX v5-compatible REST subset (/api/v5): spot and USDT-margined perpetual swaps, enough
for ccxt's ``okx`` class.

Private calls are checked the way OKX does: ``OK-ACCESS-KEY`` names the key,
``OK-ACCESS-PASSPHRASE`` must be the key's passphrase, ``OK-ACCESS-TIMESTAMP`` is an ISO time
within 30 s and ``OK-ACCESS-SIGN`` is base64(HMAC-SHA256(secret, timestamp + METHOD +
requestPath[?query] + body)). Every answer is OKX's envelope ``{code, msg, data: [...]}``; order
endpoints answer per order with ``sCode``/``sMsg`` (top ``code`` "1" when every order failed).

One unified trading account in net position mode: spot balances and the swap margin share the
cash balances. Orders pass the instrument rules (``lotSz``, ``minSz``, ``tickSz``; swap sizes in
contracts of ``ctVal``) and the balances. MARKET orders fill at once at ``prices``; LIMIT orders
and trigger (algo) orders rest until cancelled.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from venuesim.core import (
    Fault,
    OrderFailure,
    Request,
    Route,
    SimReply,
    SimServer,
    dec,
    fmt,
    hmac_sha256,
    net_fill,
    now_ms,
    run_from_command_line,
)

PREFIX = "/api/v5"
CLIENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")
# Injected "reject" faults: sCode -> sMsg (fault.message may name one of these codes).
REJECTS = {
    "51008": "Order failed. Insufficient USDT balance in account.",
    "51016": "Duplicated clOrdId",
    "51020": "Order amount should be greater than the min available amount.",
    "51001": "Instrument ID does not exist.",
    "51121": "Order quantity must be a multiple of the lot size.",
}


@dataclass(frozen=True)
class Instrument:
    inst_type: str  # SPOT | SWAP
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_size: Decimal
    ct_val: Decimal = Decimal("1")  # base per contract (SWAP)

    @property
    def settle(self) -> str:
        return self.quote if self.inst_type == "SWAP" else ""


def envelope(data: list[dict[str, Any]], code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def failure(status: int, code: str, msg: str) -> SimReply:
    return SimReply(status, envelope([], code, msg))


class OkxSim(SimServer):
    name = "okx"

    def __init__(
        self, api_key: str = "sim-key", api_secret: str = "sim-secret", passphrase: str = "sim-pass"
    ) -> None:
        self.keys = {api_key: (api_secret, passphrase)}
        self.prices: dict[str, Decimal] = {"BTC": dec("100000"), "ETH": dec("3000"), "SOL": dec("150")}
        self.instruments: dict[str, Instrument] = {
            "BTC-USDT": Instrument("SPOT", "BTC", "USDT", dec("0.1"), dec("0.00000001"), dec("0.00001")),
            "ETH-USDT": Instrument("SPOT", "ETH", "USDT", dec("0.01"), dec("0.000001"), dec("0.0001")),
            "SOL-USDT": Instrument("SPOT", "SOL", "USDT", dec("0.01"), dec("0.000001"), dec("0.01")),
            "BTC-USDT-SWAP": Instrument(
                "SWAP", "BTC", "USDT", dec("0.1"), dec("0.01"), dec("0.01"), ct_val=dec("0.01")
            ),
            "ETH-USDT-SWAP": Instrument(
                "SWAP", "ETH", "USDT", dec("0.01"), dec("0.01"), dec("0.01"), ct_val=dec("0.1")
            ),
        }
        # Cash balances of the unified trading account (spot holdings and swap margin).
        self.balances: dict[str, Decimal] = {"USDT": dec("10000"), "BTC": dec("0.5"), "ETH": dec("2")}
        self.positions: dict[str, Decimal] = {}  # instId -> signed contracts (net mode)
        self.entry_prices: dict[str, Decimal] = {}
        self.leverage: dict[tuple[str, str], int] = {}  # (instId, mgnMode) -> lever
        self.default_leverage = 10
        self.orders: list[dict[str, Any]] = []  # regular and algo (trigger) orders
        self._ids = itertools.count(612_000_000_000_000_001)
        # OKX: a cancel answered sCode 0 "only means that your cancellation request has been
        # accepted" (POST /api/v5/trade/cancel-order). With cancel_lag, an accepted cancel
        # leaves the order live until a test calls settle_cancels(); without, it applies at once.
        self.cancel_lag = False
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return failure(500, "50026", "System error. Try again later.")
        if fault.kind == "rate_limit":
            return failure(429, "50011", "Too Many Requests")
        if fault.kind == "auth":
            return failure(401, "50113", "Invalid Sign")
        if fault.kind == "reject":
            code = fault.message if fault.message in REJECTS else "51008"
            message = REJECTS[code] if fault.message in REJECTS or not fault.message else fault.message
            body = request.json() if request.body else {}
            first = body[0] if isinstance(body, list) and body else body
            row = {
                "ordId": "",
                "clOrdId": first.get("clOrdId", "") if isinstance(first, dict) else "",
                "tag": "",
                "ts": str(now_ms()),
                "sCode": code,
                "sMsg": message,
            }
            return SimReply(200, {**envelope([row], "1", "All operations failed"), **self._times()})
        raise ValueError(fault.kind)

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        p = PREFIX
        return {
            ("GET", f"{p}/public/time"): lambda r: envelope([{"ts": str(now_ms())}]),
            ("GET", f"{p}/public/instruments"): self.public_instruments,
            ("GET", f"{p}/market/ticker"): self.market_ticker,
            ("GET", f"{p}/market/tickers"): self.market_tickers,
            ("GET", f"{p}/asset/currencies"): self.asset_currencies,
            ("GET", f"{p}/account/config"): self.account_config,
            ("GET", f"{p}/account/balance"): self.account_balance,
            ("GET", f"{p}/account/positions"): self.account_positions,
            ("POST", f"{p}/account/set-leverage"): self.set_leverage,
            ("POST", f"{p}/trade/order"): self.trade_order,
            ("POST", f"{p}/trade/batch-orders"): self.trade_batch_orders,
            ("GET", f"{p}/trade/order"): self.order_get,
            ("GET", f"{p}/trade/orders-pending"): self.orders_pending,
            ("GET", f"{p}/trade/orders-history"): self.orders_history,
            ("POST", f"{p}/trade/cancel-order"): self.cancel_order,
            ("POST", f"{p}/trade/cancel-batch-orders"): self.cancel_batch_orders,
            ("POST", f"{p}/trade/order-algo"): self.order_algo,
            ("GET", f"{p}/trade/order-algo"): self.order_algo_get,
            ("GET", f"{p}/trade/orders-algo-pending"): self.orders_algo_pending,
            ("GET", f"{p}/trade/orders-algo-history"): self.orders_algo_history,
            ("POST", f"{p}/trade/cancel-algos"): self.cancel_algos,
        }

    # --- auth -------------------------------------------------------------------------
    def _auth(self, request: Request) -> Any:
        """Verify OKX's four headers; returns the parameters (query for GET, JSON body else)."""
        key = request.header("OK-ACCESS-KEY")
        if not key:
            raise failure(401, "50103", "Request header OK-ACCESS-KEY cannot be empty.")
        credentials = self.keys.get(key)
        if credentials is None:
            raise failure(401, "50111", "Invalid OK-ACCESS-KEY.")
        secret, passphrase = credentials
        stamp = request.header("OK-ACCESS-TIMESTAMP")
        if not stamp:
            raise failure(401, "50107", "Request header OK-ACCESS-TIMESTAMP cannot be empty.")
        try:
            sent = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise failure(401, "50112", "Invalid OK-ACCESS-TIMESTAMP.") from exc
        if abs(time.time() - sent) > 30:
            raise failure(401, "50102", "Timestamp request expired.")
        given = request.header("OK-ACCESS-PASSPHRASE")
        if not given:
            raise failure(401, "50104", "Request header OK-ACCESS-PASSPHRASE cannot be empty.")
        if not hmac.compare_digest(given, passphrase):
            raise failure(401, "50105", "OK-ACCESS-PASSPHRASE incorrect.")
        path = request.path + (f"?{request.raw_query}" if request.raw_query else "")
        prehash = stamp + request.method + path + request.body.decode()
        expected = base64.b64encode(hmac_sha256(secret, prehash))
        if not hmac.compare_digest(expected.decode(), request.header("OK-ACCESS-SIGN")):
            raise failure(401, "50113", "Invalid Sign")
        if request.method == "GET":
            return request.query
        if "application/json" not in request.header("content-type"):
            raise failure(400, "50006", "Invalid Content-Type, please use application/json format")
        return request.json()

    @staticmethod
    def _times() -> dict[str, str]:
        now = str(int(time.time() * 1_000_000))
        return {"inTime": now, "outTime": now}

    # --- public -----------------------------------------------------------------------
    def _instrument_row(self, inst_id: str, inst: Instrument) -> dict[str, Any]:
        swap = inst.inst_type == "SWAP"
        return {
            "instType": inst.inst_type,
            "instId": inst_id,
            "instFamily": f"{inst.base}-{inst.quote}" if swap else "",
            "uly": f"{inst.base}-{inst.quote}" if swap else "",
            "baseCcy": "" if swap else inst.base,
            "quoteCcy": "" if swap else inst.quote,
            "settleCcy": inst.settle,
            "ctVal": fmt(inst.ct_val) if swap else "",
            "ctMult": "1" if swap else "",
            "ctValCcy": inst.base if swap else "",
            "ctType": "linear" if swap else "",
            "category": "1",
            "alias": "",
            "expTime": "",
            "listTime": "1606468572000",
            "lever": "100" if swap else "10",
            "tickSz": fmt(inst.tick),
            "lotSz": fmt(inst.lot),
            "minSz": fmt(inst.min_size),
            "maxLmtSz": "100000000",
            "maxMktSz": "1000000",
            "maxLmtAmt": "20000000",
            "maxMktAmt": "1000000",
            "state": "live",
            "optType": "",
            "stk": "",
        }

    def public_instruments(self, request: Request) -> dict[str, Any]:
        inst_type = request.query.get("instType", "")
        if not inst_type:
            raise failure(400, "50014", "Parameter instType can not be empty.")
        wanted = request.query.get("instId")
        return envelope(
            [
                self._instrument_row(inst_id, inst)
                for inst_id, inst in self.instruments.items()
                if inst.inst_type == inst_type and (not wanted or wanted == inst_id)
            ]
        )

    def _ticker_row(self, inst_id: str) -> dict[str, Any]:
        inst = self.instruments[inst_id]
        price = fmt(self.prices[inst.base])
        return {
            "instType": inst.inst_type,
            "instId": inst_id,
            "last": price,
            "lastSz": "0.1",
            "askPx": price,
            "askSz": "1",
            "bidPx": price,
            "bidSz": "1",
            "open24h": price,
            "high24h": price,
            "low24h": price,
            "volCcy24h": "100",
            "vol24h": "1",
            "sodUtc0": price,
            "sodUtc8": price,
            "ts": str(now_ms()),
        }

    def market_ticker(self, request: Request) -> dict[str, Any]:
        inst_id = request.query.get("instId", "")
        if inst_id not in self.instruments:
            raise failure(200, "51001", "Instrument ID does not exist.")
        return envelope([self._ticker_row(inst_id)])

    def market_tickers(self, request: Request) -> dict[str, Any]:
        inst_type = request.query.get("instType", "")
        return envelope(
            [self._ticker_row(i) for i, inst in self.instruments.items() if inst.inst_type == inst_type]
        )

    # --- account ----------------------------------------------------------------------
    def asset_currencies(self, request: Request) -> dict[str, Any]:
        self._auth(request)
        names = {"BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "USDT": "Tether"}
        return envelope(
            [
                {
                    "ccy": ccy,
                    "name": name,
                    "chain": f"{ccy}-{ccy if ccy != 'USDT' else 'TRC20'}",
                    "canDep": True,
                    "canWd": True,
                    "canInternal": True,
                    "minWd": "0.001",
                    "maxWd": "1000",
                    "wdTickSz": "8",
                    "minFee": "0.0001",
                    "maxFee": "0.001",
                    "mainNet": True,
                }
                for ccy, name in names.items()
            ]
        )

    def account_config(self, request: Request) -> dict[str, Any]:
        self._auth(request)
        return envelope(
            [
                {
                    "uid": "44705892343619584",
                    "mainUid": "44705892343619584",
                    "acctLv": "2",
                    "posMode": "net_mode",
                    "autoLoan": False,
                    "greeksType": "PA",
                    "level": "Lv1",
                    "levelTmp": "",
                    "ctIsoMode": "automatic",
                    "mgnIsoMode": "automatic",
                    "label": "sim",
                    "perm": "read_only,trade",
                }
            ]
        )

    def _lever(self, inst_id: str, mode: str) -> int:
        return self.leverage.get((inst_id, mode), self.default_leverage)

    def _upl(self, inst_id: str) -> Decimal:
        inst = self.instruments[inst_id]
        contracts = self.positions.get(inst_id, Decimal("0"))
        price = self.prices[inst.base]
        return (price - self.entry_prices.get(inst_id, price)) * contracts * inst.ct_val

    def _frozen(self, ccy: str) -> Decimal:
        """What resting orders and open positions hold of ``ccy``."""
        frozen = Decimal("0")
        for order in self.orders:
            if order["algo"] or order["state"] not in ("live", "partially_filled"):
                continue
            inst = self.instruments[order["instId"]]
            left = order["sz"] - order["filled"]
            if inst.inst_type == "SPOT":
                if order["side"] == "buy" and ccy == inst.quote:
                    frozen += left * order["px"]
                elif order["side"] == "sell" and ccy == inst.base:
                    frozen += left
            elif ccy == inst.settle and not order["reduceOnly"]:
                frozen += left * inst.ct_val * order["px"] / order["lever"]
        for inst_id, contracts in self.positions.items():
            inst = self.instruments[inst_id]
            if contracts and ccy == inst.settle:
                frozen += (
                    abs(contracts) * inst.ct_val * self.prices[inst.base] / self._lever(inst_id, "cross")
                )
        return frozen

    def _equity(self, ccy: str) -> Decimal:
        upl = sum((self._upl(i) for i in self.positions if self.instruments[i].settle == ccy), Decimal("0"))
        return self.balances.get(ccy, Decimal("0")) + upl

    def _available(self, ccy: str) -> Decimal:
        return self._equity(ccy) - self._frozen(ccy)

    def account_balance(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        wanted = set(filter(None, params.get("ccy", "").split(",")))
        with self.lock:
            details = []
            total_usd = Decimal("0")
            for ccy, cash in self.balances.items():
                if wanted and ccy not in wanted:
                    continue
                eq = self._equity(ccy)
                frozen = self._frozen(ccy)
                usd = eq * (self.prices.get(ccy) or Decimal("1"))
                total_usd += usd
                details.append(
                    {
                        "ccy": ccy,
                        "cashBal": fmt(cash),
                        "eq": fmt(eq),
                        "eqUsd": fmt(usd),
                        "availBal": fmt(cash - frozen),
                        "availEq": fmt(eq - frozen),
                        "frozenBal": fmt(frozen),
                        "ordFrozen": fmt(frozen),
                        "upl": fmt(eq - cash),
                        "disEq": fmt(usd),
                        "uTime": str(now_ms()),
                    }
                )
        return envelope(
            [{"totalEq": fmt(total_usd), "adjEq": fmt(total_usd), "details": details, "uTime": str(now_ms())}]
        )

    def _position_row(self, inst_id: str) -> dict[str, Any]:
        inst = self.instruments[inst_id]
        contracts = self.positions[inst_id]
        price = self.prices[inst.base]
        lever = self._lever(inst_id, "cross")
        notional = abs(contracts) * inst.ct_val * price
        return {
            "instType": "SWAP",
            "instId": inst_id,
            "posId": str(abs(hash(inst_id)) % 10**18),
            "posSide": "net",
            "pos": fmt(contracts),
            "posCcy": "",
            "availPos": fmt(abs(contracts)),
            "avgPx": fmt(self.entry_prices.get(inst_id, price)),
            "markPx": fmt(price),
            "last": fmt(price),
            "upl": fmt(self._upl(inst_id)),
            "uplRatio": "0",
            "lever": str(lever),
            "mgnMode": "cross",
            "margin": "",
            "imr": fmt(notional / lever),
            "mmr": fmt(notional * Decimal("0.004")),
            "mgnRatio": "100",
            "notionalUsd": fmt(notional),
            "liqPx": "",
            "ccy": inst.settle,
            "cTime": str(now_ms()),
            "uTime": str(now_ms()),
        }

    def account_positions(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        wanted = set(filter(None, params.get("instId", "").split(",")))
        inst_type = params.get("instType", "")
        with self.lock:
            rows = [
                self._position_row(inst_id)
                for inst_id, contracts in self.positions.items()
                if contracts
                and (not wanted or inst_id in wanted)
                and (not inst_type or self.instruments[inst_id].inst_type == inst_type)
            ]
        return envelope(rows)

    def set_leverage(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        inst_id = str(params.get("instId", ""))
        mode = str(params.get("mgnMode", ""))
        inst = self.instruments.get(inst_id)
        if inst is None or inst.inst_type != "SWAP":
            raise failure(200, "51001", "Instrument ID does not exist.")
        if mode not in ("cross", "isolated"):
            raise failure(400, "51000", "Parameter mgnMode error")
        try:
            lever = int(str(params.get("lever", "")))
        except ValueError as exc:
            raise failure(400, "51000", "Parameter lever error") from exc
        if not 1 <= lever <= 100:
            raise failure(200, "59102", "Leverage exceeds the maximum leverage. Adjust the leverage.")
        with self.lock:
            self.leverage[(inst_id, mode)] = lever
        return envelope([{"lever": str(lever), "mgnMode": mode, "instId": inst_id, "posSide": "net"}])

    # --- orders -----------------------------------------------------------------------
    def _decimal(self, params: dict[str, Any], name: str) -> Decimal:
        try:
            value = Decimal(str(params.get(name, "")))
        except InvalidOperation as exc:
            raise OrderFailure("51000", f"Parameter {name} error") from exc
        if not value.is_finite() or value <= 0:
            raise OrderFailure("51000", f"Parameter {name} error")
        return value

    def _validate(self, params: dict[str, Any], algo: bool) -> dict[str, Any]:
        """Check one order request against the instrument and the account; returns the order."""
        inst_id = str(params.get("instId", ""))
        inst = self.instruments.get(inst_id)
        if inst is None:
            raise OrderFailure("51001", "Instrument ID does not exist.")
        side = params.get("side")
        if side not in ("buy", "sell"):
            raise OrderFailure("51000", "Parameter side error")
        ord_type = params.get("ordType")
        if ord_type not in (("trigger",) if algo else ("market", "limit", "post_only", "fok", "ioc")):
            raise OrderFailure("51000", "Parameter ordType error")
        td_mode = params.get("tdMode")
        allowed_modes = ("cash",) if inst.inst_type == "SPOT" else ("cross", "isolated")
        if td_mode not in allowed_modes:
            # OKX's recorded answer carries the trailing space
            raise OrderFailure("51000", "Parameter tdMode error ")
        client_key = "algoClOrdId" if algo else "clOrdId"
        client_id = str(params.get(client_key) or "")
        if client_id and not CLIENT_ID.fullmatch(client_id):
            raise OrderFailure("51000", f"Parameter {client_key} error")
        if client_id and any(o["algo"] == algo and o[client_key] == client_id for o in self.orders):
            if algo:
                raise OrderFailure("51065", "algoClOrdId already exists.")
            raise OrderFailure("51016", "Duplicated clOrdId")
        size = self._decimal(params, "sz")
        price = self.prices[inst.base]
        tgt_ccy = params.get("tgtCcy") or ""
        if inst.inst_type == "SPOT" and ord_type == "market" and side == "buy" and not algo:
            tgt_ccy = tgt_ccy or "quote_ccy"  # OKX's default for spot market buys
        base_size = size / price if tgt_ccy == "quote_ccy" else size
        if tgt_ccy != "quote_ccy" and size % inst.lot != 0:
            raise OrderFailure("51121", "Order quantity must be a multiple of the lot size.")
        if base_size < inst.min_size:
            raise OrderFailure("51020", "Order amount should be greater than the min available amount.")
        limit_price: Decimal | None = None
        trigger_price: Decimal | None = None
        if algo:
            trigger_price = self._decimal(params, "triggerPx")
            if trigger_price % inst.tick != 0:
                raise OrderFailure("51000", "Parameter triggerPx error")
            if str(params.get("orderPx", "")) != "-1":
                limit_price = self._decimal(params, "orderPx")
        elif ord_type != "market":
            limit_price = self._decimal(params, "px")
        if limit_price is not None and limit_price % inst.tick != 0:
            raise OrderFailure("51000", "Parameter px error" if not algo else "Parameter orderPx error")
        reduce_only = str(params.get("reduceOnly", "false")).lower() == "true"
        lever = self._lever(inst_id, str(td_mode))
        if inst.inst_type == "SWAP" and reduce_only:
            position = self.positions.get(inst_id, Decimal("0"))
            if position == 0 or (position > 0) == (side == "buy"):
                raise OrderFailure(
                    "51169",
                    "Order failed because you don't have any positions in this direction for this contract.",
                )
            if size > abs(position):
                raise OrderFailure("51112", "Close order size exceeds your available size.")
        elif not algo:  # trigger orders hold nothing until they trigger
            fill_price = limit_price or price
            if inst.inst_type == "SPOT":
                ccy, needed = (
                    (inst.quote, base_size * fill_price) if side == "buy" else (inst.base, base_size)
                )
            else:
                ccy, needed = inst.settle, size * inst.ct_val * fill_price / lever
            if needed > self._available(ccy):
                raise OrderFailure("51008", f"Order failed. Insufficient {ccy} balance in account.")
        now = str(now_ms())
        return {
            "algo": algo,
            "ordId": "" if algo else str(next(self._ids)),
            "algoId": str(next(self._ids)) if algo else "",
            "clOrdId": str(params.get("clOrdId") or ""),
            "algoClOrdId": client_id if algo else "",
            "tag": str(params.get("tag") or ""),
            "instId": inst_id,
            "instType": inst.inst_type,
            "side": side,
            "ordType": ord_type,
            "tdMode": td_mode,
            "tgtCcy": tgt_ccy if inst.inst_type == "SPOT" else "",
            "sz": size if tgt_ccy != "quote_ccy" else base_size,
            "sz_sent": size,
            "px": limit_price,
            "triggerPx": trigger_price,
            "reduceOnly": reduce_only,
            "lever": lever,
            "state": "live",
            "filled": Decimal("0"),
            "avgPx": None,
            "cTime": now,
            "uTime": now,
        }

    def _fill(self, order: dict[str, Any], at: Decimal | None = None) -> None:
        inst = self.instruments[order["instId"]]
        price = self.prices[inst.base] if at is None else at
        size = order["sz"]
        signed = size if order["side"] == "buy" else -size
        if inst.inst_type == "SPOT":
            self.balances[inst.base] = self.balances.get(inst.base, Decimal("0")) + signed
            self.balances[inst.quote] = self.balances.get(inst.quote, Decimal("0")) - signed * price
        else:
            inst_id = order["instId"]
            after, entry, pnl = net_fill(
                self.positions.get(inst_id, Decimal("0")), signed, price, self.entry_prices.get(inst_id)
            )
            if entry is not None:
                self.entry_prices[inst_id] = entry
            if pnl is not None:  # per contract: a contract holds ct_val of the base
                self.balances[inst.settle] += pnl * inst.ct_val
            self.positions[inst_id] = after
        order.update(state="filled", filled=size, avgPx=price, uTime=str(now_ms()))

    def _place(self, params: Any, algo: bool) -> dict[str, Any]:
        """One order request -> its result row (sCode "0" or the failure's code)."""
        if not isinstance(params, dict):
            return self._result_row({}, "50002", "JSON syntax error", algo)
        try:
            with self.lock:
                order = self._validate(params, algo)
                if order["ordType"] == "market":
                    self._fill(order)
                self.orders.append(order)
        except OrderFailure as failed:
            return self._result_row(params, failed.code, failed.message, algo)
        return self._result_row(order, "0", "Order placed", algo)

    @staticmethod
    def _result_row(source: dict[str, Any], code: str, message: str, algo: bool) -> dict[str, Any]:
        if algo:
            return {
                "algoId": source.get("algoId", ""),
                "algoClOrdId": source.get("algoClOrdId", ""),
                "clOrdId": source.get("clOrdId", ""),
                "tag": source.get("tag", ""),
                "sCode": code,
                "sMsg": message if code != "0" else "",
            }
        return {
            "ordId": source.get("ordId", ""),
            "clOrdId": source.get("clOrdId", ""),
            "tag": source.get("tag", ""),
            "ts": str(now_ms()),
            "sCode": code,
            "sMsg": message,
        }

    def _answer(
        self, rows: list[dict[str, Any]], verb: str = "operations", algo: bool = False
    ) -> dict[str, Any]:
        failed = sum(1 for row in rows if row["sCode"] != "0")
        if failed == 0:
            return {**envelope(rows), **self._times()}
        if failed == len(rows) and algo:
            # OKX's recorded refusal of an algo order: top msg empty, no inTime/outTime
            return envelope(rows, "1", "")
        if failed == len(rows):
            return {**envelope(rows, "1", f"All {verb} failed"), **self._times()}
        return {**envelope(rows, "2", "Bulk operation partially succeeded."), **self._times()}

    def trade_order(self, request: Request) -> dict[str, Any]:
        return self._answer([self._place(self._auth(request), algo=False)])

    def trade_batch_orders(self, request: Request) -> dict[str, Any]:
        body = self._auth(request)
        if not isinstance(body, list) or not 1 <= len(body) <= 20:
            raise failure(200, "51111", "Maximum 20 orders can be placed in bulk.")
        return self._answer([self._place(params, algo=False) for params in body])

    def order_algo(self, request: Request) -> dict[str, Any]:
        return self._answer([self._place(self._auth(request), algo=True)], algo=True)

    def _render(self, o: dict[str, Any]) -> dict[str, Any]:
        filled = o["filled"]
        common = {
            "instType": o["instType"],
            "instId": o["instId"],
            "ccy": "",
            "clOrdId": o["clOrdId"],
            "tag": o["tag"],
            "side": o["side"],
            "posSide": "net",  # a spot order too, in OKX's recorded answer
            "tdMode": o["tdMode"],
            "tgtCcy": o["tgtCcy"],
            "ordType": o["ordType"],
            "state": o["state"],
            "lever": str(o["lever"]) if o["instType"] == "SWAP" else "",
            "reduceOnly": "true" if o["reduceOnly"] else "false",
            "tpTriggerPx": "",
            "slTriggerPx": "",
            "cTime": o["cTime"],
            "uTime": o["uTime"],
        }
        if o["algo"]:
            return {
                **common,
                "algoId": o["algoId"],
                "algoClOrdId": o["algoClOrdId"],
                "ordId": o.get("child", ""),
                "ordIdList": [o["child"]] if o.get("child") else [],
                "sz": fmt(o["sz"]),
                "triggerPx": fmt(o["triggerPx"]),
                "triggerPxType": "last",
                "ordPx": fmt(o["px"]) if o["px"] is not None else "-1",
                "actualSz": "",
                "actualPx": "",
                "actualSide": "",
                "triggerTime": o["uTime"] if o.get("child") else "",
            }
        return {
            **common,
            "ordId": o["ordId"],
            "px": fmt(o["px"]) if o["px"] is not None else "",
            "sz": fmt(o["sz_sent"] if o["tgtCcy"] == "quote_ccy" else o["sz"]),
            "accFillSz": fmt(filled),
            "fillSz": fmt(filled),
            "fillPx": fmt(o["avgPx"]) if o["avgPx"] is not None else "",
            "avgPx": fmt(o["avgPx"]) if o["avgPx"] is not None else "",
            "fillTime": o["uTime"] if filled else "",
            "fee": "0",
            "feeCcy": self.instruments[o["instId"]].quote,
            "rebate": "0",
            "rebateCcy": self.instruments[o["instId"]].quote,
            "pnl": "0",
            "category": "normal",
            "cancelSource": "",
            "tpOrdPx": "",
            "slOrdPx": "",
            "tradeId": o["ordId"] if filled else "",  # one fill per order here: its trade
        }

    def _find(self, params: dict[str, Any], algo: bool) -> dict[str, Any] | None:
        if algo:
            by_id, by_client = str(params.get("algoId") or ""), str(params.get("algoClOrdId") or "")
            id_key, client_key = "algoId", "algoClOrdId"
        else:
            by_id, by_client = str(params.get("ordId") or ""), str(params.get("clOrdId") or "")
            id_key, client_key = "ordId", "clOrdId"
        inst_id = params.get("instId")
        with self.lock:
            for order in self.orders:
                if order["algo"] != algo or (inst_id and order["instId"] != inst_id):
                    continue
                if (by_id and order[id_key] == by_id) or (
                    not by_id and by_client and order[client_key] == by_client
                ):
                    return order
        return None

    def order_get(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("ordId") and not params.get("clOrdId"):
            raise failure(200, "51003", "Either client order ID or order ID is required.")
        order = self._find(params, algo=False)
        if order is None:
            raise failure(200, "51603", "Order does not exist")
        return envelope([self._render(order)])

    def order_algo_get(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("algoId") and not params.get("algoClOrdId"):
            raise failure(200, "50015", "Either parameter algoId or algoClOrdId is required.")
        order = self._find(params, algo=True)
        if order is None:
            raise failure(200, "51603", "Order does not exist")
        return envelope([self._render(order)])

    def _listing(self, params: dict[str, Any], algo: bool, states: set[str]) -> list[dict[str, Any]]:
        inst_type, inst_id = params.get("instType"), params.get("instId")
        ord_types = set(filter(None, str(params.get("ordType", "")).split(",")))
        with self.lock:
            return [
                self._render(o)
                for o in reversed(self.orders)
                if o["algo"] == algo
                and o["state"] in states
                and (not inst_type or o["instType"] == inst_type)
                and (not inst_id or o["instId"] == inst_id)
                and (not ord_types or o["ordType"] in ord_types)
            ][: int(params.get("limit") or 100)]

    def orders_pending(self, request: Request) -> dict[str, Any]:
        return envelope(self._listing(self._auth(request), False, {"live", "partially_filled"}))

    def orders_history(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("instType"):
            raise failure(400, "50014", "Parameter instType can not be empty.")
        states = {params["state"]} if params.get("state") else {"filled", "canceled"}
        return envelope(self._listing(params, False, states))

    def orders_algo_pending(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("ordType"):
            raise failure(400, "50014", "Parameter ordType can not be empty.")
        return envelope(self._listing(params, True, {"live"}))

    def orders_algo_history(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("ordType"):
            raise failure(400, "50014", "Parameter ordType can not be empty.")
        if not params.get("state") and not params.get("algoId"):
            raise failure(400, "50015", "Either parameter state or algoId is required.")
        states = {params["state"]} if params.get("state") else {"effective", "canceled", "order_failed"}
        return envelope(self._listing(params, True, states))

    def _cancel_one(self, params: Any, algo: bool) -> dict[str, Any]:
        if not isinstance(params, dict):
            params = {}
        order = self._find(params, algo)
        with self.lock:
            if order is None:
                code, message = "51400", "Order cancellation failed as the order does not exist."
            elif order["state"] == "canceled":
                code, message = "51401", "Order cancellation failed as the order has been canceled."
            elif order["state"] not in ("live", "partially_filled"):
                code, message = "51402", "Order cancellation failed as the order has been completed."
            else:
                if self.cancel_lag:
                    order["cancel_pending"] = True
                else:
                    order.update(state="canceled", uTime=str(now_ms()))
                code, message = "0", ""
        source = order or params
        if algo:
            return {
                "algoId": source.get("algoId", ""),
                "algoClOrdId": source.get("algoClOrdId", ""),
                "sCode": code,
                "sMsg": message,
            }
        return {
            "ordId": source.get("ordId", ""),
            "clOrdId": source.get("clOrdId", ""),
            "ts": str(now_ms()),
            "sCode": code,
            "sMsg": message,
        }

    def cancel_order(self, request: Request) -> dict[str, Any]:
        return self._answer([self._cancel_one(self._auth(request), algo=False)])

    def cancel_batch_orders(self, request: Request) -> dict[str, Any]:
        body = self._auth(request)
        if not isinstance(body, list) or not 1 <= len(body) <= 20:
            raise failure(200, "51111", "Maximum 20 orders can be canceled in bulk.")
        return self._answer([self._cancel_one(params, algo=False) for params in body])

    def cancel_algos(self, request: Request) -> dict[str, Any]:
        body = self._auth(request)
        if not isinstance(body, list) or not 1 <= len(body) <= 10:
            raise failure(200, "51111", "Maximum 10 orders can be canceled in bulk.")
        return self._answer([self._cancel_one(params, algo=True) for params in body])

    # --- for tests --------------------------------------------------------------------
    def trigger(self, algo_client_id: str, outcome: str = "success") -> dict[str, Any]:
        """Fire the trigger order known by ``algo_client_id`` as if its price was reached: the
        algo order becomes ``effective`` and places its order (market: filled at once, limit:
        resting), as OKX does. Returns that order. ``outcome="fail"``: the order it places is
        refused, and the algo order ends ``order_failed`` with none (returns the algo order)."""
        with self.lock:
            [algo] = [o for o in self.orders if o["algo"] and o["algoClOrdId"] == algo_client_id]
            if outcome == "fail":
                algo.update(state="order_failed", uTime=str(now_ms()))
                return algo
            child = {
                **algo,
                "algo": False,
                "algoId": "",
                "algoClOrdId": "",
                "ordId": str(next(self._ids)),
                "ordType": "limit" if algo["px"] is not None else "market",
                "triggerPx": None,
                "sz_sent": algo["sz"],
                "uTime": str(now_ms()),
            }
            if child["ordType"] == "market":
                self._fill(child)
            self.orders.append(child)
            algo.update(state="effective", child=child["ordId"], uTime=str(now_ms()))
            return child

    def fill_order(self, ord_id: str) -> dict[str, Any]:
        """Fill the resting limit order ``ord_id`` whole at its limit price, as if the market
        reached it (a cancel still pending then finds it filled). Returns it."""
        with self.lock:
            [order] = [o for o in self.orders if o["ordId"] == ord_id and not o["algo"]]
            assert order["state"] in ("live", "partially_filled") and order["px"] is not None
            self._fill(order, order["px"])
            return order

    def settle_cancels(self) -> int:
        """Apply the accepted cancels still pending (``cancel_lag``) to the orders still live;
        returns how many were cancelled."""
        with self.lock:
            pending = [o for o in self.orders if o.pop("cancel_pending", False)]
            live = [o for o in pending if o["state"] in ("live", "partially_filled")]
            for order in live:
                order.update(state="canceled", uTime=str(now_ms()))
            return len(live)

    def drop_cancels(self) -> int:
        """Forget the accepted cancels still pending (``cancel_lag``), as a venue that lost them
        would: the orders stay live. Returns how many were dropped. (Whether OKX ever loses an
        accepted cancel is not documented; its docs say only that acceptance is not the cancel.)"""
        with self.lock:
            return sum(1 for o in self.orders if o.pop("cancel_pending", False))

    def orders_for(self, client_id: str) -> list[dict[str, Any]]:
        """Orders placed with ``client_id`` as clOrdId (regular) or algoClOrdId (trigger)."""
        with self.lock:
            return [o for o in self.orders if client_id in (o["clOrdId"], o["algoClOrdId"])]


if __name__ == "__main__":
    run_from_command_line(OkxSim, 9005)
