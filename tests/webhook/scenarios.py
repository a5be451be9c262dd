"""The seed guide's 45 webhook scenarios, as data shared by the intake and execution tests.

Each entry: (id, market_type, fields sent besides group_name/token, expected normalized order).
"""

from __future__ import annotations

from typing import Any

Scenario = tuple[str, str, dict[str, Any], dict[str, Any]]


def _o(
    order_type: str, side: str, qty: str, price: str | None = None, stop: str | None = None
) -> dict[str, Any]:
    return {"order_type": order_type, "side": side, "qty_per": qty, "price": price, "stop_price": stop}


CRYPTO: list[Scenario] = [
    (
        "c01-spot-market-buy",
        "SPOT",
        {"symbol": "BTC/USDT", "currency": "USDT", "order_type": "MARKET", "side": "buy", "qty_per": 10},
        _o("MARKET", "BUY", "10"),
    ),
    (
        "c02-spot-market-sell",
        "SPOT",
        {"symbol": "ETH/USDT", "currency": "USDT", "order_type": "MARKET", "side": "sell", "qty_per": 5},
        _o("MARKET", "SELL", "5"),
    ),
    (
        "c03-spot-limit-buy",
        "SPOT",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "LIMIT",
            "side": "buy",
            "price": 90000,
            "qty_per": 10,
        },
        _o("LIMIT", "BUY", "10", "90000"),
    ),
    (
        "c04-spot-limit-sell",
        "SPOT",
        {
            "symbol": "ETH/USDT",
            "currency": "USDT",
            "order_type": "LIMIT",
            "side": "sell",
            "price": 3500,
            "qty_per": 20,
        },
        _o("LIMIT", "SELL", "20", "3500"),
    ),
    (
        "c05-spot-stop-market-sell",
        "SPOT",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "STOP_MARKET",
            "side": "sell",
            "stop_price": 95000,
            "qty_per": 10,
        },
        _o("STOP_MARKET", "SELL", "10", None, "95000"),
    ),
    (
        "c06-futures-market-long",
        "FUTURES",
        {"symbol": "BTC/USDT", "currency": "USDT", "order_type": "MARKET", "side": "long", "qty_per": 20},
        _o("MARKET", "BUY", "20"),
    ),
    (
        "c07-futures-market-short",
        "FUTURES",
        {"symbol": "ETH/USDT", "currency": "USDT", "order_type": "MARKET", "side": "short", "qty_per": 15},
        _o("MARKET", "SELL", "15"),
    ),
    (
        "c08-futures-limit-long",
        "FUTURES",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "LIMIT",
            "side": "long",
            "price": 92000,
            "qty_per": 20,
        },
        _o("LIMIT", "BUY", "20", "92000"),
    ),
    (
        "c09-futures-limit-short",
        "FUTURES",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "LIMIT",
            "side": "short",
            "price": 105000,
            "qty_per": 15,
        },
        _o("LIMIT", "SELL", "15", "105000"),
    ),
    (
        "c10-futures-stop-market-long-close",
        "FUTURES",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "STOP_MARKET",
            "side": "sell",
            "stop_price": 90000,
            "qty_per": 20,
        },
        _o("STOP_MARKET", "SELL", "20", None, "90000"),
    ),
    (
        "c11-futures-stop-market-short-close",
        "FUTURES",
        {
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "STOP_MARKET",
            "side": "buy",
            "stop_price": 105000,
            "qty_per": 15,
        },
        _o("STOP_MARKET", "BUY", "15", None, "105000"),
    ),
    (
        "c12-futures-close-100",
        "FUTURES",
        {"symbol": "BTC/USDT", "currency": "USDT", "order_type": "MARKET", "side": "sell", "qty_per": -100},
        _o("MARKET", "SELL", "-100"),
    ),
    (
        "c13-upbit-krw-market-buy",
        "SPOT",
        {"symbol": "BTC/KRW", "currency": "KRW", "order_type": "MARKET", "side": "buy", "qty_per": 10},
        _o("MARKET", "BUY", "10"),
    ),
    (
        "c14-cancel-symbol",
        "SPOT",
        {"symbol": "ETH/USDT", "order_type": "CANCEL_ALL_ORDER"},
        _o("CANCEL_ALL_ORDER", "", ""),
    ),
    ("c15-cancel-all-symbols", "SPOT", {"order_type": "CANCEL_ALL_ORDER"}, _o("CANCEL_ALL_ORDER", "", "")),
]

DOMESTIC_STOCK: list[Scenario] = [
    (
        "k01-market-buy",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "MARKET", "side": "buy", "qty_per": 100},
        _o("MARKET", "BUY", "100"),
    ),
    (
        "k02-market-sell",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "MARKET", "side": "sell", "qty_per": 50},
        _o("MARKET", "SELL", "50"),
    ),
    (
        "k03-limit-buy",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "LIMIT", "side": "buy", "price": 70000, "qty_per": 100},
        _o("LIMIT", "BUY", "100", "70000"),
    ),
    (
        "k04-limit-sell",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "LIMIT", "side": "sell", "price": 75000, "qty_per": 100},
        _o("LIMIT", "SELL", "100", "75000"),
    ),
    (
        "k05-conditional-limit-buy",
        "DOMESTIC_STOCK",
        {
            "symbol": "005930",
            "order_type": "CONDITIONAL_LIMIT",
            "side": "buy",
            "price": 72000,
            "qty_per": 100,
        },
        _o("CONDITIONAL_LIMIT", "BUY", "100", "72000"),
    ),
    (
        "k06-best-limit-buy",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "BEST_LIMIT", "side": "buy", "qty_per": 100},
        _o("BEST_LIMIT", "BUY", "100"),
    ),
    (
        "k07-pre-market-buy",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "PRE_MARKET", "side": "buy", "price": 71000, "qty_per": 100},
        _o("PRE_MARKET", "BUY", "100", "71000"),
    ),
    (
        "k08-after-market-sell",
        "DOMESTIC_STOCK",
        {"symbol": "005930", "order_type": "AFTER_MARKET", "side": "sell", "price": 73000, "qty_per": 100},
        _o("AFTER_MARKET", "SELL", "100", "73000"),
    ),
    (
        "k09-etf-market-buy",
        "DOMESTIC_STOCK",
        {"symbol": "069500", "order_type": "MARKET", "side": "buy", "qty_per": 50},
        _o("MARKET", "BUY", "50"),
    ),
    (
        "k10-limit-sell-hynix",
        "DOMESTIC_STOCK",
        {"symbol": "000660", "order_type": "LIMIT", "side": "sell", "price": 140000, "qty_per": 20},
        _o("LIMIT", "SELL", "20", "140000"),
    ),
]


def _ovs(
    symbol: str,
    order_type: str,
    side: str,
    qty: int,
    code: str,
    currency: str,
    price: str | None = None,
    stop: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "order_type": order_type,
        "side": side,
        "qty_per": qty,
        "params": {"exchange_code": code, "currency": currency},
    }
    if price:
        body["price"] = price
    if stop:
        body["stop_price"] = stop
    return body


OVERSEAS_STOCK: list[Scenario] = [
    (
        "o01-aapl-market-buy",
        "OVERSEAS_STOCK",
        _ovs("AAPL", "MARKET", "buy", 10, "NASD", "USD"),
        _o("MARKET", "BUY", "10"),
    ),
    (
        "o02-tsla-limit-buy",
        "OVERSEAS_STOCK",
        _ovs("TSLA", "LIMIT", "buy", 5, "NYSE", "USD", "250.50"),
        _o("LIMIT", "BUY", "5", "250.50"),
    ),
    (
        "o03-msft-market-sell",
        "OVERSEAS_STOCK",
        _ovs("MSFT", "MARKET", "sell", 8, "NASD", "USD"),
        _o("MARKET", "SELL", "8"),
    ),
    (
        "o04-brkb-limit-sell",
        "OVERSEAS_STOCK",
        _ovs("BRK.B", "LIMIT", "sell", 3, "NYSE", "USD", "420.00"),
        _o("LIMIT", "SELL", "3", "420.00"),
    ),
    (
        "o05-nvda-stop-limit-sell",
        "OVERSEAS_STOCK",
        _ovs("NVDA", "STOP_LIMIT", "sell", 5, "NASD", "USD", "480.00", "485.00"),
        _o("STOP_LIMIT", "SELL", "5", "480.00", "485.00"),
    ),
    (
        "o06-alibaba-hkex-market-buy",
        "OVERSEAS_STOCK",
        _ovs("9988", "MARKET", "buy", 20, "SEHK", "HKD"),
        _o("MARKET", "BUY", "20"),
    ),
    (
        "o07-toyota-tse-market-buy",
        "OVERSEAS_STOCK",
        _ovs("7203", "MARKET", "buy", 100, "TSE", "JPY"),
        _o("MARKET", "BUY", "100"),
    ),
    (
        "o08-vinamilk-limit-buy",
        "OVERSEAS_STOCK",
        _ovs("VNM", "LIMIT", "buy", 50, "HCM", "VND", "85000"),
        _o("LIMIT", "BUY", "50", "85000"),
    ),
    (
        "o09-sap-xetra-market-buy",
        "OVERSEAS_STOCK",
        _ovs("SAP", "MARKET", "buy", 5, "XETRA", "EUR"),
        _o("MARKET", "BUY", "5"),
    ),
    (
        "o10-bp-lse-limit-buy",
        "OVERSEAS_STOCK",
        _ovs("BP", "LIMIT", "buy", 100, "LSE", "GBP", "5.50"),
        _o("LIMIT", "BUY", "100", "5.50"),
    ),
]

DOMESTIC_FO: list[Scenario] = [
    (
        "f01-kospi200-market-buy",
        "DOMESTIC_FUTUREOPTION",
        {
            "symbol": "101TC000",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 1,
            "params": {"position_action": "OPEN"},
        },
        _o("MARKET", "BUY", "1"),
    ),
    (
        "f02-kospi200-limit-buy",
        "DOMESTIC_FUTUREOPTION",
        {
            "symbol": "101TC000",
            "order_type": "LIMIT",
            "side": "buy",
            "price": "320.50",
            "qty_per": 2,
            "params": {"position_action": "OPEN"},
        },
        _o("LIMIT", "BUY", "2", "320.50"),
    ),
    (
        "f03-kospi200-market-sell-close",
        "DOMESTIC_FUTUREOPTION",
        {
            "symbol": "101TC000",
            "order_type": "MARKET",
            "side": "sell",
            "qty_per": 2,
            "params": {"position_action": "CLOSE"},
        },
        _o("MARKET", "SELL", "2"),
    ),
    (
        "f04-put-limit-buy",
        "DOMESTIC_FUTUREOPTION",
        {
            "symbol": "201PC260",
            "order_type": "LIMIT",
            "side": "buy",
            "price": "5.00",
            "qty_per": 10,
            "params": {"option_type": "PUT", "strike_price": "260.00"},
        },
        _o("LIMIT", "BUY", "10", "5.00"),
    ),
    (
        "f05-call-market-sell",
        "DOMESTIC_FUTUREOPTION",
        {
            "symbol": "201CA320",
            "order_type": "MARKET",
            "side": "sell",
            "qty_per": 5,
            "params": {"option_type": "CALL", "strike_price": "320.00"},
        },
        _o("MARKET", "SELL", "5"),
    ),
]


def _gfo(
    symbol: str, order_type: str, side: str, code: str, month: str, price: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "order_type": order_type,
        "side": side,
        "qty_per": 1,
        "params": {"exchange_code": code, "contract_month": month, "currency": "USD"},
    }
    if price:
        body["price"] = price
    return body


OVERSEAS_FO: list[Scenario] = [
    (
        "g01-es-market-buy",
        "OVERSEAS_FUTUREOPTION",
        _gfo("ESZ4", "MARKET", "buy", "CME", "Z4"),
        _o("MARKET", "BUY", "1"),
    ),
    (
        "g02-nq-limit-buy",
        "OVERSEAS_FUTUREOPTION",
        _gfo("NQH5", "LIMIT", "buy", "CME", "H5", "16500.00"),
        _o("LIMIT", "BUY", "1", "16500.00"),
    ),
    (
        "g03-cl-market-buy",
        "OVERSEAS_FUTUREOPTION",
        _gfo("CL-DEC24", "MARKET", "buy", "NYMEX", "DEC24"),
        _o("MARKET", "BUY", "1"),
    ),
    (
        "g04-gold-limit-buy",
        "OVERSEAS_FUTUREOPTION",
        _gfo("GCZ24", "LIMIT", "buy", "COMEX", "Z4", "2050.00"),
        _o("LIMIT", "BUY", "1", "2050.00"),
    ),
    (
        "g05-euro-fx-market-sell",
        "OVERSEAS_FUTUREOPTION",
        _gfo("6E_Z4", "MARKET", "sell", "CME", "Z4"),
        _o("MARKET", "SELL", "1"),
    ),
]

ALL: list[Scenario] = CRYPTO + DOMESTIC_STOCK + OVERSEAS_STOCK + DOMESTIC_FO + OVERSEAS_FO
assert len(ALL) == 45
