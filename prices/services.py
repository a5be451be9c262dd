"""The one price layer: every tick lands here, every reader reads here.

Feeds, ``manage.py publish_price`` and tests all publish through :func:`price_publish` (or its
async twin :func:`price_publish_async`): the tick is normalised (Decimal, whole units where the
instrument trades in whole units), stored in the process's :func:`prices.store.price_store`
(in-process, or Redis when ``REDIS_URL`` is set) and pushed to the channel-layer group of the
instrument, which every WebSocket subscriber of ``price:<id>`` joined.
REST and WebSocket read :func:`price_snapshot`, which falls back to the latest daily close, and
both render with :func:`prices.serializers.price_json`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from prices import calendar
from prices.store import price_store

# A bare Korean code (005930, 123456A, 101TC000) or EXCHANGE:SYMBOL (BINANCE:BTC/USDT, NYSE:BRK.B).
INSTRUMENT_RE = re.compile(r"^(?:[A-Z0-9_]{1,16}:)?[A-Z0-9][A-Z0-9._/\-]{0,39}$")
SOURCE_REALTIME = "realtime"
SOURCE_DAILY_CLOSE = "daily_close"
CHANGE_RATE_PLACES = Decimal("0.0001")


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
            source=data.get("source") or SOURCE_REALTIME,
            feed=data.get("feed") or "",
        )


# --- instruments ------------------------------------------------------------------------


def instrument_for(
    market_type: str, symbol: str, *, exchange: str = "", params: dict[str, Any] | None = None
) -> str:
    """The price-layer id of an instrument: a bare ticker for Korean markets, else EXCHANGE:SYMBOL."""
    params = params or {}
    symbol = symbol.strip().upper()
    if market_type in ("DOMESTIC_STOCK", "DOMESTIC_FUTUREOPTION"):
        # The guide accepts KR005930 for 005930.
        if market_type == "DOMESTIC_STOCK" and len(symbol) == 8 and symbol.startswith("KR"):
            symbol = symbol[2:]
        return symbol
    if market_type in ("SPOT", "FUTURES"):
        exchange = exchange.strip().upper()
        if not exchange or exchange == "PAPER":
            exchange = str(params.get("price_exchange") or "").upper() or (
                "UPBIT" if symbol.endswith("/KRW") else "BINANCE"
            )
        return f"{exchange}:{symbol}"
    default = "NASD" if market_type == "OVERSEAS_STOCK" else "CME"
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


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)  # the float's shortest exact text, never float arithmetic
    try:
        result = Decimal(str(value).replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def _units(value: Decimal | None, whole: bool) -> Decimal | None:
    if value is None:
        return None
    if whole:
        return value.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return value.normalize() if value == value.to_integral_value() else value


# --- publishing -------------------------------------------------------------------------


def price_record_build(instrument: str, price: Any, **fields: Any) -> PriceRecord:
    """Normalise one tick into a :class:`PriceRecord` (no side effects)."""
    instrument = instrument_normalize(instrument) or instrument
    whole = whole_units(instrument)
    price_d = _units(_decimal(price), whole)
    if price_d is None:
        raise ValueError("price is required")
    change = _units(_decimal(fields.get("change")), whole)
    rate = _decimal(fields.get("change_rate"))
    if rate is None and change is not None and price_d - change != 0:
        rate = change / (price_d - change) * 100
    if rate is not None:
        rate = rate.quantize(CHANGE_RATE_PLACES, rounding=ROUND_HALF_UP)
    volume = _decimal(fields.get("volume"))
    bid = fields.get("bid_price", fields.get("bid"))
    ask = fields.get("ask_price", fields.get("ask"))
    timestamp = fields.get("timestamp") or timezone.now()
    if timezone.is_naive(timestamp):
        timestamp = timezone.make_aware(timestamp, calendar.KST)
    return PriceRecord(
        ticker=instrument,
        price=price_d,
        change=change,
        change_rate=rate,
        volume=int(volume) if volume is not None else None,
        bid_price=_units(_decimal(bid), whole),
        ask_price=_units(_decimal(ask), whole),
        timestamp=timestamp,
        source=fields.get("source") or SOURCE_REALTIME,
        feed=fields.get("feed") or "manual",
    )


def price_publish(instrument: str, price: Any, **fields: Any) -> PriceRecord:
    """Store one tick as the instrument's latest price, push it to subscribers, return it."""
    from prices import broadcast

    record = price_record_build(instrument, price, **fields)
    price_store().set(record.ticker, record.to_store())
    broadcast.price_push(record)
    return record


async def price_publish_async(instrument: str, price: Any, **fields: Any) -> PriceRecord:
    """:func:`price_publish` for feeds running in an event loop."""
    from prices import broadcast

    record = price_record_build(instrument, price, **fields)
    price_store().set(record.ticker, record.to_store())
    await broadcast.price_push_async(record)
    return record


# --- reading ----------------------------------------------------------------------------


def price_latest(instrument: str) -> PriceRecord | None:
    """The newest live tick for ``instrument``, or None when the layer has never seen one."""
    data = price_store().get(instrument_normalize(instrument) or instrument)
    return PriceRecord.from_store(data) if data else None


def price_is_stale(instrument: str, moment: datetime | date | None, now: datetime) -> bool:
    """Whether a price is older than the instrument's last trading day.

    Korean codes use the KRX calendar (a day counts once its session closed); crypto pairs
    trade around the clock (stale after 24 h); other venues count weekdays only.
    """
    if moment is None:
        return True
    if "/" in instrument:
        if isinstance(moment, datetime):
            return (now - moment).total_seconds() > 86400
        return (now.astimezone(calendar.KST).date() - moment).days > 1
    day = moment.astimezone(calendar.KST).date() if isinstance(moment, datetime) else moment
    if ":" not in instrument:
        return day < calendar.last_closed_trading_day(now)
    last = now.astimezone(calendar.KST).date() - timedelta(days=1)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return day < last


def price_snapshots(instruments: list[str], *, now: datetime | None = None) -> dict[str, PriceRecord]:
    """Current record per instrument: the live tick, else the latest daily close.

    Instruments with neither are absent from the result.
    """
    from prices.models import DailyPrice

    now = now or timezone.now()
    found: dict[str, PriceRecord] = {}
    for instrument, data in price_store().get_many(instruments).items():
        record = PriceRecord.from_store(data)
        found[instrument] = replace(record, stale=price_is_stale(instrument, record.timestamp, now))
    missing = [i for i in instruments if i not in found]
    if missing:
        for bar in DailyPrice.objects.latest_bars(missing):
            found[bar.ticker] = _daily_record(bar, now)
    return found


def price_snapshot(instrument: str, *, now: datetime | None = None) -> PriceRecord | None:
    return price_snapshots([instrument], now=now).get(instrument)


def _daily_record(last: Any, now: datetime) -> PriceRecord:
    """The daily-close fallback: change and change rate against the previous bar's close."""
    instrument = last.ticker
    whole = whole_units(instrument)
    change = rate = None
    if last.prev_close:
        change = last.close - last.prev_close
        rate = (change / last.prev_close * 100).quantize(CHANGE_RATE_PLACES, rounding=ROUND_HALF_UP)
    return PriceRecord(
        ticker=instrument,
        price=_units(last.close, whole),  # type: ignore[arg-type]
        change=_units(change, whole),
        change_rate=rate,
        volume=int(last.volume) if last.volume is not None else None,
        timestamp=calendar.close_time(last.date),
        source=SOURCE_DAILY_CLOSE,
        stale=price_is_stale(instrument, last.date, now),
        feed="daily",
    )
