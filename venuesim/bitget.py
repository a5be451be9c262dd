"""A Bitget V2-compatible REST subset (/api/v2): spot and USDT-M perpetual futures
(productType USDT-FUTURES), enough for ccxt's ``bitget`` class on a classic (non-UTA) account.

Private calls are checked the way Bitget does: ``ACCESS-KEY`` names the key,
``ACCESS-PASSPHRASE`` must be the key's passphrase, ``ACCESS-TIMESTAMP`` is milliseconds
within 30 s and ``ACCESS-SIGN`` is base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath
+ ('?' + query, not percent-encoded) + body)). Every answer is Bitget's envelope
``{code: "00000", msg: "success", requestTime, data}``; errors carry Bitget's codes (40009 sign,
40006 key, 40012 passphrase, 429, 43012 / 40762 balance, 45110 / 45111 minimums, 40786
duplicate clientOid, 40757 not enough position ...).

A classic account keeps the spot account and the USDT-M futures account apart. Futures run in
one-way position mode (``pos_mode``; set it to "hedge_mode" and an order without ``tradeSide``
is refused with 40774, as Bitget does). Orders pass the symbol rules (spot
``quantityPrecision`` / ``pricePrecision`` / ``minTradeAmount`` / ``minTradeUSDT``; futures
``sizeMultiplier`` / ``volumePlace`` / ``pricePlace`` / ``minTradeNum`` / ``minTradeUSDT``) and
the balances. A spot market buy's ``size`` is the quote amount to spend. MARKET orders fill at
once at ``prices``; LIMIT orders and plan (trigger) orders rest until cancelled, or until a test
fills a limit order (``fill_order``) or fires a plan order (``trigger``). Prices reaching a
trigger by themselves, ``triggerType`` and a placed order's rejection are not modelled.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

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
    scale,
)

PREFIX = "/api/v2"
FUTURES = "USDT-FUTURES"
PRODUCT_TYPES = (
    "USDT-FUTURES",
    "COIN-FUTURES",
    "USDC-FUTURES",
    "SUSDT-FUTURES",
    "SCOIN-FUTURES",
    "SUSDC-FUTURES",
)
CLIENT_ID = re.compile(r"[A-Za-z0-9_\-.:#]{1,50}")
# Injected "reject" faults: code -> msg (fault.message may name one of these codes).
CLIENT_ID_IDEMPOTENCY_MS = 6 * 3600 * 1000
REJECTS = {
    "43012": "Insufficient balance",
    "40762": "The order amount exceeds the balance",
    "45110": "less than the minimum amount 1 USDT",
    "45111": "less than the minimum order quantity",
    "40786": "Duplicate clientOid",
    "40305": "Client_oid length is not greater than 50, and cannot be Martian characters",
    "40757": "Not enough position is available.",
    "40774": "The order type for unilateral position must also be the unilateral position type.",
    # ccxt's bitget exceptions table: '43025': InvalidOrder, "Plan order does not exist"
    "43025": "Plan order does not exist",
    # ccxt's bitget exceptions table: '40020': BadRequest, {"code":"40020","msg":"Parameter orderId error"}
    "40020": "Parameter orderId error",
}


@dataclass(frozen=True)
class Symbol:
    """One trading pair. Spot: ``price_place``/``qty_place`` are pricePrecision /
    quantityPrecision and ``lot`` is 10^-qty_place. Futures: ``lot`` is sizeMultiplier and the
    tick is priceEndStep x 10^-pricePlace (ccxt reads it so)."""

    product: str  # SPOT | USDT-FUTURES
    base: str
    quote: str
    price_place: int
    qty_place: int
    min_qty: Decimal
    min_usdt: Decimal
    lot: Decimal
    quote_place: int = 8
    price_end_step: int = 1

    @property
    def spot(self) -> bool:
        return self.product == "SPOT"

    @property
    def tick(self) -> Decimal:
        return Decimal(self.price_end_step).scaleb(-self.price_place)


def sixteen(value: Decimal) -> str:
    """An amount as Bitget's spot order answers write it: 16 decimals ("0.0002000000000000")."""
    return format(value.quantize(Decimal("1E-16")), "f")


def envelope(data: Any) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}


def failure(status: int, code: str, msg: str) -> SimReply:
    return SimReply(status, {"code": code, "msg": msg, "requestTime": now_ms(), "data": None})


class BitgetSim(SimServer):
    name = "bitget"

    def __init__(
        self, api_key: str = "sim-key", api_secret: str = "sim-secret", passphrase: str = "sim-pass"
    ) -> None:
        self.keys = {api_key: (api_secret, passphrase)}
        self.prices: dict[str, Decimal] = {"BTC": dec("100000"), "ETH": dec("3000"), "SOL": dec("150")}
        self.symbols: dict[tuple[str, str], Symbol] = {
            ("SPOT", "BTCUSDT"): Symbol(
                "SPOT", "BTC", "USDT", 2, 6, dec("0.00001"), dec("1"), dec("0.000001")
            ),
            ("SPOT", "ETHUSDT"): Symbol("SPOT", "ETH", "USDT", 2, 4, dec("0.0001"), dec("1"), dec("0.0001")),
            ("SPOT", "SOLUSDT"): Symbol("SPOT", "SOL", "USDT", 3, 3, dec("0.01"), dec("1"), dec("0.001")),
            (FUTURES, "BTCUSDT"): Symbol(FUTURES, "BTC", "USDT", 1, 3, dec("0.001"), dec("5"), dec("0.001")),
            (FUTURES, "ETHUSDT"): Symbol(FUTURES, "ETH", "USDT", 2, 2, dec("0.01"), dec("5"), dec("0.01")),
        }
        self.spot_balances: dict[str, Decimal] = {"USDT": dec("10000"), "BTC": dec("0.5"), "ETH": dec("2")}
        self.futures_balance = dec("10000")  # USDT-M futures account, margin coin USDT
        self.positions: dict[str, Decimal] = {}  # futures symbol -> signed base size (one-way)
        self.entry_prices: dict[str, Decimal] = {}
        self.leverage: dict[str, int] = {}  # futures symbol -> leverage (crossed, one-way)
        self.margin_modes: dict[str, str] = {}  # futures symbol -> crossed | isolated
        self.default_leverage = 10
        self.pos_mode = "one_way_mode"
        self.orders: list[dict[str, Any]] = []  # regular and plan orders, spot and futures
        self._ids = itertools.count(1_200_000_000_000_000_001)
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return failure(500, "40015", "System is abnormal, please try again later")
        if fault.kind == "rate_limit":
            return failure(429, "429", "Too Many Requests")
        if fault.kind == "auth":
            return failure(400, "40009", "sign signature error")
        if fault.kind == "reject":
            code = fault.message if fault.message in REJECTS else "43012"
            message = REJECTS[code] if fault.message in REJECTS or not fault.message else fault.message
            return failure(400, code, message)
        raise ValueError(fault.kind)

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        p = PREFIX
        return {
            ("GET", f"{p}/public/time"): lambda r: envelope({"serverTime": str(now_ms())}),
            ("GET", f"{p}/spot/public/coins"): self.spot_coins,
            ("GET", f"{p}/spot/public/symbols"): self.spot_symbols,
            ("GET", f"{p}/margin/currencies"): lambda r: envelope([]),
            ("GET", f"{p}/mix/market/contracts"): self.mix_contracts,
            ("GET", f"{p}/spot/market/tickers"): self.spot_tickers,
            ("GET", f"{p}/mix/market/ticker"): self.mix_ticker,
            ("GET", f"{p}/spot/account/assets"): self.spot_assets,
            ("GET", f"{p}/mix/account/accounts"): self.mix_accounts,
            ("GET", f"{p}/mix/position/all-position"): self.all_position,
            ("GET", f"{p}/mix/position/single-position"): self.single_position,
            ("POST", f"{p}/mix/account/set-leverage"): self.set_leverage,
            ("POST", f"{p}/mix/account/set-margin-mode"): self.set_margin_mode,
            ("POST", f"{p}/spot/trade/place-order"): lambda r: self._place(r, "SPOT", plan=False),
            ("POST", f"{p}/spot/trade/place-plan-order"): lambda r: self._place(r, "SPOT", plan=True),
            ("POST", f"{p}/mix/order/place-order"): lambda r: self._place(r, FUTURES, plan=False),
            ("POST", f"{p}/mix/order/place-plan-order"): lambda r: self._place(r, FUTURES, plan=True),
            ("GET", f"{p}/spot/trade/orderInfo"): self.spot_order_info,
            ("GET", f"{p}/mix/order/detail"): self.mix_order_detail,
            ("GET", f"{p}/spot/trade/unfilled-orders"): self.spot_unfilled,
            ("GET", f"{p}/spot/trade/current-plan-order"): self.spot_current_plan,
            ("GET", f"{p}/spot/trade/history-orders"): self.spot_history,
            ("GET", f"{p}/spot/trade/history-plan-order"): self.spot_history_plan,
            ("GET", f"{p}/spot/trade/plan-sub-order"): self.spot_plan_sub_order,
            ("GET", f"{p}/mix/order/orders-pending"): self.mix_pending,
            ("GET", f"{p}/mix/order/orders-plan-pending"): self.mix_plan_pending,
            ("GET", f"{p}/mix/order/orders-history"): self.mix_history,
            ("GET", f"{p}/mix/order/orders-plan-history"): self.mix_plan_history,
            ("POST", f"{p}/spot/trade/cancel-order"): self.spot_cancel_order,
            ("POST", f"{p}/spot/trade/cancel-plan-order"): self.spot_cancel_plan_order,
            ("POST", f"{p}/spot/trade/batch-cancel-order"): self.spot_batch_cancel,
            ("POST", f"{p}/spot/trade/cancel-symbol-order"): self.spot_cancel_symbol,
            ("POST", f"{p}/spot/trade/batch-cancel-plan-order"): self.spot_batch_cancel_plan,
            ("POST", f"{p}/mix/order/cancel-order"): self.mix_cancel_order,
            ("POST", f"{p}/mix/order/batch-cancel-orders"): self.mix_batch_cancel,
            ("POST", f"{p}/mix/order/cancel-plan-order"): self.mix_cancel_plan,
        }

    # --- auth -------------------------------------------------------------------------
    def _auth(self, request: Request) -> dict[str, Any]:
        """Verify Bitget's four headers; returns the parameters (query for GET, JSON body else)."""
        key = request.header("ACCESS-KEY")
        if not key:
            raise failure(400, "40001", "ACCESS_KEY cannot be empty")
        credentials = self.keys.get(key)
        if credentials is None:
            raise failure(400, "40006", "Invalid ACCESS_KEY")
        secret, passphrase = credentials
        sign = request.header("ACCESS-SIGN")
        if not sign:
            raise failure(400, "40003", "Signature cannot be empty")
        stamp = request.header("ACCESS-TIMESTAMP")
        if not stamp.isdigit():
            raise failure(400, "40005", "Invalid ACCESS_TIMESTAMP")
        if abs(time.time() * 1000 - int(stamp)) > 30_000:
            raise failure(400, "40008", "Request timestamp expired")
        given = request.header("ACCESS-PASSPHRASE")
        if not given:
            raise failure(400, "40011", "ACCESS_PASSPHRASE cannot be empty")
        if not hmac.compare_digest(given, passphrase):
            raise failure(400, "40012", "apikey/password is incorrect")
        # Bitget signs the query string as sent, before percent-encoding.
        query = unquote(request.raw_query)
        prehash = (
            stamp + request.method + request.path + (f"?{query}" if query else "") + request.body.decode()
        )
        expected = base64.b64encode(hmac_sha256(secret, prehash))
        if not hmac.compare_digest(expected.decode(), sign):
            raise failure(400, "40009", "sign signature error")
        if request.method == "GET":
            return request.query
        if "application/json" not in request.header("content-type"):
            raise failure(400, "40007", "Invalid Content_Type, please use application/json format")
        body = request.json()
        if not isinstance(body, dict):
            raise failure(400, "40017", "Parameter verification failed")
        return body

    def _symbol(self, product: str, symbol_id: Any) -> Symbol:
        found = self.symbols.get((product, str(symbol_id or "")))
        if found is None:
            raise failure(400, "40034", f"Parameter {symbol_id} does not exist")
        return found

    @staticmethod
    def _product(params: dict[str, Any]) -> str:
        product = str(params.get("productType") or "").upper()
        if product not in PRODUCT_TYPES:
            raise failure(400, "40017", "Parameter verification failed productType")
        return product

    # --- public -----------------------------------------------------------------------
    def spot_coins(self, request: Request) -> dict[str, Any]:
        coins = sorted({s.base for s in self.symbols.values()} | {"USDT"})
        return envelope(
            [{"coinId": str(i), "coin": c, "transfer": "true", "chains": []} for i, c in enumerate(coins)]
        )

    def spot_symbols(self, request: Request) -> dict[str, Any]:
        wanted = request.query.get("symbol")
        return envelope(
            [
                {
                    "symbol": symbol_id,
                    "baseCoin": s.base,
                    "quoteCoin": s.quote,
                    "minTradeAmount": fmt(s.min_qty),
                    "maxTradeAmount": "10000000000",
                    "takerFeeRate": "0.001",
                    "makerFeeRate": "0.001",
                    "pricePrecision": str(s.price_place),
                    "quantityPrecision": str(s.qty_place),
                    "quotePrecision": str(s.quote_place),
                    "status": "online",
                    "minTradeUSDT": fmt(s.min_usdt),
                    "buyLimitPriceRatio": "0.05",
                    "sellLimitPriceRatio": "0.05",
                }
                for (product, symbol_id), s in self.symbols.items()
                if product == "SPOT" and (not wanted or wanted == symbol_id)
            ]
        )

    def mix_contracts(self, request: Request) -> dict[str, Any]:
        product = self._product(request.query)
        return envelope(
            [
                {
                    "symbol": symbol_id,
                    "baseCoin": s.base,
                    "quoteCoin": s.quote,
                    "buyLimitPriceRatio": "0.01",
                    "sellLimitPriceRatio": "0.01",
                    "feeRateUpRatio": "0.005",
                    "makerFeeRate": "0.0002",
                    "takerFeeRate": "0.0006",
                    "openCostUpRatio": "0.01",
                    "supportMarginCoins": [s.quote],
                    "minTradeNum": fmt(s.min_qty),
                    "priceEndStep": str(s.price_end_step),
                    "volumePlace": str(s.qty_place),
                    "pricePlace": str(s.price_place),
                    "sizeMultiplier": fmt(s.lot),
                    "symbolType": "perpetual",
                    "minTradeUSDT": fmt(s.min_usdt),
                    "maxSymbolOrderNum": "200",
                    "maxProductOrderNum": "400",
                    "maxPositionNum": "150",
                    "symbolStatus": "normal",
                    "offTime": "-1",
                    "limitOpenTime": "-1",
                    "deliveryTime": "",
                    "deliveryStartTime": "",
                    "launchTime": "",
                    "fundInterval": "8",
                    "minLever": "1",
                    "maxLever": "125",
                    "posLimit": "0.05",
                    "maintainTime": "",
                }
                for (kind, symbol_id), s in self.symbols.items()
                if kind == product
            ]
        )

    def _ticker_row(self, symbol_id: str, s: Symbol) -> dict[str, Any]:
        price = fmt(self.prices[s.base])
        row = {
            "symbol": symbol_id,
            "high24h": price,
            "open": price,
            "lastPr": price,
            "low24h": price,
            "quoteVolume": "1000000",
            "baseVolume": "10",
            "usdtVolume": "1000000",
            "bidPr": price,
            "askPr": price,
            "bidSz": "1",
            "askSz": "1",
            "openUtc": price,
            "ts": str(now_ms()),
            "changeUtc24h": "0",
            "change24h": "0",
        }
        if not s.spot:
            row.update(indexPrice=price, markPrice=price, fundingRate="0.0001", holdingAmount="100")
        return row

    def spot_tickers(self, request: Request) -> dict[str, Any]:
        wanted = request.query.get("symbol")
        return envelope(
            [
                self._ticker_row(symbol_id, s)
                for (product, symbol_id), s in self.symbols.items()
                if product == "SPOT" and (not wanted or wanted == symbol_id)
            ]
        )

    def mix_ticker(self, request: Request) -> dict[str, Any]:
        product = self._product(request.query)
        symbol_id = request.query.get("symbol", "")
        return envelope([self._ticker_row(symbol_id, self._symbol(product, symbol_id))])

    # --- accounts ---------------------------------------------------------------------
    def _spot_frozen(self, coin: str) -> Decimal:
        frozen = Decimal("0")
        for o in self.orders:
            if o["plan"] or o["product"] != "SPOT" or o["status"] not in ("live", "partially_filled"):
                continue
            s = self.symbols[("SPOT", o["symbol"])]
            left = o["size"] - o["filled"]
            if o["side"] == "buy" and coin == s.quote:
                frozen += left * o["price"]
            elif o["side"] == "sell" and coin == s.base:
                frozen += left
        return frozen

    def _upl(self, symbol_id: str) -> Decimal:
        s = self.symbols[(FUTURES, symbol_id)]
        price = self.prices[s.base]
        return (price - self.entry_prices.get(symbol_id, price)) * self.positions.get(symbol_id, Decimal("0"))

    def _lever(self, symbol_id: str) -> int:
        return self.leverage.get(symbol_id, self.default_leverage)

    def _futures_equity(self) -> Decimal:
        return self.futures_balance + sum((self._upl(i) for i in self.positions), Decimal("0"))

    def _futures_used(self) -> Decimal:
        used = Decimal("0")
        for symbol_id, size in self.positions.items():
            s = self.symbols[(FUTURES, symbol_id)]
            used += abs(size) * self.prices[s.base] / self._lever(symbol_id)
        for o in self.orders:
            if o["product"] == FUTURES and not o["plan"] and o["status"] == "live" and not o["reduceOnly"]:
                used += (o["size"] - o["filled"]) * o["price"] / self._lever(o["symbol"])
        return used

    def spot_assets(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        wanted = params.get("coin")
        with self.lock:
            rows = [
                {
                    "coin": coin,
                    "available": fmt(amount - self._spot_frozen(coin)),
                    "frozen": fmt(self._spot_frozen(coin)),
                    "locked": "0",
                    "limitAvailable": "0",
                    "uTime": str(now_ms()),
                }
                for coin, amount in self.spot_balances.items()
                if not wanted or wanted == coin
            ]
        return envelope(rows)

    def mix_accounts(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if self._product(params) != FUTURES:
            return envelope([])
        with self.lock:
            equity = self._futures_equity()
            available = equity - self._futures_used()
            upl = equity - self.futures_balance
        return envelope(
            [
                {
                    "marginCoin": "USDT",
                    "locked": "0",
                    "available": fmt(available),
                    "crossedMaxAvailable": fmt(available),
                    "isolatedMaxAvailable": fmt(available),
                    "maxTransferOut": fmt(available),
                    "accountEquity": fmt(equity),
                    "usdtEquity": fmt(equity),
                    "btcEquity": fmt(equity / self.prices["BTC"]),
                    "crossedRiskRate": "0",
                    "unrealizedPL": fmt(upl),
                    "coupon": "0",
                    "crossedUnrealizedPL": fmt(upl),
                    "isolatedUnrealizedPL": "0",
                }
            ]
        )

    def _position_row(self, symbol_id: str) -> dict[str, Any]:
        s = self.symbols[(FUTURES, symbol_id)]
        size = self.positions[symbol_id]
        price = self.prices[s.base]
        lever = self._lever(symbol_id)
        return {
            "marginCoin": "USDT",
            "symbol": symbol_id,
            "holdSide": "long" if size > 0 else "short",
            "openDelegateSize": "0",
            "marginSize": fmt(abs(size) * price / lever),
            "available": fmt(abs(size)),
            "locked": "0",
            "total": fmt(abs(size)),
            "leverage": str(lever),
            "achievedProfits": "0",
            "openPriceAvg": fmt(self.entry_prices.get(symbol_id, price)),
            "marginMode": self.margin_modes.get(symbol_id, "crossed"),
            "posMode": self.pos_mode,
            "unrealizedPL": fmt(self._upl(symbol_id)),
            "liquidationPrice": "0",
            "keepMarginRate": "0.004",
            "markPrice": fmt(price),
            "marginRatio": "0",
            "cTime": str(now_ms()),
            "uTime": str(now_ms()),
        }

    def all_position(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if self._product(params) != FUTURES:
            return envelope([])
        with self.lock:
            return envelope([self._position_row(i) for i, size in self.positions.items() if size])

    def single_position(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        self._symbol(self._product(params), params.get("symbol"))
        symbol_id = str(params["symbol"])
        with self.lock:
            size = self.positions.get(symbol_id, Decimal("0"))
            return envelope([self._position_row(symbol_id)] if size else [])

    def set_leverage(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        self._symbol(self._product(params), params.get("symbol"))
        symbol_id = str(params["symbol"])
        try:
            lever = int(str(params.get("leverage", "")))
        except ValueError as exc:
            raise failure(400, "40017", "Parameter verification failed leverage") from exc
        if not 1 <= lever <= 125:
            raise failure(400, "40797", "Exceeded the maximum settable leverage")
        with self.lock:
            self.leverage[symbol_id] = lever
        return envelope(
            {
                "symbol": symbol_id,
                "marginCoin": "USDT",
                "longLeverage": str(lever),
                "shortLeverage": str(lever),
                "crossMarginLeverage": str(lever),
                "marginMode": self.margin_modes.get(symbol_id, "crossed"),
            }
        )

    def set_margin_mode(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        self._symbol(self._product(params), params.get("symbol"))
        symbol_id = str(params["symbol"])
        mode = str(params.get("marginMode", ""))
        if mode not in ("crossed", "isolated"):
            raise failure(400, "40017", "Parameter verification failed marginMode")
        with self.lock:
            if self.margin_modes.get(symbol_id, "crossed") == mode:
                return envelope({"symbol": symbol_id, "marginCoin": "USDT", "marginMode": mode})
            if self.positions.get(symbol_id) or any(
                o["symbol"] == symbol_id and o["product"] == FUTURES and o["status"] == "live"
                for o in self.orders
            ):
                raise failure(
                    400, "45117", "Currently holding positions or orders, the margin mode cannot be adjusted"
                )
            self.margin_modes[symbol_id] = mode
        return envelope({"symbol": symbol_id, "marginCoin": "USDT", "marginMode": mode})

    # --- orders -----------------------------------------------------------------------
    @staticmethod
    def _decimal(params: dict[str, Any], name: str) -> Decimal:
        try:
            value = Decimal(str(params.get(name, "")))
        except InvalidOperation as exc:
            raise OrderFailure("40017", f"Parameter verification failed {name}") from exc
        if not value.is_finite() or value <= 0:
            raise OrderFailure("40017", f"Parameter verification failed {name}")
        return value

    def _validate(self, params: dict[str, Any], product: str, plan: bool) -> dict[str, Any]:
        """Check one order request against the symbol rules and the account; returns the order."""
        if product != "SPOT" and self._product(params) != FUTURES:
            raise OrderFailure("40017", "Parameter verification failed productType")
        s = self.symbols.get((product, str(params.get("symbol") or "")))
        if s is None:
            raise OrderFailure("40034", f"Parameter {params.get('symbol')} does not exist")
        side = params.get("side")
        if side not in ("buy", "sell"):
            raise OrderFailure("40017", "Parameter verification failed side")
        order_type = params.get("orderType")
        if order_type not in ("market", "limit"):
            raise OrderFailure("40017", "Parameter verification failed orderType")
        client_id = str(params.get("clientOid") or "")
        if client_id and not CLIENT_ID.fullmatch(client_id):
            raise OrderFailure("40305", REJECTS["40305"])
        if client_id and any(self._holds_client_id(o, client_id, s.spot) for o in self.orders):
            raise OrderFailure("40786", REJECTS["40786"])
        if not s.spot:
            if params.get("marginCoin") != s.quote:
                raise OrderFailure("40017", "Parameter verification failed marginCoin")
            if params.get("marginMode") not in ("crossed", "isolated"):
                raise OrderFailure("40017", "Parameter verification failed marginMode")
            if self.pos_mode == "hedge_mode" and not params.get("tradeSide"):
                raise OrderFailure("40774", REJECTS["40774"])
        size = self._decimal(params, "size")
        price = self.prices[s.base]
        quote_sized = s.spot and order_type == "market" and side == "buy"
        if plan and s.spot:
            # Spot plan orders say how the size counts: "total" (quote) or "amount" (base).
            quote_sized = params.get("planType") == "total"
        if quote_sized:
            if scale(size) > s.quote_place:
                raise OrderFailure(
                    "40808",
                    f"Parameter verification exception size checkBDScale error value={fmt(size)} checkScale={s.quote_place}",
                )
            if size < s.min_usdt:
                raise OrderFailure("45110", f"less than the minimum amount {fmt(s.min_usdt)} USDT")
            base_size = (size / price).quantize(s.lot, rounding=ROUND_DOWN)
        else:
            if size % s.lot != 0 or scale(size) > s.qty_place:
                raise OrderFailure(
                    "40808",
                    f"Parameter verification exception size checkBDScale error value={fmt(size)} checkScale={s.qty_place}",
                )
            base_size = size
        if base_size < s.min_qty:
            raise OrderFailure("45111", REJECTS["45111"])
        limit_price: Decimal | None = None
        trigger_price: Decimal | None = None
        if plan:
            trigger_price = self._decimal(params, "triggerPrice")
            if trigger_price % s.tick != 0:
                raise OrderFailure("40808", "Parameter verification exception triggerPrice checkScale error")
            if order_type == "limit":
                limit_price = self._decimal(params, "executePrice")
        elif order_type == "limit":
            limit_price = self._decimal(params, "price")
        if limit_price is not None and limit_price % s.tick != 0:
            raise OrderFailure("40808", "Parameter verification exception price checkScale error")
        reduce_only = str(params.get("reduceOnly", "NO")).upper() == "YES"
        value = base_size * (limit_price or trigger_price or price)
        if not reduce_only and not quote_sized and value < s.min_usdt:
            raise OrderFailure("45110", f"less than the minimum amount {fmt(s.min_usdt)} USDT")
        if not s.spot and reduce_only:
            position = self.positions.get(str(params["symbol"]), Decimal("0"))
            if position == 0 or (position > 0) == (side == "buy") or base_size > abs(position):
                raise OrderFailure("40757", REJECTS["40757"])
        elif not plan:  # plan orders hold nothing until they trigger
            fill_price = limit_price or price
            if s.spot:
                coin, needed = (s.quote, size if quote_sized else base_size * fill_price)
                if side == "sell":
                    coin, needed = s.base, base_size
                if needed > self.spot_balances.get(coin, Decimal("0")) - self._spot_frozen(coin):
                    raise OrderFailure("43012", REJECTS["43012"])
            else:
                needed = base_size * fill_price / self._lever(str(params["symbol"]))
                if needed > self._futures_equity() - self._futures_used():
                    raise OrderFailure("40762", REJECTS["40762"])
        now = now_ms()
        return {
            "product": product,
            "plan": plan,
            "orderId": str(next(self._ids)),
            "clientOid": client_id,
            "symbol": str(params["symbol"]),
            "side": side,
            "orderType": order_type,
            "size_sent": size,
            "size": base_size,
            "quote_sized": quote_sized,
            "price": limit_price,
            "triggerPrice": trigger_price,
            "triggerType": str(params.get("triggerType") or ""),
            "planType": str(params.get("planType") or ""),
            "force": str(params.get("force") or "gtc").lower(),
            "marginMode": str(params.get("marginMode") or ""),
            "reduceOnly": reduce_only,
            "status": "live",
            "filled": Decimal("0"),
            "priceAvg": None,
            "cTime": now,
            "uTime": now,
        }

    def _fill(self, order: dict[str, Any], price: Decimal | None = None) -> None:
        s = self.symbols[(order["product"], order["symbol"])]
        price = self.prices[s.base] if price is None else price
        size = order["size"]
        signed = size if order["side"] == "buy" else -size
        if s.spot:
            self.spot_balances[s.base] = self.spot_balances.get(s.base, Decimal("0")) + signed
            self.spot_balances[s.quote] = self.spot_balances.get(s.quote, Decimal("0")) - signed * price
        else:
            symbol_id = order["symbol"]
            after, entry, pnl = net_fill(
                self.positions.get(symbol_id, Decimal("0")), signed, price, self.entry_prices.get(symbol_id)
            )
            if entry is not None:
                self.entry_prices[symbol_id] = entry
            if pnl is not None:
                self.futures_balance += pnl
            self.positions[symbol_id] = after
        order.update(status="filled", filled=size, priceAvg=price, uTime=now_ms())

    @staticmethod
    def _holds_client_id(o: dict[str, Any], client_id: str, spot: bool) -> bool:
        """Whether an earlier order still holds ``client_id``. Spot: "The idempotency time is 6
        hours, only valid when orders are unfilled" (clientOid, POST /api/v2/spot/trade/place-order,
        https://www.bitget.com/api-doc/spot/trade/Place-Order): a live, unfilled order younger
        than 6 hours; once filled or cancelled the id is accepted again. Futures: no such
        statement found, every earlier order holds it."""
        if o["clientOid"] != client_id:
            return False
        if not spot or o["product"] != "SPOT":
            return True
        return o["status"] == "live" and now_ms() - int(o["cTime"]) < CLIENT_ID_IDEMPOTENCY_MS

    def _place(self, request: Request, product: str, plan: bool) -> dict[str, Any]:
        params = self._auth(request)
        try:
            with self.lock:
                order = self._validate(params, product, plan)
                if order["orderType"] == "market" and not plan:
                    self._fill(order)
                self.orders.append(order)
        except OrderFailure as failed:
            raise failure(400, failed.code, failed.message) from failed
        return envelope({"orderId": order["orderId"], "clientOid": order["clientOid"]})

    # --- rendering --------------------------------------------------------------------
    def _render(self, o: dict[str, Any], status_key: str = "status", view: str = "") -> dict[str, Any]:
        s = self.symbols[(o["product"], o["symbol"])]
        price = self.prices[s.base]
        filled = o["filled"]
        avg = o["priceAvg"]
        common = {
            "symbol": o["symbol"],
            "orderId": o["orderId"],
            "clientOid": o["clientOid"],
            "side": o["side"],
            "orderType": o["orderType"],
            "enterPointSource": "API",
            "cTime": str(o["cTime"]),
            "uTime": str(o["uTime"]),
        }
        if o["plan"]:
            row = {
                **common,
                "size": fmt(o["size_sent"]),
                "executePrice": fmt(o["price"]) if o["price"] is not None else "0",
                "triggerPrice": fmt(o["triggerPrice"]),
                "triggerType": o["triggerType"],
                "planType": o["planType"] or "normal_plan",
            }
            if s.spot:
                return {**row, "status": o["status"]}
            if view == "plan_history":
                # The order a triggered plan placed, and its fills (mix orders-plan-history:
                # executeOrderId, priceAvg, baseVolume as thrasher-corp/gocryptotrader's
                # HistTriggerFuturesOrd reads them; not in ccxt's recorded cancelled row).
                child = o.get("child")
                row.update(
                    executeOrderId=child["orderId"] if child else "",
                    priceAvg=fmt(child["priceAvg"]) if child and child["priceAvg"] is not None else "0",
                    baseVolume=fmt(child["filled"]) if child else "0",
                )
            return {
                **row,
                "planStatus": o["status"],
                "posSide": "net",
                "marginCoin": s.quote,
                "marginMode": o["marginMode"],
                "tradeSide": f"{o['side']}_single",
                "posMode": self.pos_mode,
                "reduceOnly": "YES" if o["reduceOnly"] else "NO",
            }
        row = {
            **common,
            "price": fmt(o["price"]) if o["price"] is not None else "0",
            "size": fmt(o["size_sent"] if s.spot else o["size"]),
            "priceAvg": fmt(avg) if avg is not None else "0",
            "baseVolume": fmt(filled),
            "quoteVolume": fmt(filled * (avg or price)) if filled else "0",
            "force": o["force"],
            status_key: o["status"],
        }
        if s.spot:
            # Bitget's recorded spot answers write amounts with 16 decimals, and say "normal"
            # (orderSource) for a limit order; orderInfo carries feeDetail, unfilled-orders
            # basePrice and the limit price as priceAvg
            spot = {
                **row,
                "price": sixteen(o["price"] or Decimal(0)),
                "size": sixteen(o["size_sent"]),
                "baseVolume": sixteen(filled),
                "quoteVolume": sixteen(filled * (avg or price)),
                "userId": "1234567890",
                "orderSource": "normal" if o["orderType"] == "limit" else "market",
            }
            if view == "unfilled":
                spot.update(
                    basePrice="0", priceAvg=sixteen(avg if avg is not None else o["price"] or Decimal(0))
                )
            elif view == "info" and not filled:
                spot["feeDetail"] = ""  # a filled order's fee detail is not modelled
            return spot
        return {
            **row,
            "fee": "0",
            "totalProfits": "0",
            "posSide": "net",
            "marginCoin": s.quote,
            "leverage": str(self._lever(o["symbol"])),
            "marginMode": o["marginMode"],
            "reduceOnly": "YES" if o["reduceOnly"] else "NO",
            "tradeSide": f"{o['side']}_single",
            "posMode": self.pos_mode,
            "orderSource": f"{o['orderType']}",
        }

    def _select(
        self, params: dict[str, Any], product: str, plan: bool, states: set[str]
    ) -> list[dict[str, Any]]:
        symbol_id = params.get("symbol")
        client_id = params.get("clientOid")
        # idLessThan: "Requests the content on the page before this ID (older data)"
        older_than = int(params["idLessThan"]) if str(params.get("idLessThan") or "").isdigit() else None
        with self.lock:
            return [
                o
                for o in reversed(self.orders)
                if o["product"] == product
                and o["plan"] == plan
                and o["status"] in states
                and (not symbol_id or o["symbol"] == symbol_id)
                and (not client_id or o["clientOid"] == client_id)
                and (older_than is None or int(o["orderId"]) < older_than)
            ][: min(int(params.get("limit") or 100), 100)]

    def _find(self, params: dict[str, Any], product: str, plan: bool) -> dict[str, Any] | None:
        by_id, by_client = str(params.get("orderId") or ""), str(params.get("clientOid") or "")
        with self.lock:
            # newest first: a spot clientOid can be used again once its order is filled
            for o in reversed(self.orders):
                if o["product"] != product or o["plan"] != plan:
                    continue
                if (by_id and o["orderId"] == by_id) or (
                    not by_id and by_client and o["clientOid"] == by_client
                ):
                    return o
        return None

    def spot_order_info(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("orderId") and not params.get("clientOid"):
            raise failure(400, "40017", "Parameter verification failed orderId or clientOid")
        order = self._find(params, "SPOT", plan=False)
        if order and not params.get("orderId") and order["status"] not in ("live", "partially_filled"):
            # "If you query the order details through clientOid, the following requirements
            # need to be met: … the order is in unfilled status" (spot Get Order Info)
            order = None
        return envelope([self._render(order, view="info")] if order else [])

    def mix_order_detail(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        self._symbol(self._product(params), params.get("symbol"))
        if not params.get("orderId") and not params.get("clientOid"):
            raise failure(400, "40017", "Parameter verification failed orderId or clientOid")
        order = self._find(params, FUTURES, plan=False)
        if order is None:
            raise failure(
                400, "40109", "The data of the order cannot be found, please confirm the order number"
            )
        return envelope(self._render(order, status_key="state"))

    def spot_unfilled(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        return envelope(
            [
                self._render(o, view="unfilled")
                for o in self._select(params, "SPOT", False, {"live", "partially_filled"})
            ]
        )

    def spot_history(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        return envelope(
            [self._render(o) for o in self._select(params, "SPOT", False, {"filled", "cancelled"})]
        )

    def spot_current_plan(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        # a fired plan still placing its order ("executing") is listed with the waiting ones
        rows = [self._render(o) for o in self._select(params, "SPOT", True, {"live", "executing"})]
        return envelope({"nextFlag": False, "idLessThan": "", "orderList": rows})

    def spot_history_plan(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        if not params.get("symbol") or not params.get("startTime") or not params.get("endTime"):
            raise failure(400, "40017", "Parameter verification failed symbol, startTime, endTime")
        rows = [
            self._render(o)
            for o in self._select(params, "SPOT", True, {"executed", "fail_execute", "cancelled"})
        ]
        return envelope({"nextFlag": False, "idLessThan": "", "orderList": rows})

    def spot_plan_sub_order(self, request: Request) -> dict[str, Any]:
        """GET /api/v2/spot/trade/plan-sub-order?planOrderId=…: the spot order a fired plan
        placed (www.bitget.com/api-doc/spot/plan/Get-Plan-Sub-Order: orderId, price, type,
        status ``success``, ``in_progress`` while it is placed, ``fail`` when it was refused); an
        empty list before it fires."""
        params = self._auth(request)
        if not params.get("planOrderId"):
            raise failure(400, "40017", "Parameter verification failed planOrderId")
        plan = self._find({"orderId": params["planOrderId"]}, "SPOT", plan=True)
        if plan is None or (plan.get("child") is None and not plan.get("sub_status")):
            return envelope([])
        child = plan.get("child")
        price = plan["price"] if child is None else child["price"]
        row = {
            "orderId": child["orderId"] if child else "",
            "price": fmt(price) if price is not None else "0",
            "type": plan["orderType"],
            "status": plan.get("sub_status") or "success",
        }
        return envelope([row])

    def _mix_list(self, request: Request, plan: bool, states: set[str], view: str = "") -> dict[str, Any]:
        params = self._auth(request)
        if self._product(params) != FUTURES:
            return envelope({"entrustedList": None, "endId": None})
        if plan and not params.get("planType"):
            raise failure(400, "40017", "Parameter verification failed planType")
        rows = [self._render(o, view=view) for o in self._select(params, FUTURES, plan, states)]
        return envelope({"entrustedList": rows or None, "endId": rows[-1]["orderId"] if rows else None})

    def mix_pending(self, request: Request) -> dict[str, Any]:
        return self._mix_list(request, False, {"live", "partially_filled"})

    def mix_history(self, request: Request) -> dict[str, Any]:
        return self._mix_list(request, False, {"filled", "canceled"})

    def mix_plan_pending(self, request: Request) -> dict[str, Any]:
        return self._mix_list(request, True, {"live"})

    def mix_plan_history(self, request: Request) -> dict[str, Any]:
        return self._mix_list(request, True, {"executed", "fail_execute", "cancelled"}, view="plan_history")

    # --- cancels ----------------------------------------------------------------------
    def _cancel(self, order: dict[str, Any] | None) -> tuple[bool, str, str]:
        """(cancelled, error code, message) for one order."""
        with self.lock:
            if order is None:
                return False, "43001", "The order does not exist"
            if order["status"] not in ("live", "partially_filled"):
                return False, "43001", "The order has been filled or cancelled"
            spot_regular = order["product"] == "SPOT" and not order["plan"]
            order.update(status="cancelled" if order["plan"] or spot_regular else "canceled", uTime=now_ms())
            return True, "", ""

    def _cancel_list(
        self, targets: Sequence[dict[str, Any] | None], asked: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        success, failed = [], []
        for order, ask in zip(targets, asked, strict=True):
            ok, code, message = self._cancel(order)
            row = {
                "orderId": (order or ask).get("orderId", ""),
                "clientOid": (order or ask).get("clientOid", ""),
            }
            if ok:
                success.append(row)
            else:
                failed.append({**row, "errorMsg": message, "errorCode": code})
        return {"successList": success, "failureList": failed}

    def _cancel_one(self, params: dict[str, Any], product: str, plan: bool) -> dict[str, Any]:
        order = self._find(params, product, plan)
        ok, code, message = self._cancel(order)
        if not ok:
            raise failure(400, code, message)
        assert order is not None
        return envelope({"orderId": order["orderId"], "clientOid": order["clientOid"]})

    def spot_cancel_order(self, request: Request) -> dict[str, Any]:
        return self._cancel_one(self._auth(request), "SPOT", plan=False)

    def spot_cancel_plan_order(self, request: Request) -> dict[str, Any]:
        self._cancel_one(self._auth(request), "SPOT", plan=True)
        return envelope({"result": "success"})

    def spot_batch_cancel(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        asked = [a for a in params.get("orderList") or [] if isinstance(a, dict)]
        if not asked or len(asked) > 50:
            raise failure(400, "40017", "Parameter verification failed orderList")
        targets = [self._find({**a, "symbol": params.get("symbol")}, "SPOT", False) for a in asked]
        return envelope(self._cancel_list(targets, asked))

    def spot_cancel_symbol(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        symbol_id = str(params.get("symbol") or "")
        self._symbol("SPOT", symbol_id)
        for order in self._select(
            {"symbol": symbol_id, "limit": 10_000}, "SPOT", False, {"live", "partially_filled"}
        ):
            self._cancel(order)
        return envelope({"symbol": symbol_id})

    def spot_batch_cancel_plan(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        symbols = params.get("symbolList") or []
        if not isinstance(symbols, list):
            raise failure(400, "40017", "Parameter verification failed symbolList")
        with self.lock:
            targets = [
                o
                for o in self.orders
                if o["product"] == "SPOT"
                and o["plan"]
                and o["status"] == "live"
                and (not symbols or o["symbol"] in symbols)
            ]
        return envelope(self._cancel_list(list(targets), targets))

    def mix_cancel_order(self, request: Request) -> dict[str, Any]:
        params = self._auth(request)
        self._symbol(self._product(params), params.get("symbol"))
        return self._cancel_one(params, FUTURES, plan=False)

    def _mix_cancel_many(self, request: Request, plan: bool) -> dict[str, Any]:
        params = self._auth(request)
        product = self._product(params)
        asked = params.get("orderIdList")
        if asked:
            asked = [a for a in asked if isinstance(a, dict)]
            targets = [self._find(a, FUTURES, plan) for a in asked]
            return envelope(self._cancel_list(targets, asked))
        # Without a list: every open order of the symbol (or of the product type).
        filters = {"symbol": params.get("symbol"), "limit": 10_000}
        open_orders = (
            self._select(filters, product, plan, {"live", "partially_filled"}) if product == FUTURES else []
        )
        return envelope(self._cancel_list(list(open_orders), open_orders))

    def mix_batch_cancel(self, request: Request) -> dict[str, Any]:
        return self._mix_cancel_many(request, plan=False)

    def mix_cancel_plan(self, request: Request) -> dict[str, Any]:
        return self._mix_cancel_many(request, plan=True)

    # --- for tests --------------------------------------------------------------------
    def trigger(self, client_oid: str, outcome: str = "success") -> dict[str, Any] | None:
        """Fire the plan order ``client_oid`` as if its trigger price was reached. ``success``:
        it becomes ``executed`` (leaving the pending list for the history) and places a regular
        order under a new ``orderId`` (market: filled at once; limit: resting at its
        ``executePrice``), named in a futures plan's history row (``executeOrderId``) or, for a
        spot plan, by ``plan-sub-order``; that order is returned. ``in_progress``: fired, its
        order still being placed (a spot plan ``executing``, its sub-order ``in_progress``; a
        futures plan ``executed`` with ``executeOrderId`` empty). ``fail``: the order was
        refused (``fail_execute``, sub-order ``fail``). The placed order's own clientOid is not
        documented; the simulator makes one up. Balances are not checked for it."""
        with self.lock:
            [plan] = [o for o in self.orders if o["plan"] and o["clientOid"] == client_oid]
            assert plan["status"] == "live" and outcome in ("success", "in_progress", "fail")
            if outcome != "success":
                spot = plan["product"] == "SPOT"
                status = "fail_execute" if outcome == "fail" else "executing" if spot else "executed"
                plan.update(status=status, child=None, sub_status=outcome, uTime=now_ms())
                return None
            child = {
                **plan,
                "plan": False,
                "orderId": str(next(self._ids)),
                "clientOid": f"sim-triggered-{plan['orderId']}",
                "size_sent": plan["size_sent"],
                "triggerPrice": None,
                "cTime": now_ms(),
                "uTime": now_ms(),
            }
            if child["orderType"] == "market":
                self._fill(child)
            self.orders.append(child)
            plan.update(status="executed", child=child, uTime=now_ms())
            return child

    def fill_order(self, order_id: str) -> dict[str, Any]:
        """Fill the resting regular order ``order_id`` whole at its limit price. Returns it."""
        with self.lock:
            [order] = [o for o in self.orders if o["orderId"] == order_id and not o["plan"]]
            assert order["status"] in ("live", "partially_filled") and order["price"] is not None
            self._fill(order, order["price"])
            return order

    def orders_for(self, client_id: str) -> list[dict[str, Any]]:
        """Orders placed with ``client_id`` as clientOid."""
        with self.lock:
            return [o for o in self.orders if o["clientOid"] == client_id]


if __name__ == "__main__":
    run_from_command_line(BitgetSim, 9006)
