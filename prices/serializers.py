"""The one rendering of a price record, shared by REST and WebSocket.

Money is computed in Decimal everywhere; only here, at the JSON boundary, does it become a
JSON number: an integer for whole prices of instruments priced in won (KRW stocks, KRW crypto
markets), a decimal number otherwise (a KRW coin below 1 won keeps its fraction). ``change_rate`` is a percent, ``volume`` an integer,
``timestamp`` ISO 8601 with its UTC offset.
"""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from typing import Any

from prices.records import PriceRecord, krw_quoted


def json_number(value: Decimal | None, *, whole: bool) -> int | float | None:
    """A Decimal as a JSON number: int when ``whole`` and the value has no fraction, else the
    nearest float (exact for the <= 15 significant digits prices carry)."""
    if value is None:
        return None
    if whole and value == value.to_integral_value():
        return int(value)
    return float(value)


def price_json(record: PriceRecord) -> dict[str, Any]:
    """The record as REST returns it and as WebSocket ``price_update.data`` carries it."""
    whole = krw_quoted(record.ticker)
    return {
        "ticker": record.ticker,
        "price": json_number(record.price, whole=whole),
        "change": json_number(record.change, whole=whole),
        "change_rate": json_number(record.change_rate, whole=False),
        "volume": record.volume,
        "bid_price": json_number(record.bid_price, whole=whole),
        "ask_price": json_number(record.ask_price, whole=whole),
        "timestamp": record.timestamp.astimezone(UTC).isoformat() if record.timestamp else None,
        "source": record.source,
        "stale": record.stale,
        "feed": record.feed,
    }


def price_update_message(record: PriceRecord) -> dict[str, Any]:
    data = price_json(record)
    return {"type": "price_update", "ticker": record.ticker, "data": data, "timestamp": data["timestamp"]}


def price_update_text(record: PriceRecord) -> str:
    """The WebSocket frame, encoded once per tick and fanned out as is."""
    return json.dumps(price_update_message(record), ensure_ascii=False, separators=(",", ":"))


def bar_json(bar: Any) -> dict[str, Any]:
    """One DailyPrice bar for charts, numbers rendered like :func:`price_json`."""
    whole = krw_quoted(bar.ticker)
    return {
        "date": bar.date.isoformat(),
        "open": json_number(bar.open, whole=whole),
        "high": json_number(bar.high, whole=whole),
        "low": json_number(bar.low, whole=whole),
        "close": json_number(bar.close, whole=whole),
        "volume": int(bar.volume) if bar.volume is not None else None,
    }
