"""A Bybit V5-compatible REST server (unified trading account): spot and USDT perpetuals.

Private calls are checked the way Bybit V5 does: ``X-BAPI-API-KEY`` names the key,
``X-BAPI-TIMESTAMP`` must fall inside ``X-BAPI-RECV-WINDOW`` of the server clock (else
retCode 10002) and ``X-BAPI-SIGN`` is the hex HMAC-SHA256 of timestamp + apiKey + recvWindow +
(the raw query string for GET | the raw body for POST), else retCode 10004. Every answer is
Bybit's envelope ``{retCode, retMsg, result, retExtInfo, time}``, business errors with HTTP 200.

Orders pass the instruments' lotSizeFilter / priceFilter (qty step, minOrderQty, spot
minOrderAmt, linear minNotionalValue, tickSize) and the wallet. MARKET orders fill at once at
``prices`` (a spot buy by quote amount down to the base precision, the remainder returned:
``PartiallyFilledCanceled``); a LIMIT order that crosses the price fills there, any other rests
until a test fills it (``fill_order``, whole or in part); conditional orders (``triggerPrice``;
spot ``orderFilter=StopOrder``) rest ``Untriggered``. A cancelled spot order that traded in part
ends ``PartiallyFilledCanceled``, a linear one ``Cancelled`` with its executed quantity. ``orderLinkId`` is
unique per account (110072). Like Bybit, ``/v5/order/create`` answers with the ids only; the
state is read from ``/v5/order/realtime`` (live orders) and ``/v5/order/history`` (finished).
"""

from __future__ import annotations

import hmac
import itertools
import json
import re
import time
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

from venuesim.core import (
    Fault,
    Request,
    Route,
    SimReply,
    SimServer,
    dec,
    fmt,
    hmac_sha256,
    net_fill,
    now_ms,
    order_rules,
    run_from_command_line,
    scale,
)

LIVE = ("New", "PartiallyFilled", "Untriggered")
ORDER_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
ZERO = Decimal("0")


def envelope(result: Any, code: int = 0, message: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": message, "result": result, "retExtInfo": {}, "time": now_ms()}


def error(code: int, message: str, status: int = 200) -> SimReply:
    """Bybit answers business errors with HTTP 200 and a non-zero retCode."""
    return SimReply(status, envelope({}, code, message))


class BybitSim(SimServer):
    name = "bybit"

    def __init__(self, api_key: str = "sim-bybit-key", api_secret: str = "sim-bybit-secret") -> None:
        self.keys = {api_key: api_secret}
        # Near the prices the seed guide's scenarios are written for, so their limits rest and
        # their stops sit on the right side of the market.
        self.prices: dict[str, Decimal] = {"BTCUSDT": dec("100000"), "ETHUSDT": dec("3000")}
        self.spot_rules = {
            "BTCUSDT": (
                "BTC",
                "USDT",
                order_rules("0.01", "0.000001", "0.000011", "5", minimum_key="min_amount"),
            ),
            "ETHUSDT": (
                "ETH",
                "USDT",
                order_rules("0.01", "0.00001", "0.00048", "5", minimum_key="min_amount"),
            ),
        }
        self.linear_rules = {
            "BTCUSDT": ("BTC", "USDT", order_rules("0.10", "0.001", "0.001", "5")),
            "ETHUSDT": ("ETH", "USDT", order_rules("0.01", "0.01", "0.01", "5")),
        }
        # One unified wallet backs spot and perpetuals alike.
        self.wallet: dict[str, Decimal] = {"USDT": dec("10000"), "BTC": dec("0.5"), "ETH": dec("2")}
        self.positions: dict[str, Decimal] = {}
        self.entry_prices: dict[str, Decimal] = {}
        self.leverage: dict[str, Decimal] = {}
        self.margin_mode = "REGULAR_MARGIN"
        self.clock_offset_ms = 0  # the server clock against the machine's, to test recvWindow
        self.orders: list[dict[str, Any]] = []
        # What the book can take from one market order, in base units, per symbol (absent: all
        # of it). A market order beyond it is cut short: spot PartiallyFilledCanceled,
        # linear Cancelled with its executed quantity (the rejectReason is assumed).
        self.market_depth: dict[str, Decimal] = {}
        self._ids = itertools.count(1)
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return SimReply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        if fault.kind == "system_error":
            return error(10016, fault.message or "Internal system error.")
        if fault.kind == "rate_limit":
            reset = str(now_ms() + 1000)
            return SimReply(
                200,
                envelope({}, 10006, "Too many visits. Exceeded the API Rate Limit."),
                {"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "0", "X-Bapi-Limit-Reset-Timestamp": reset},
            )
        if fault.kind == "rate_limit_ip":
            return SimReply(403, b"access too frequent")
        if fault.kind == "reject":
            category = self._body_category(request)
            if category == "spot":
                return error(170131, fault.message or "Insufficient balance.")
            return error(110007, fault.message or "ab not enough for new order")
        if fault.kind == "auth":
            return error(10003, "API key is invalid.", 401)
        if fault.kind == "token_expired":
            return error(33004, "Your api key has expired.", 401)
        raise ValueError(fault.kind)

    @staticmethod
    def _body_category(request: Request) -> str:
        try:
            return str(json.loads(request.body or b"{}").get("category", ""))
        except ValueError:
            return request.query.get("category", "")

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        public = {
            ("GET", "/v5/market/time"): self.server_time,
            ("GET", "/v5/market/instruments-info"): self.instruments_info,
            ("GET", "/v5/market/tickers"): self.tickers,
        }
        private = {
            ("GET", "/v5/user/query-api"): self.query_api,
            ("GET", "/v5/account/info"): self.account_info,
            ("GET", "/v5/asset/coin/query-info"): self.coin_info,
            ("GET", "/v5/account/wallet-balance"): self.wallet_balance,
            ("GET", "/v5/position/list"): self.position_list,
            ("POST", "/v5/position/set-leverage"): self.set_leverage,
            ("POST", "/v5/account/set-margin-mode"): self.set_margin_mode,
            ("POST", "/v5/order/create"): self.order_create,
            ("GET", "/v5/order/realtime"): self.order_realtime,
            ("GET", "/v5/order/history"): self.order_history,
            ("POST", "/v5/order/cancel"): self.order_cancel,
            ("POST", "/v5/order/cancel-all"): self.order_cancel_all,
        }
        routes = {key: self._public(handler) for key, handler in public.items()}
        routes.update({key: self._private(handler) for key, handler in private.items()})
        return routes

    @staticmethod
    def _public(handler: Route) -> Route:
        return lambda request: envelope(handler(request))

    def _private(self, handler: Any) -> Route:
        return lambda request: envelope(handler(request, self._signed(request)))

    # --- auth -------------------------------------------------------------------------
    def _signed(self, request: Request) -> dict[str, Any]:
        """Verify key, timestamp and signature; returns the request's parameters."""
        key = request.header("X-BAPI-API-KEY")
        secret = self.keys.get(key)
        if secret is None:
            raise error(10003, "API key is invalid.", 401)
        timestamp, recv_window = request.header("X-BAPI-TIMESTAMP"), request.header("X-BAPI-RECV-WINDOW")
        recv_window = recv_window or "5000"
        server_time = now_ms() + self.clock_offset_ms
        if (
            not timestamp.isdigit()
            or not recv_window.isdigit()
            or not (server_time - int(recv_window) <= int(timestamp) < server_time + 1000)
        ):
            raise error(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{timestamp}],server_timestamp[{server_time}],recv_window[{recv_window}]",
            )
        payload = request.body.decode() if request.method == "POST" else request.raw_query
        origin = f"{timestamp}{key}{recv_window}{payload}"
        expected = hmac_sha256(secret, origin).hex()
        if not hmac.compare_digest(expected, request.header("X-BAPI-SIGN")):
            raise error(10004, f"error sign! origin_string[{origin}]", 401)
        if request.method == "POST":
            params = request.json()
            if not isinstance(params, dict):
                raise error(10001, "params error")
            return params
        return dict(request.query)

    # --- public -----------------------------------------------------------------------
    def server_time(self, request: Request) -> dict[str, str]:
        now = time.time_ns() + self.clock_offset_ms * 1_000_000
        return {"timeSecond": str(now // 1_000_000_000), "timeNano": str(now)}

    def instruments_info(self, request: Request) -> dict[str, Any]:
        category = request.query.get("category", "")
        symbol = request.query.get("symbol")
        rows: list[dict[str, Any]] = []
        if category == "spot":
            for sym, (base, quote, rules) in self.spot_rules.items():
                rows.append(
                    {
                        "symbol": sym,
                        "baseCoin": base,
                        "quoteCoin": quote,
                        "innovation": "0",
                        "status": "Trading",
                        "marginTrading": "utaOnly",
                        "stTag": "0",
                        "lotSizeFilter": {
                            "basePrecision": fmt(rules["step"]),
                            "quotePrecision": "0.00000001",
                            "minOrderQty": fmt(rules["min_qty"]),
                            "maxOrderQty": "1000",
                            "minOrderAmt": fmt(rules["min_amount"]),
                            "maxOrderAmt": "8000000",
                        },
                        "priceFilter": {"tickSize": fmt(rules["tick"])},
                        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"},
                    }
                )
        elif category == "linear" and request.query.get("status") != "PreLaunch":
            for sym, (base, quote, rules) in self.linear_rules.items():
                rows.append(
                    {
                        "symbol": sym,
                        "contractType": "LinearPerpetual",
                        "status": "Trading",
                        "baseCoin": base,
                        "quoteCoin": quote,
                        "launchTime": "1585526400000",
                        "deliveryTime": "0",
                        "deliveryFeeRate": "",
                        "priceScale": str(scale(rules["tick"])),
                        "leverageFilter": {
                            "minLeverage": "1",
                            "maxLeverage": "100.00",
                            "leverageStep": "0.01",
                        },
                        "priceFilter": {
                            "minPrice": fmt(rules["tick"]),
                            "maxPrice": "1999999.80",
                            "tickSize": fmt(rules["tick"]),
                        },
                        "lotSizeFilter": {
                            "maxOrderQty": "1190.000",
                            "minOrderQty": fmt(rules["min_qty"]),
                            "qtyStep": fmt(rules["step"]),
                            "postOnlyMaxOrderQty": "1190.000",
                            "maxMktOrderQty": "500.000",
                            "minNotionalValue": fmt(rules["min_notional"]),
                        },
                        "unifiedMarginTrade": True,
                        "fundingInterval": 480,
                        "settleCoin": quote,
                        "copyTrading": "both",
                        "upperFundingRate": "0.00375",
                        "lowerFundingRate": "-0.00375",
                        "isPreListing": False,
                        "preListingInfo": None,
                    }
                )
        # inverse and option: this simulator lists none.
        if symbol:
            rows = [row for row in rows if row["symbol"] == symbol]
        return {"category": category, "list": rows, "nextPageCursor": ""}

    def tickers(self, request: Request) -> dict[str, Any]:
        category = request.query.get("category", "")
        symbol = request.query.get("symbol")
        rules = self.spot_rules if category == "spot" else self.linear_rules if category == "linear" else {}
        if symbol and symbol not in rules:
            raise error(10001, "Not supported symbols")
        rows = []
        for sym in [symbol] if symbol else list(rules):
            price = fmt(self.prices[sym])
            row = {
                "symbol": sym,
                "bid1Price": price,
                "bid1Size": "1",
                "ask1Price": price,
                "ask1Size": "1",
                "lastPrice": price,
                "prevPrice24h": price,
                "price24hPcnt": "0",
                "highPrice24h": price,
                "lowPrice24h": price,
                "turnover24h": "1000000",
                "volume24h": "10",
            }
            if category == "linear":
                row.update(markPrice=price, indexPrice=price, fundingRate="0.0001", openInterest="100")
            rows.append(row)
        return {"category": category, "list": rows}

    # --- account ----------------------------------------------------------------------
    def query_api(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "13770661",
            "note": "quanttrade-sim",
            "apiKey": request.header("X-BAPI-API-KEY"),
            "readOnly": 0,
            "secret": "",
            "permissions": {
                "ContractTrade": ["Order", "Position"],
                "Spot": ["SpotTrade"],
                "Wallet": [],
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 90,
            "expiredAt": "2099-01-01T00:00:00Z",
            "createdAt": "2024-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def account_info(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "marginMode": self.margin_mode,
            "updatedTime": str(now_ms()),
            "unifiedMarginStatus": 5,  # unified trading account 2.0
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def coin_info(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        coins = sorted(set(self.wallet) | {base for base, _, _ in self.spot_rules.values()})
        return {
            "rows": [
                {"name": coin, "coin": coin, "remainAmount": "1000000", "chains": []}
                for coin in coins
                if not params.get("coin") or params["coin"] == coin
            ]
        }

    def _leverage_of(self, symbol: str) -> Decimal:
        return self.leverage.get(symbol, Decimal("10"))

    def _locked(self, coin: str) -> Decimal:
        """Spot funds held by resting spot orders (conditional ones too)."""
        locked = ZERO
        for order in self.orders:
            if order["category"] != "spot" or order["status"] not in LIVE:
                continue
            base, quote, _ = self.spot_rules[order["symbol"]]
            leaves = order["qty"] - order["executed"]
            if order["side"] == "Buy" and coin == quote:
                locked += leaves * (order["price"] or order["trigger_price"] or self.prices[order["symbol"]])
            elif order["side"] == "Sell" and coin == base:
                locked += leaves
        return locked

    def _order_im(self) -> Decimal:
        """Initial margin held by resting linear orders that would open or add to a position."""
        total = ZERO
        for order in self.orders:
            if order["category"] == "linear" and order["status"] in LIVE and not order["reduce_only"]:
                price = order["price"] or order["trigger_price"] or self.prices[order["symbol"]]
                total += (order["qty"] - order["executed"]) * price / self._leverage_of(order["symbol"])
        return total

    def _position_im(self) -> Decimal:
        return (
            sum(
                (abs(size) * self.entry_prices.get(sym, self.prices[sym]) / self._leverage_of(sym))
                for sym, size in self.positions.items()
            )
            or ZERO
        )

    def _unrealised(self, symbol: str) -> Decimal:
        size = self.positions.get(symbol, ZERO)
        return (self.prices[symbol] - self.entry_prices.get(symbol, self.prices[symbol])) * size

    def _available(self, coin: str) -> Decimal:
        available = self.wallet.get(coin, ZERO) - self._locked(coin)
        if coin == "USDT":
            available -= self._order_im() + self._position_im()
        return available

    def wallet_balance(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("accountType") != "UNIFIED":
            raise error(10001, "accountType only support UNIFIED.")
        wanted = set(filter(None, str(params.get("coin", "")).split(",")))
        with self.lock:
            upl = sum((self._unrealised(s) for s in self.positions), ZERO)
            coins = []
            for coin, balance in self.wallet.items():
                if wanted and coin not in wanted:
                    continue
                coin_upl = upl if coin == "USDT" else ZERO
                coins.append(
                    {
                        "coin": coin,
                        "equity": fmt(balance + coin_upl),
                        "usdValue": fmt(balance * (self.prices.get(f"{coin}USDT") or Decimal("1"))),
                        "walletBalance": fmt(balance),
                        # Bybit no longer fills this on unified accounts: free = wallet - locked - IM.
                        "availableToWithdraw": "",
                        "availableToBorrow": "",
                        "borrowAmount": "0",
                        "accruedInterest": "0",
                        "totalOrderIM": fmt(self._order_im() if coin == "USDT" else ZERO),
                        "totalPositionIM": fmt(self._position_im() if coin == "USDT" else ZERO),
                        "totalPositionMM": "0",
                        "unrealisedPnl": fmt(coin_upl),
                        "cumRealisedPnl": "0",
                        "bonus": "0",
                        "collateralSwitch": True,
                        "marginCollateral": True,
                        "locked": fmt(self._locked(coin)),
                        "spotHedgingQty": "0",
                        "spotBorrow": "0",
                    }
                )
            total = fmt(self.wallet.get("USDT", ZERO) + upl)
        return {
            "list": [
                {
                    "accountType": "UNIFIED",
                    "totalEquity": total,
                    "totalWalletBalance": fmt(self.wallet.get("USDT", ZERO)),
                    "totalMarginBalance": total,
                    "totalAvailableBalance": total,
                    "totalPerpUPL": fmt(upl),
                    "totalInitialMargin": "0",
                    "totalMaintenanceMargin": "0",
                    "accountIMRate": "0",
                    "accountMMRate": "0",
                    "accountLTV": "0",
                    "coin": coins,
                }
            ]
        }

    # --- positions --------------------------------------------------------------------
    def _linear_symbol(self, params: dict[str, Any]) -> str:
        symbol = str(params.get("symbol", ""))
        if symbol not in self.linear_rules:
            raise error(10001, "params error: symbol invalid")
        return symbol

    def _position_row(self, symbol: str) -> dict[str, Any]:
        size = self.positions.get(symbol, ZERO)
        price = self.prices[symbol]
        entry = self.entry_prices.get(symbol, price) if size else ZERO
        return {
            "positionIdx": 0,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": symbol,
            "side": "" if size == 0 else ("Buy" if size > 0 else "Sell"),
            "size": fmt(abs(size)),
            "avgPrice": fmt(entry),
            "positionValue": fmt(abs(size) * entry),
            "tradeMode": 0,
            "autoAddMargin": 0,
            "positionStatus": "Normal",
            "leverage": fmt(self._leverage_of(symbol)),
            "markPrice": fmt(price),
            "liqPrice": "",
            "bustPrice": "",
            "positionIM": fmt(abs(size) * entry / self._leverage_of(symbol)),
            "positionMM": "0",
            "positionBalance": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "sessionAvgPrice": "",
            "unrealisedPnl": fmt(self._unrealised(symbol)),
            "curRealisedPnl": "0",
            "cumRealisedPnl": "0",
            "adlRankIndicator": 0,
            "createdTime": "1676538056258",
            "updatedTime": str(now_ms()),
            "seq": 1,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "tpslMode": "Full",
        }

    def position_list(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("category") != "linear":
            raise error(10001, "category only support linear in this simulator")
        with self.lock:
            if params.get("symbol"):
                rows = [self._position_row(self._linear_symbol(params))]
            elif params.get("settleCoin") or params.get("baseCoin"):
                rows = [self._position_row(s) for s, size in self.positions.items() if size != 0]
            else:
                raise error(
                    10001, "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
                )
        return {"category": "linear", "list": rows, "nextPageCursor": ""}

    def set_leverage(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        symbol = self._linear_symbol(params)
        buy, sell = dec(params.get("buyLeverage", "0")), dec(params.get("sellLeverage", "0"))
        if buy != sell or not (1 <= buy <= 100):
            raise error(10001, "leverage invalid")
        with self.lock:
            if self._leverage_of(symbol) == buy and symbol in self.leverage:
                raise error(110043, "leverage not modified")
            self.leverage[symbol] = buy
        return {}

    def set_margin_mode(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("setMarginMode")
        if mode not in ("ISOLATED_MARGIN", "REGULAR_MARGIN", "PORTFOLIO_MARGIN"):
            raise error(10001, "params error: setMarginMode")
        self.margin_mode = str(mode)
        return {"reasons": []}

    # --- orders -----------------------------------------------------------------------
    def _rules(self, category: str, symbol: str) -> dict[str, Decimal]:
        table = self.spot_rules if category == "spot" else self.linear_rules if category == "linear" else None
        if table is None:
            raise error(10001, "params error: category only support spot and linear in this simulator")
        if symbol not in table:
            raise error(
                10001, "params error: symbol invalid" if category == "linear" else "Not supported symbols"
            )
        return table[symbol][2]

    def order_create(self, request: Request, params: dict[str, Any]) -> dict[str, str]:
        category, symbol = str(params.get("category", "")), str(params.get("symbol", ""))
        rules = self._rules(category, symbol)
        side, order_type = params.get("side"), params.get("orderType")
        if side not in ("Buy", "Sell") or order_type not in ("Market", "Limit"):
            raise error(10001, "params error: side or orderType invalid")
        link_id = str(params.get("orderLinkId") or "")
        if link_id and not ORDER_LINK_ID.match(link_id):
            raise error(10001, "params error: orderLinkId must be 1-36 letters, digits, - or _")
        try:
            qty = dec(params["qty"])
            price = dec(params["price"]) if order_type == "Limit" else None
            trigger = dec(params["triggerPrice"]) if params.get("triggerPrice") else None
        except (KeyError, ArithmeticError) as exc:
            raise error(10001, "params error: qty, price or triggerPrice invalid") from exc
        if order_type == "Limit" and (price is None or price <= 0):
            raise error(10001, "params error: price invalid")
        reduce_only = bool(params.get("reduceOnly")) and category == "linear"
        conditional = trigger is not None and (
            category == "linear" or params.get("orderFilter") == "StopOrder"
        )
        market_unit = str(params.get("marketUnit") or ("quoteCoin" if side == "Buy" else "baseCoin"))
        with self.lock:
            if link_id and any(o["link_id"] == link_id for o in self.orders):
                raise error(110072, "OrderLinkedID is duplicate")
            last = self.prices[symbol]
            for value in (price, trigger):
                if value is not None and (value <= 0 or value % rules["tick"] != 0):
                    raise error(
                        170134 if category == "spot" else 10001,
                        "Order price has too many decimals."
                        if category == "spot"
                        else "params error: price invalid",
                    )
            if category == "spot":
                if order_type == "Market" and market_unit == "quoteCoin":
                    # what the amount buys, down to the base precision (see _fill)
                    qty_base = (qty / (trigger or last)).quantize(rules["step"], ROUND_DOWN)
                    value = qty
                else:
                    qty_base = qty
                    if qty % rules["step"] != 0:
                        raise error(170137, "Order quantity has too many decimals.")
                    if qty < rules["min_qty"]:
                        raise error(170136, "Order quantity exceeded lower limit.")
                    value = qty * (price or trigger or last)
                if value < rules["min_amount"]:
                    raise error(170140, "Order value exceeded lower limit.")
                base, quote, _ = self.spot_rules[symbol]
                needed, coin = (value, quote) if side == "Buy" else (qty_base, base)
                if self._available(coin) < needed:
                    raise error(170131, "Insufficient balance.")
            else:
                qty_base = qty
                if qty % rules["step"] != 0:
                    raise error(10001, "Qty invalid: the quantity must be a multiple of qtyStep")
                if qty < rules["min_qty"]:
                    raise error(10001, "The number of contracts exceeds minimum limit allowed")
                if reduce_only:
                    position = self.positions.get(symbol, ZERO)
                    if position == 0 or (position > 0) == (side == "Buy"):
                        raise error(110017, "current position is zero, cannot fix reduce-only order qty")
                    qty_base = min(qty, abs(position))
                else:
                    notional = qty * (price or trigger or last)
                    if notional < rules["min_notional"]:
                        raise error(
                            110094,
                            f"Order does not meet minimum order value {fmt(rules['min_notional'])}USDT",
                        )
                    if self._available("USDT") < notional / self._leverage_of(symbol):
                        raise error(110007, "ab not enough for new order")
                if trigger is not None:
                    direction = int(params.get("triggerDirection") or 0)
                    if direction not in (1, 2):
                        raise error(10001, "params error: triggerDirection invalid")
                    if direction == 1 and trigger <= last:
                        raise error(
                            110092,
                            f"expect Rising, but trigger_price[{fmt(trigger)}] <= current[{fmt(last)}]",
                        )
                    if direction == 2 and trigger >= last:
                        raise error(
                            110093,
                            f"expect Falling, but trigger_price[{fmt(trigger)}] >= current[{fmt(last)}]",
                        )
            now = now_ms()
            order = {
                "id": str(uuid.UUID(int=next(self._ids) + (1 << 64))),
                "link_id": link_id,
                "category": category,
                "symbol": symbol,
                "side": side,
                "type": order_type,
                "qty": qty_base if order_type == "Market" and category == "spot" else qty,
                "sent_qty": qty,
                "market_unit": market_unit if category == "spot" and order_type == "Market" else "",
                # the row echoes the unit as sent; a market buy sent without one answers ""
                # (ccxt#29602: a quote-amount buy's row with marketUnit "")
                "market_unit_sent": str(params.get("marketUnit") or ""),
                "price": price,
                "trigger_price": trigger,
                "trigger_direction": int(params.get("triggerDirection") or 0),
                "conditional": conditional,
                "reduce_only": reduce_only,
                "status": "Untriggered" if conditional else "New",
                "executed": ZERO,
                "exec_value": ZERO,
                "created": now,
                "updated": now,
            }
            crosses = price is not None and (
                (side == "Buy" and price >= last) or (side == "Sell" and price <= last)
            )
            if not conditional and (order_type == "Market" or crosses):
                order["qty"] = qty_base  # a reduce-only order is cut to the position
                depth = self.market_depth.get(symbol) if order_type == "Market" else None
                if depth is not None and depth < qty_base:
                    self._fill(order, depth, last)
                    order.update(
                        status="PartiallyFilledCanceled" if category == "spot" else "Cancelled",
                        reject_reason="EC_CancelForNoFullFill",
                    )
                    if order["market_unit"] == "quoteCoin":
                        order["leaves_value"] = qty - order["exec_value"]
                    self.orders.append(order)
                    return {"orderId": order["id"], "orderLinkId": link_id}
                self._fill(order, qty_base, last)
                if order["market_unit"] == "quoteCoin" and order["exec_value"] < qty:
                    # Bybit ends a market buy by quote amount whose remainder buys less than
                    # the base precision PartiallyFilledCanceled, the remainder returned
                    # (rejectReason EC_CancelForNoFullFill, leavesValue the remainder).
                    order.update(
                        status="PartiallyFilledCanceled",
                        reject_reason="EC_CancelForNoFullFill",
                        leaves_value=qty - order["exec_value"],
                    )
            self.orders.append(order)
            return {"orderId": order["id"], "orderLinkId": link_id}

    def _fill(self, order: dict[str, Any], qty: Decimal, price: Decimal) -> None:
        """``qty`` of ``order`` trades at ``price``: Filled when nothing is left, else
        PartiallyFilled (it keeps resting)."""
        symbol = order["symbol"]
        signed = qty if order["side"] == "Buy" else -qty
        if order["category"] == "spot":
            base, quote, _ = self.spot_rules[symbol]
            self.wallet[base] = self.wallet.get(base, ZERO) + signed
            self.wallet[quote] = self.wallet.get(quote, ZERO) - signed * price
        else:
            after, entry, pnl = net_fill(
                self.positions.get(symbol, ZERO), signed, price, self.entry_prices.get(symbol)
            )
            if entry is not None:
                self.entry_prices[symbol] = entry
            if pnl is not None:
                self.wallet["USDT"] += pnl
            self.positions[symbol] = after
        executed = order["executed"] + qty
        order.update(
            executed=executed,
            exec_value=order["exec_value"] + qty * price,
            status="Filled" if executed >= order["qty"] else "PartiallyFilled",
            updated=now_ms(),
        )

    def _render(self, order: dict[str, Any]) -> dict[str, Any]:
        leaves = order["qty"] - order["executed"] if order["status"] in LIVE else ZERO
        average = order["exec_value"] / order["executed"] if order["executed"] else None
        row: dict[str, Any] = {
            "orderId": order["id"],
            "orderLinkId": order["link_id"],
            "blockTradeId": "",
            "symbol": order["symbol"],
            "price": fmt(order["price"]) if order["price"] is not None else "0",
            "qty": fmt(order["sent_qty"] if order["market_unit"] == "quoteCoin" else order["qty"]),
            "side": order["side"],
            # Bybit's recorded answers: "0" on spot (2022), "" on linear (2025)
            "isLeverage": "0" if order["category"] == "spot" else "",
            "positionIdx": 0,
            "orderStatus": order["status"],
            "cancelType": "CancelByUser" if order.get("by_user") else "UNKNOWN",
            "rejectReason": order.get("reject_reason", "EC_NoError"),
            "createType": "CreateByUser",
            "avgPrice": fmt(average) if average is not None else "",
            "leavesQty": fmt(leaves),
            "leavesValue": fmt(
                order.get("leaves_value", leaves * (order["price"] or self.prices[order["symbol"]]))
            ),
            "cumExecQty": fmt(order["executed"]),
            "cumExecValue": fmt(order["exec_value"]),
            "cumExecFee": "0",
            "cumFeeDetail": {"USDT": "0"},
            "timeInForce": "IOC" if order["type"] == "Market" else "GTC",
            "orderType": order["type"],
            "stopOrderType": "Stop" if order["conditional"] else "",
            "orderIv": "",
            "triggerPrice": fmt(order["trigger_price"]) if order["trigger_price"] is not None else "",
            "takeProfit": "",
            "stopLoss": "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": order["trigger_direction"],
            "triggerBy": "LastPrice" if order["conditional"] else "",
            "lastPriceOnCreated": fmt(self.prices[order["symbol"]]),
            "reduceOnly": order["reduce_only"],
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpLimitPrice": "0",
            "slLimitPrice": "0",
            "placeType": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "0",
            "extraFees": "",
            "createdTime": str(order["created"]),
            "updatedTime": str(order["updated"]),
        }
        if order["category"] == "spot":
            row["marketUnit"] = order["market_unit_sent"]
        else:
            row["tpslMode"] = "UNKNOWN"
        return row

    def _matching(self, params: dict[str, Any], *, live: bool | None) -> list[dict[str, Any]]:
        """Orders of one category filtered as Bybit filters them (orderId > orderLinkId >
        symbol > baseCoin / settleCoin); ``live`` True = live only, False = finished only."""
        category = str(params.get("category", ""))
        self._rules(category, next(iter(self.spot_rules if category == "spot" else self.linear_rules)))
        order_filter = params.get("orderFilter")
        rows = []
        for order in reversed(self.orders):
            if order["category"] != category:
                continue
            if params.get("orderId"):
                if order["id"] != params["orderId"]:
                    continue
            elif params.get("orderLinkId"):
                if order["link_id"] != params["orderLinkId"]:
                    continue
            elif params.get("symbol") and order["symbol"] != params["symbol"]:
                continue
            if params.get("baseCoin") and not order["symbol"].startswith(str(params["baseCoin"])):
                continue
            if params.get("settleCoin") and not order["symbol"].endswith(str(params["settleCoin"])):
                continue
            # A unified account lists every kind when orderFilter is absent.
            if order_filter == "Order" and order["conditional"]:
                continue
            if order_filter == "StopOrder" and not order["conditional"]:
                continue
            if live is not None and (order["status"] in LIVE) != live:
                continue
            if params.get("orderStatus") and order["status"] != params["orderStatus"]:
                continue
            rows.append(order)
        return rows[: int(params.get("limit") or 50)]

    def order_realtime(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        category = params.get("category")
        if category == "linear" and not any(
            params.get(k) for k in ("symbol", "settleCoin", "baseCoin", "orderId", "orderLinkId")
        ):
            raise error(
                10001, "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        # openOnly=0 (the default): live orders only; otherwise recent finished ones too.
        live = True if str(params.get("openOnly", "0")) == "0" else None
        with self.lock:
            rows = [self._render(o) for o in self._matching(params, live=live)]
        return {"category": category, "list": rows, "nextPageCursor": ""}

    def order_history(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            rows = [self._render(o) for o in self._matching(params, live=False)]
        return {"category": params.get("category"), "list": rows, "nextPageCursor": ""}

    def order_cancel(self, request: Request, params: dict[str, Any]) -> dict[str, str]:
        category = str(params.get("category", ""))
        self._rules(category, str(params.get("symbol", "")))
        if not (params.get("orderId") or params.get("orderLinkId")):
            raise error(10001, "params error: orderId or orderLinkId is required")
        with self.lock:
            found = [o for o in self._matching(params, live=True) if o["symbol"] == params["symbol"]]
            if not found:
                if category == "spot":
                    raise error(170213, "Order does not exist.")
                raise error(110001, "Order does not exist")
            order = found[0]
            self._cancel(order)
        return {"orderId": order["id"], "orderLinkId": order["link_id"]}

    def order_cancel_all(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        category = str(params.get("category", ""))
        if params.get("symbol"):
            self._rules(category, str(params["symbol"]))
        elif category == "linear" and not (params.get("settleCoin") or params.get("baseCoin")):
            raise error(
                10001, "Missing some parameters that must be filled in, symbol or settleCoin or baseCoin"
            )
        else:
            self._rules(category, next(iter(self.spot_rules if category == "spot" else self.linear_rules)))
        selection = dict(params)
        if category == "spot" and not selection.get("orderFilter"):
            selection["orderFilter"] = "Order"  # spot cancels plain orders unless told otherwise
        selection.pop("orderId", None)
        selection.pop("orderLinkId", None)
        selection["limit"] = 10_000
        with self.lock:
            cancelled = self._matching(selection, live=True)
            for order in cancelled:
                self._cancel(order)
        return {
            "list": [{"orderId": o["id"], "orderLinkId": o["link_id"]} for o in cancelled],
            "success": "1",
        }

    # --- for tests --------------------------------------------------------------------
    @staticmethod
    def _cancel(order: dict[str, Any]) -> None:
        """A user's cancel of a live order. Bybit (V5 enum, orderStatus): a conditional order
        not triggered ends Deactivated; a spot order that traded in part ends
        PartiallyFilledCanceled ("only spot has this order status"); any other ends Cancelled,
        which on derivatives "may have an executed qty"."""
        if order["conditional"]:
            status = "Deactivated"
        elif order["category"] == "spot" and order["executed"] > 0:
            status = "PartiallyFilledCanceled"
        else:
            status = "Cancelled"
        order.update(status=status, by_user=True, updated=now_ms())

    def fill_order(self, order_id: str, qty: Decimal | None = None) -> dict[str, Any]:
        """``qty`` (default: all that is left) of the resting regular order ``order_id`` trades
        at its limit price, as if the market reached it. Returns it."""
        with self.lock:
            [order] = [o for o in self.orders if o["id"] == order_id and not o["conditional"]]
            assert order["status"] in ("New", "PartiallyFilled") and order["price"] is not None
            left = order["qty"] - order["executed"]
            assert qty is None or 0 < qty <= left
            self._fill(order, left if qty is None else qty, order["price"])
            return order

    def orders_for(self, link_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.orders if o["link_id"] == link_id]


if __name__ == "__main__":
    run_from_command_line(BybitSim, 9004)
