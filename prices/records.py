"""Price records and instrument ids: the plain values of the price layer, with no I/O.

A :class:`PriceRecord` is one instrument's price at one moment; instrument ids are a bare
Korean code (005930) or EXCHANGE:SYMBOL (BINANCE:BTC/USDT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType

# A bare Korean code (005930, 123456A, 101TC000) or EXCHANGE:SYMBOL (BINANCE:BTC/USDT, NYSE:BRK.B).
INSTRUMENT_RE = re.compile(r"^(?:[A-Z0-9_]{1,16}:)?[A-Z0-9][A-Z0-9._/\-]{0,39}$")
SOURCE_REALTIME = "realtime"
SOURCE_DAILY_CLOSE = "daily_close"
# A made-up tick (the simulated feed of a demo system): never shown or served as "realtime".
SOURCE_SIMULATED = "simulated"


def source_of(feed: str) -> str:
    """The source of a tick that does not name one: the simulated feed's ticks are simulated."""
    return SOURCE_SIMULATED if feed == "simulated" else SOURCE_REALTIME


@dataclass(frozen=True)
class PriceRecord:
    """One instrument's price at one moment. Money fields are Decimal."""

    ticker: str
    price: Decimal
    change: Decimal | None = None
    change_rate: Decimal | None = None  # percent
    volume: int | None = None
    bid_price: Decimal | None = None
    ask_price: Decimal | None = None
    timestamp: datetime | None = None
    source: str = SOURCE_REALTIME
    stale: bool = False
    # Which producer wrote it: simulated, kis, ccxt, manual (publish_price), daily.
    feed: str = ""

    def to_store(self) -> dict[str, Any]:
        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "ticker": self.ticker,
            "price": str(self.price),
            "change": text(self.change),
            "change_rate": text(self.change_rate),
            "volume": self.volume,
            "bid_price": text(self.bid_price),
            "ask_price": text(self.ask_price),
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "source": self.source,
            "feed": self.feed,
        }

    @classmethod
    def from_store(cls, data: dict[str, Any]) -> PriceRecord:
        def dec(value: str | None) -> Decimal | None:
            return None if value is None else Decimal(value)

        return cls(
            ticker=data["ticker"],
            price=Decimal(data["price"]),
            change=dec(data.get("change")),
            change_rate=dec(data.get("change_rate")),
            volume=data.get("volume"),
            bid_price=dec(data.get("bid_price")),
            ask_price=dec(data.get("ask_price")),
            timestamp=datetime.fromisoformat(data["timestamp"]) if data.get("timestamp") else None,
            source=data.get("source") or source_of(data.get("feed") or ""),
            feed=data.get("feed") or "",
        )


# --- instruments ------------------------------------------------------------------------


def instrument_for(
    market_type: str, symbol: str, *, exchange: str = "", params: dict[str, Any] | None = None
) -> str:
    """The price-layer id of an instrument: a bare ticker for Korean markets, else EXCHANGE:SYMBOL."""
    params = params or {}
    symbol = symbol.strip().upper()
    if market_type in (MarketType.DOMESTIC_STOCK, MarketType.DOMESTIC_FUTUREOPTION):
        # The guide accepts KR005930 for 005930.
        if market_type == MarketType.DOMESTIC_STOCK and len(symbol) == 8 and symbol.startswith("KR"):
            symbol = symbol[2:]
        return symbol
    if market_type in CRYPTO_MARKETS:
        exchange = exchange.strip().upper()
        if not exchange or exchange == "PAPER":
            exchange = str(params.get("price_exchange") or "").upper() or (
                "UPBIT" if symbol.endswith("/KRW") else "BINANCE"
            )
        return f"{exchange}:{symbol}"
    default = "NASD" if market_type == MarketType.OVERSEAS_STOCK else "CME"
    return f"{str(params.get('exchange_code') or default).upper()}:{symbol}"


def instrument_normalize(raw: str) -> str | None:
    """The canonical id for user input (upper case, trimmed), or None when it is not an id."""
    value = (raw or "").strip().upper()
    return value if INSTRUMENT_RE.match(value) else None


def is_kr_stock(instrument: str) -> bool:
    """A KRX stock/ETF code (6 characters, or 7 with a trailing class letter)."""
    return ":" not in instrument and len(instrument) in (6, 7)


def whole_units(instrument: str) -> bool:
    """True when the instrument trades in whole won only (KRX stocks): prices are rounded."""
    return is_kr_stock(instrument)


def krw_quoted(instrument: str) -> bool:
    """True when the instrument is priced in won (KRX stocks, KRW crypto markets): whole prices
    are shown as integers. KRW coins can trade below 1 won (Upbit ticks go to 0.0001 there),
    so only KRX prices are rounded (:func:`whole_units`)."""
    return is_kr_stock(instrument) or instrument.endswith("/KRW")
