"""A Binance-compatible REST server: spot (/api/v3) and USD-M futures (/fapi), enough for ccxt.

Signed requests are checked the way Binance does: ``X-MBX-APIKEY`` names the key and
``signature`` is the hex HMAC-SHA256 of the query string followed by the body (without the
signature itself). Orders pass the exchangeInfo filters (PRICE_FILTER, LOT_SIZE,
NOTIONAL/MIN_NOTIONAL) and the balances; MARKET orders fill at once at ``prices``, every other
type rests until cancelled (or a test fills it, ``fill_order``). USD-M conditional orders live in
the algo book (/fapi/v1/algoOrder) and trigger only when a test says so (``trigger``): the
simulator does not watch prices, mark prices or ``workingType``, and does not model TRIGGERING
(the moment between the trigger and the placed order), EXPIRED or a placed order's rejection.
"""

from __future__ import annotations

import hmac
import itertools
import time
from decimal import Decimal
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
)

SPOT_ORDER_TYPES = [
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]
# States of an order still on the book (its client id may not be used again meanwhile).
OPEN_STATES = ("NEW", "PARTIALLY_FILLED")
FUTURES_ORDER_TYPES = [
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
]


class BinanceSim(SimServer):
    name = "binance"

    def __init__(self, api_key: str = "sim-key", api_secret: str = "sim-secret") -> None:
        self.keys = {api_key: api_secret}
        self.prices: dict[str, Decimal] = {
            "BTCUSDT": dec("50000"),
            "ETHUSDT": dec("3000"),
            "SOLUSDT": dec("150"),
        }
        self.spot_rules = {
            "BTCUSDT": ("BTC", "USDT", order_rules("0.01", "0.00001", "0.00001", "5")),
            "ETHUSDT": ("ETH", "USDT", order_rules("0.01", "0.0001", "0.0001", "5")),
            "SOLUSDT": ("SOL", "USDT", order_rules("0.01", "0.001", "0.001", "5")),
        }
        self.futures_rules = {
            "BTCUSDT": ("BTC", "USDT", order_rules("0.10", "0.001", "0.001", "100")),
            "ETHUSDT": ("ETH", "USDT", order_rules("0.01", "0.001", "0.001", "20")),
        }
        self.spot_balances: dict[str, Decimal] = {"USDT": dec("10000"), "BTC": dec("0.5"), "ETH": dec("2")}
        self.futures_wallet = dec("10000")
        self.positions: dict[str, Decimal] = {}
        self.entry_prices: dict[str, Decimal] = {}
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.orders: list[dict[str, Any]] = []
        self._ids = itertools.count(1000)
        super().__init__()

    # --- faults -----------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> SimReply:
        if fault.kind == "5xx":
            return SimReply(
                503,
                {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
            )
        if fault.kind == "rate_limit":
            return SimReply(
                429,
                {"code": -1003, "msg": "Too many requests; current limit of IP is 6000 requests per minute."},
                {"Retry-After": "1"},
            )
        if fault.kind == "reject":
            return SimReply(
                400,
                {
                    "code": -2010,
                    "msg": fault.message or "Account has insufficient balance for requested action.",
                },
            )
        if fault.kind == "auth":
            return SimReply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        raise ValueError(fault.kind)

    # --- routing ----------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        r: dict[tuple[str, str], Route] = {}
        for prefix, market in (("/api/v3", "spot"), ("/fapi/v1", "futures")):
            r["GET", f"{prefix}/ping"] = lambda req: {}
            r["GET", f"{prefix}/time"] = lambda req: {"serverTime": now_ms()}
            r["GET", f"{prefix}/exchangeInfo"] = (lambda m: lambda req: self.exchange_info(m))(market)
            r["GET", f"{prefix}/ticker/24hr"] = lambda req: self.ticker_24hr(req)
            r["GET", f"{prefix}/ticker/price"] = self.ticker
            r["POST", f"{prefix}/order"] = (lambda m: lambda req: self.order_create(req, m))(market)
            r["GET", f"{prefix}/order"] = (lambda m: lambda req: self.order_query(req, m))(market)
            r["DELETE", f"{prefix}/order"] = (lambda m: lambda req: self.order_cancel(req, m))(market)
            r["GET", f"{prefix}/openOrders"] = (lambda m: lambda req: self.open_orders(req, m))(market)
        r["GET", "/api/v3/account"] = self.spot_account
        r["DELETE", "/api/v3/openOrders"] = lambda req: self.cancel_open(req, "spot")
        r["DELETE", "/fapi/v1/allOpenOrders"] = self.futures_cancel_all
        for version in ("v2", "v3"):
            r["GET", f"/fapi/{version}/account"] = self.futures_account
            r["GET", f"/fapi/{version}/balance"] = self.futures_balance
            r["GET", f"/fapi/{version}/positionRisk"] = self.position_risk
        r["GET", "/fapi/v1/openOrder"] = self.futures_open_order
        r["GET", "/fapi/v1/leverageBracket"] = self.leverage_bracket
        r["POST", "/fapi/v1/leverage"] = self.set_leverage
        r["POST", "/fapi/v1/marginType"] = self.set_margin_type
        r["POST", "/fapi/v1/positionSide/dual"] = lambda req: (
            self._signed(req) and {"code": 200, "msg": "success"}
        )
        r["GET", "/fapi/v1/positionSide/dual"] = lambda req: self._signed(req) and {"dualSidePosition": False}
        r["POST", "/fapi/v1/algoOrder"] = lambda req: self.order_create(req, "futures", algo=True)
        r["GET", "/fapi/v1/algoOrder"] = lambda req: self.order_query(req, "futures", algo=True)
        r["DELETE", "/fapi/v1/algoOrder"] = lambda req: self.order_cancel(req, "futures", algo=True)
        r["GET", "/fapi/v1/openAlgoOrders"] = lambda req: self.open_orders(req, "futures", algo=True)
        r["DELETE", "/fapi/v1/algoOpenOrders"] = lambda req: self.cancel_open(req, "futures", algo=True)
        return r

    # --- auth -------------------------------------------------------------------------
    def _signed(self, request: Request) -> dict[str, str]:
        """Verify key and signature; returns the request's parameters."""
        key = request.header("X-MBX-APIKEY")
        secret = self.keys.get(key)
        if secret is None:
            raise SimReply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        total = request.raw_query + request.body.decode()
        payload, sep, signature = total.rpartition("&signature=")
        if not sep:
            raise SimReply(
                400,
                {
                    "code": -1102,
                    "msg": "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
                },
            )
        expected = hmac_sha256(secret, payload).hex()
        if not hmac.compare_digest(expected, signature):
            raise SimReply(400, {"code": -1022, "msg": "Signature for this request is not valid."})
        params = {**request.query, **request.form}
        params.pop("signature", None)
        timestamp = int(params.get("timestamp", "0"))
        if abs(time.time() * 1000 - timestamp) > int(params.get("recvWindow", "5000")) + 1000:
            raise SimReply(
                400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
            )
        return params

    # --- public -----------------------------------------------------------------------
    def exchange_info(self, market: str) -> dict[str, Any]:
        symbols = []
        rules_by_symbol = self.spot_rules if market == "spot" else self.futures_rules
        for symbol, (base, quote, rules) in rules_by_symbol.items():
            price_filter = {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(rules["tick"]),
                "maxPrice": "1000000",
                "tickSize": fmt(rules["tick"]),
            }
            lot = {
                "filterType": "LOT_SIZE",
                "minQty": fmt(rules["min_qty"]),
                "maxQty": "9000",
                "stepSize": fmt(rules["step"]),
            }
            market_lot = {**lot, "filterType": "MARKET_LOT_SIZE"}
            if market == "spot":
                notional = {
                    "filterType": "NOTIONAL",
                    "minNotional": fmt(rules["min_notional"]),
                    "applyMinToMarket": True,
                    "maxNotional": "9000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                }
                symbols.append(
                    {
                        "symbol": symbol,
                        "status": "TRADING",
                        "baseAsset": base,
                        "baseAssetPrecision": 8,
                        "quoteAsset": quote,
                        "quotePrecision": 8,
                        "quoteAssetPrecision": 8,
                        "baseCommissionPrecision": 8,
                        "quoteCommissionPrecision": 8,
                        "orderTypes": SPOT_ORDER_TYPES,
                        "icebergAllowed": True,
                        "ocoAllowed": True,
                        "quoteOrderQtyMarketAllowed": True,
                        "isSpotTradingAllowed": True,
                        "isMarginTradingAllowed": False,
                        "filters": [price_filter, lot, market_lot, notional],
                        "permissions": [],
                        "permissionSets": [["SPOT"]],
                        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    }
                )
            else:
                notional = {"filterType": "MIN_NOTIONAL", "notional": fmt(rules["min_notional"])}
                symbols.append(
                    {
                        "symbol": symbol,
                        "pair": symbol,
                        "contractType": "PERPETUAL",
                        "deliveryDate": 4133404800000,
                        "onboardDate": 1569398400000,
                        "status": "TRADING",
                        "maintMarginPercent": "2.5000",
                        "requiredMarginPercent": "5.0000",
                        "baseAsset": base,
                        "quoteAsset": quote,
                        "marginAsset": quote,
                        "pricePrecision": 2,
                        "quantityPrecision": 3,
                        "baseAssetPrecision": 8,
                        "quotePrecision": 8,
                        "underlyingType": "COIN",
                        "underlyingSubType": [],
                        "triggerProtect": "0.0500",
                        "filters": [price_filter, lot, market_lot, notional],
                        "orderTypes": FUTURES_ORDER_TYPES,
                        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                    }
                )
        return {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [],
            "symbols": symbols,
        }

    def ticker_24hr(self, request: Request) -> Any:
        now = now_ms()

        def row(symbol: str) -> dict[str, Any]:
            price = fmt(self.prices[symbol])
            return {
                "symbol": symbol,
                "priceChange": "0",
                "priceChangePercent": "0",
                "weightedAvgPrice": price,
                "lastPrice": price,
                "lastQty": "1",
                "bidPrice": price,
                "askPrice": price,
                "openPrice": price,
                "highPrice": price,
                "lowPrice": price,
                "volume": "100",
                "quoteVolume": "100",
                "openTime": now - 86_400_000,
                "closeTime": now,
                "count": 1,
            }

        symbol = request.query.get("symbol")
        if symbol:
            if symbol not in self.prices:
                raise SimReply(400, {"code": -1121, "msg": "Invalid symbol."})
            return row(symbol)
        return [row(s) for s in self.prices]

    def ticker(self, request: Request) -> Any:
        symbol = request.query.get("symbol")
        if symbol:
            return {"symbol": symbol, "price": fmt(self.prices[symbol]), "time": now_ms()}
        return [{"symbol": s, "price": fmt(p)} for s, p in self.prices.items()]

    # --- accounts ---------------------------------------------------------------------
    def _locked(self, asset: str) -> Decimal:
        locked = Decimal("0")
        for order in self.orders:
            if order["market"] != "spot" or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                continue
            base, quote, _ = self.spot_rules[order["symbol"]]
            if order["side"] == "BUY" and asset == quote:
                locked += order["qty"] * (order["price"] or order["stop_price"] or Decimal("0"))
            elif order["side"] == "SELL" and asset == base:
                locked += order["qty"]
        return locked

    def spot_account(self, request: Request) -> dict[str, Any]:
        self._signed(request)
        with self.lock:
            balances = []
            for a, v in self.spot_balances.items():
                locked = self._locked(a)
                balances.append({"asset": a, "free": fmt(v - locked), "locked": fmt(locked)})
        return {
            "makerCommission": 10,
            "takerCommission": 10,
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "updateTime": now_ms(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
        }

    def _unrealized(self, symbol: str) -> Decimal:
        qty = self.positions.get(symbol, Decimal("0"))
        return (self.prices[symbol] - self.entry_prices.get(symbol, self.prices[symbol])) * qty

    def futures_account(self, request: Request) -> dict[str, Any]:
        self._signed(request)
        with self.lock:
            unrealized = sum((self._unrealized(s) for s in self.positions), Decimal("0"))
            margin = self.futures_wallet + unrealized
            asset = {
                "asset": "USDT",
                "walletBalance": fmt(self.futures_wallet),
                "unrealizedProfit": fmt(unrealized),
                "marginBalance": fmt(margin),
                "maintMargin": "0",
                "initialMargin": "0",
                "positionInitialMargin": "0",
                "openOrderInitialMargin": "0",
                "crossWalletBalance": fmt(self.futures_wallet),
                "crossUnPnl": fmt(unrealized),
                "availableBalance": fmt(margin),
                "maxWithdrawAmount": fmt(margin),
                "updateTime": now_ms(),
            }
            return {
                "totalWalletBalance": fmt(self.futures_wallet),
                "totalUnrealizedProfit": fmt(unrealized),
                "totalMarginBalance": fmt(margin),
                "availableBalance": fmt(margin),
                "maxWithdrawAmount": fmt(margin),
                "assets": [asset],
                "positions": [self._position_row(s) for s in self.positions],
            }

    def futures_balance(self, request: Request) -> list[dict[str, Any]]:
        self._signed(request)
        return [
            {
                "asset": "USDT",
                "balance": fmt(self.futures_wallet),
                "availableBalance": fmt(self.futures_wallet),
                "crossWalletBalance": fmt(self.futures_wallet),
                "crossUnPnl": "0",
                "maxWithdrawAmount": fmt(self.futures_wallet),
            }
        ]

    def _position_row(self, symbol: str) -> dict[str, Any]:
        qty = self.positions.get(symbol, Decimal("0"))
        price = self.prices[symbol]
        return {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": fmt(qty),
            "entryPrice": fmt(self.entry_prices.get(symbol, price) if qty else Decimal("0")),
            "breakEvenPrice": "0",
            "markPrice": fmt(price),
            "unRealizedProfit": fmt(self._unrealized(symbol)),
            "liquidationPrice": "0",
            "isolatedMargin": "0",
            "notional": fmt(qty * price),
            "marginAsset": "USDT",
            "isolatedWallet": "0",
            "initialMargin": "0",
            "maintMargin": "0",
            "leverage": str(self.leverage.get(symbol, 20)),
            "marginType": self.margin_type.get(symbol, "cross"),
            "isAutoAddMargin": "false",
            "maxNotionalValue": "1000000",
            "updateTime": now_ms(),
        }

    def position_risk(self, request: Request) -> list[dict[str, Any]]:
        params = self._signed(request)
        with self.lock:
            symbols = [params["symbol"]] if params.get("symbol") else list(self.futures_rules)
            return [self._position_row(s) for s in symbols]

    def leverage_bracket(self, request: Request) -> list[dict[str, Any]]:
        self._signed(request)
        bracket = {
            "bracket": 1,
            "initialLeverage": 125,
            "notionalCap": 50000,
            "notionalFloor": 0,
            "maintMarginRatio": 0.004,
            "cum": 0.0,
        }
        return [{"symbol": s, "brackets": [bracket]} for s in self.futures_rules]

    def set_leverage(self, request: Request) -> dict[str, Any]:
        params = self._signed(request)
        symbol = self._symbol(params, "futures")
        self.leverage[symbol] = int(params["leverage"])
        return {"symbol": symbol, "leverage": int(params["leverage"]), "maxNotionalValue": "1000000"}

    def set_margin_type(self, request: Request) -> dict[str, Any]:
        params = self._signed(request)
        symbol = self._symbol(params, "futures")
        wanted = params["marginType"].lower()
        if self.margin_type.get(symbol, "cross") == wanted:
            raise SimReply(400, {"code": -4046, "msg": "No need to change margin type."})
        self.margin_type[symbol] = wanted
        return {"code": 200, "msg": "success"}

    # --- orders -----------------------------------------------------------------------
    def _symbol(self, params: dict[str, str], market: str) -> str:
        symbol = params.get("symbol", "")
        if symbol not in (self.spot_rules if market == "spot" else self.futures_rules):
            raise SimReply(400, {"code": -1121, "msg": "Invalid symbol."})
        return symbol

    def _check_filters(self, market: str, symbol: str, qty: Decimal, price: Decimal | None) -> None:
        rules = (self.spot_rules if market == "spot" else self.futures_rules)[symbol][2]
        if price is not None and (price <= 0 or price % rules["tick"] != 0):
            raise SimReply(400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"})
        if qty < rules["min_qty"] or qty % rules["step"] != 0:
            raise SimReply(400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
        notional = qty * (price or self.prices[symbol])
        if notional < rules["min_notional"]:
            if market == "spot":
                raise SimReply(400, {"code": -1013, "msg": "Filter failure: NOTIONAL"})
            raise SimReply(
                400,
                {
                    "code": -4164,
                    "msg": f"Order's notional must be no smaller than {fmt(rules['min_notional'])} (unless you choose reduce only).",
                },
            )

    def order_create(self, request: Request, market: str, algo: bool = False) -> dict[str, Any]:
        params = self._signed(request)
        symbol = self._symbol(params, market)
        side = params.get("side", "")
        order_type = params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise SimReply(400, {"code": -1117, "msg": "Invalid side."})
        allowed = SPOT_ORDER_TYPES if market == "spot" else FUTURES_ORDER_TYPES
        if order_type not in allowed:
            raise SimReply(400, {"code": -1116, "msg": "Invalid orderType."})
        if (
            market == "futures"
            and (order_type in ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET")) != algo
        ):
            raise SimReply(
                400,
                {
                    "code": -4120,
                    "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
                },
            )
        client_id = params.get("clientAlgoId" if algo else "newClientOrderId") or f"sim{next(self._ids)}"
        qty = dec(params.get("quantity", "0"))
        price = dec(params["price"]) if params.get("price") else None
        stop_price = params.get("triggerPrice" if algo else "stopPrice")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        with self.lock:
            # Binance: newClientOrderId is "a unique id among open orders"; a filled, cancelled
            # or expired order's id is accepted again and makes a second order.
            if any(
                o["client_id"] == client_id and o["market"] == market and o["status"] in OPEN_STATES
                for o in self.orders
            ):
                if market == "spot":
                    raise SimReply(400, {"code": -2010, "msg": "Duplicate order sent."})
                raise SimReply(400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
            if not (market == "futures" and reduce_only):
                self._check_filters(market, symbol, qty, price)
            if market == "spot":
                self._check_spot_funds(symbol, side, qty, price)
            elif reduce_only:
                position = self.positions.get(symbol, Decimal("0"))
                if position == 0 or (position > 0) == (side == "BUY") or qty > abs(position):
                    raise SimReply(400, {"code": -2022, "msg": "ReduceOnly Order is rejected."})
            order = {
                "id": next(self._ids),
                "client_id": client_id,
                "market": market,
                "algo": algo,
                "symbol": symbol,
                "side": side,
                "type": order_type,
                "qty": qty,
                "price": price,
                "stop_price": dec(stop_price) if stop_price else None,
                "reduce_only": reduce_only,
                "status": "NEW",
                "executed": Decimal("0"),
                "avg_price": Decimal("0"),
                "time": now_ms(),
                "cancel_client_id": "",
                "child": None,  # an algo order's placed order, once it has triggered
                "trigger_time": 0,
            }
            order["update_time"] = order["time"]
            if order_type == "MARKET":
                self._fill(order)
            self.orders.append(order)
            return self._render(order, "new")

    def _check_spot_funds(self, symbol: str, side: str, qty: Decimal, price: Decimal | None) -> None:
        base, quote, _ = self.spot_rules[symbol]
        if side == "BUY":
            needed, asset = qty * (price or self.prices[symbol]), quote
        else:
            needed, asset = qty, base
        if self.spot_balances.get(asset, Decimal("0")) - self._locked(asset) < needed:
            raise SimReply(
                400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
            )

    def _fill(self, order: dict[str, Any], price: Decimal | None = None) -> None:
        symbol, qty = order["symbol"], order["qty"]
        price = self.prices[symbol] if price is None else price
        signed = qty if order["side"] == "BUY" else -qty
        if order["market"] == "spot":
            base, quote, _ = self.spot_rules[symbol]
            self.spot_balances[base] = self.spot_balances.get(base, Decimal("0")) + signed
            self.spot_balances[quote] = self.spot_balances.get(quote, Decimal("0")) - signed * price
        else:
            after, entry, pnl = net_fill(
                self.positions.get(symbol, Decimal("0")), signed, price, self.entry_prices.get(symbol)
            )
            if entry is not None:
                self.entry_prices[symbol] = entry
            if pnl is not None:
                self.futures_wallet += pnl
            self.positions[symbol] = after
        order.update(status="FILLED", executed=qty, avg_price=price)

    def _render(self, order: dict[str, Any], answer: str = "query") -> dict[str, Any]:
        if order["algo"]:
            return self._render_algo(order, answer)
        if order["market"] == "spot":
            return self._render_spot(order, answer)
        return self._render_futures(order, answer)

    def _render_algo(self, order: dict[str, Any], answer: str) -> dict[str, Any]:
        """A USD-M conditional order. Queried (GET /fapi/v1/algoOrder, the open list) it has
        the fields of developers.binance.com "Query Algo Order" (tests/venues/recorded/binance/
        usdm_query_algo_order.json), ``actualOrderId`` naming the order its trigger placed;
        the placement's answer keeps the trailing-stop fields the simulator has always sent
        (no REST "New Algo Order" answer has been recorded to check them against)."""
        child = order["child"]
        body: dict[str, Any] = {
            "algoId": order["id"],
            "clientAlgoId": order["client_id"],
            "algoType": "CONDITIONAL",
            "orderType": order["type"],
            "symbol": order["symbol"],
            "side": order["side"],
            "positionSide": "BOTH",
            "timeInForce": "GTC",
            "quantity": fmt(order["qty"]),
            "algoStatus": self._algo_status(order),
        }
        if answer != "new":
            body.update(
                actualOrderId=str(child["id"]) if child else "",
                actualPrice=fmt(child["avg_price"]) if child else "0.00000",
            )
        body.update(triggerPrice=fmt(order["stop_price"]), price=fmt(order["price"]), icebergQuantity=None)
        if answer != "new":
            body.update(
                tpTriggerPrice="0.000",
                tpPrice="0.000",
                slTriggerPrice="0.000",
                slPrice="0.000",
                tpOrderType="",
            )
        body.update(
            selfTradePreventionMode="EXPIRE_MAKER",
            workingType="CONTRACT_PRICE",
            priceMatch="NONE",
            closePosition=False,
            priceProtect=False,
            reduceOnly=order["reduce_only"],
        )
        if answer == "new":
            body.update(activatePrice="", callbackRate="")
        body.update(
            createTime=order["time"],
            updateTime=order["update_time"],
            triggerTime=order["trigger_time"],
            goodTillDate=0,
        )
        return body

    @staticmethod
    def _algo_status(order: dict[str, Any]) -> str:
        """TRIGGERED while the order it placed is in the book, FINISHED once that order is
        filled or cancelled (developers.binance.com USD-M "Event: Algo Order Update")."""
        child = order["child"]
        if order["status"] == "TRIGGERED" and child and child["status"] not in OPEN_STATES:
            return "FINISHED"
        return str(order["status"])

    def _render_spot(self, order: dict[str, Any], answer: str) -> dict[str, Any]:
        """A spot order as Binance answers ``answer``: "new" (POST /api/v3/order, FULL),
        "query" (GET order / openOrders) or "cancel" (DELETE order, with the cancel's own id)."""
        price, quote = fmt(order["price"]), fmt(order["executed"] * order["avg_price"])
        head: dict[str, Any] = {"symbol": order["symbol"]}
        if answer == "cancel":
            head["origClientOrderId"] = order["client_id"]
        head.update(
            orderId=order["id"],
            orderListId=-1,
            clientOrderId=order["cancel_client_id"] if answer == "cancel" else order["client_id"],
        )
        if answer in ("new", "cancel"):
            head["transactTime"] = order["update_time"] if answer == "cancel" else order["time"]
        body = {
            **head,
            "price": price,
            "origQty": fmt(order["qty"]),
            "executedQty": fmt(order["executed"]),
            "origQuoteOrderQty": "0",
            "cummulativeQuoteQty": quote,
            "status": order["status"],
            "timeInForce": "GTC",
            "type": order["type"],
            "side": order["side"],
        }
        if answer == "query":
            body.update(
                stopPrice=fmt(order["stop_price"]),
                icebergQty="0",
                time=order["time"],
                updateTime=order["update_time"],
                isWorking=True,
            )
        if answer in ("new", "query"):
            body["workingTime"] = order["time"]
        if answer == "new":
            body["fills"] = []
        body["selfTradePreventionMode"] = "EXPIRE_MAKER"
        return body

    def _render_futures(self, order: dict[str, Any], answer: str) -> dict[str, Any]:
        """A USD-M order as Binance answers ``answer``: "new" (with cumQty) or "query"/"cancel"
        (the order object, with its creation ``time``)."""
        body: dict[str, Any] = {
            "orderId": order["id"],
            "symbol": order["symbol"],
            "status": order["status"],
            "clientOrderId": order["client_id"],
            "price": fmt(order["price"]),
            "avgPrice": fmt(order["avg_price"]),
            "origQty": fmt(order["qty"]),
            "executedQty": fmt(order["executed"]),
        }
        if answer == "new":
            body["cumQty"] = fmt(order["executed"])
        body.update(
            cumQuote=fmt(order["executed"] * order["avg_price"]),
            timeInForce="GTC",
            type=order["type"],
            reduceOnly=order["reduce_only"],
            closePosition=False,
            side=order["side"],
            positionSide="BOTH",
            stopPrice=fmt(order["stop_price"]),
            workingType="CONTRACT_PRICE",
            priceProtect=False,
            origType=order["type"],
            priceMatch="NONE",
            selfTradePreventionMode="EXPIRE_MAKER",
            goodTillDate=0,
        )
        if answer != "new":
            body["time"] = order["time"]
        body["updateTime"] = order["update_time"]
        return body

    def _find(self, params: dict[str, str], market: str, algo: bool) -> dict[str, Any]:
        order_id = params.get("algoId" if algo else "orderId")
        client_id = params.get("clientAlgoId" if algo else "origClientOrderId")
        with self.lock:
            # Newest first: a client id used again after its first order closed names the new one.
            for order in reversed(self.orders):
                if order["market"] != market or order["algo"] != algo:
                    continue
                if (order_id and str(order["id"]) == order_id) or (
                    client_id and order["client_id"] == client_id
                ):
                    return order
        raise SimReply(400, {"code": -2013, "msg": "Order does not exist."})

    def order_query(self, request: Request, market: str, algo: bool = False) -> dict[str, Any]:
        params = self._signed(request)
        return self._render(self._find(params, market, algo))

    def futures_open_order(self, request: Request) -> dict[str, Any]:
        """GET /fapi/v1/openOrder: the order while it is open; a filled or cancelled one is
        "Order does not exist." (-2013), as Binance answers."""
        params = self._signed(request)
        order = self._find(params, "futures", False)
        if order["status"] not in OPEN_STATES:
            raise SimReply(400, {"code": -2013, "msg": "Order does not exist."})
        return self._render(order)

    def order_cancel(self, request: Request, market: str, algo: bool = False) -> dict[str, Any]:
        params = self._signed(request)
        try:
            order = self._find(params, market, algo)
        except SimReply as exc:
            raise SimReply(400, {"code": -2011, "msg": "Unknown order sent."}) from exc
        with self.lock:
            if order["status"] not in ("NEW", "PARTIALLY_FILLED"):
                raise SimReply(400, {"code": -2011, "msg": "Unknown order sent."})
            order["status"] = "CANCELED"
            order["update_time"] = now_ms()
            # The cancel request's own client id (Binance generates one when none is sent).
            order["cancel_client_id"] = params.get("newClientOrderId") or f"sim-cancel-{next(self._ids)}"
        return self._render(order, "cancel")

    def _open(self, market: str, algo: bool, symbol: str | None) -> list[dict[str, Any]]:
        return [
            o
            for o in self.orders
            if o["market"] == market
            and o["algo"] == algo
            and o["status"] in ("NEW", "PARTIALLY_FILLED")
            and (symbol is None or o["symbol"] == symbol)
        ]

    def open_orders(self, request: Request, market: str, algo: bool = False) -> list[dict[str, Any]]:
        params = self._signed(request)
        symbol = self._symbol(params, market) if params.get("symbol") else None
        with self.lock:
            return [self._render(o) for o in self._open(market, algo, symbol)]

    def cancel_open(self, request: Request, market: str, algo: bool = False) -> Any:
        params = self._signed(request)
        symbol = self._symbol(params, market)
        with self.lock:
            orders = self._open(market, algo, symbol)
            for order in orders:
                order.update(
                    status="CANCELED", update_time=now_ms(), cancel_client_id=f"sim-cancel-{next(self._ids)}"
                )
            if algo:
                return {"code": 200, "msg": "The operation of cancel all open order is done."}
            if not orders and market == "spot":
                raise SimReply(400, {"code": -2011, "msg": "Unknown order sent."})
            return [self._render(o, "cancel") for o in orders]

    def futures_cancel_all(self, request: Request) -> dict[str, Any]:
        params = self._signed(request)
        symbol = self._symbol(params, "futures")
        with self.lock:
            for order in self._open("futures", False, symbol):
                order["status"] = "CANCELED"
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    # --- for tests --------------------------------------------------------------------
    def trigger(self, client_algo_id: str) -> dict[str, Any]:
        """Fire the USD-M conditional order known by ``client_algo_id`` as if its trigger price
        was reached: the algo order becomes TRIGGERED and places a regular order under a new
        ``orderId`` (STOP_MARKET / TAKE_PROFIT_MARKET: MARKET, filled at once, so the algo
        order reads FINISHED; STOP / TAKE_PROFIT: LIMIT at its price, resting). The placed
        order's own client id is not documented; the simulator makes one up. Returns it."""
        with self.lock:
            [algo] = [o for o in self.orders if o["algo"] and o["client_id"] == client_algo_id]
            assert algo["status"] == "NEW", "only a waiting conditional order triggers"
            child = {
                **algo,
                "id": next(self._ids),
                "client_id": f"sim-triggered-{algo['id']}",
                "algo": False,
                "type": "MARKET" if algo["type"].endswith("MARKET") else "LIMIT",
                "stop_price": None,
                "time": now_ms(),
                "child": None,
            }
            child["update_time"] = child["time"]
            if child["type"] == "MARKET":
                self._fill(child)
            self.orders.append(child)
            algo.update(status="TRIGGERED", child=child, trigger_time=now_ms(), update_time=now_ms())
            return child

    def fill_order(self, order_id: int) -> dict[str, Any]:
        """Fill the resting regular order ``order_id`` whole at its limit price, as if the
        market reached it. Returns it."""
        with self.lock:
            [order] = [o for o in self.orders if o["id"] == order_id and not o["algo"]]
            assert order["status"] in OPEN_STATES and order["price"] is not None
            self._fill(order, order["price"])
            order["update_time"] = now_ms()
            return order

    def orders_for(self, client_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [o for o in self.orders if o["client_id"] == client_id]


if __name__ == "__main__":
    run_from_command_line(BinanceSim, 9001)
