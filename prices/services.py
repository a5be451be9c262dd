"""The one price layer: every tick lands here, every reader reads here.

Feeds, ``manage.py publish_price`` and tests all publish through :func:`price_publish` (or its
async twin :func:`price_publish_async`): the tick is normalised (Decimal, whole units where the
instrument trades in whole units), stored in the process's :func:`live.store.live_store`
(in-process, or Redis when ``REDIS_URL`` is set) and pushed to the channel-layer group of the
instrument, which every WebSocket subscriber of ``price:<id>`` joined.
REST and WebSocket read :func:`price_snapshot`, which falls back to the latest daily close, and
both render with :func:`prices.serializers.price_json`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from live import bus
from live.store import live_store
from live.topics import TopicFamily
from prices import calendar
from prices.models import DailyPrice
from prices.records import (
    SOURCE_DAILY_CLOSE,
    PriceRecord,
    instrument_normalize,
    source_of,
    whole_units,
)
from prices.serializers import price_update_text

CHANGE_RATE_PLACES = Decimal("0.0001")


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
        source=fields.get("source") or source_of(fields.get("feed") or ""),
        feed=fields.get("feed") or "manual",
    )


def price_publish(instrument: str, price: Any, **fields: Any) -> PriceRecord:
    """Store one tick as the instrument's latest price, push it to subscribers, return it."""
    record = price_record_build(instrument, price, **fields)
    live_store().set(record.ticker, record.to_store())
    message = _price_message(record)
    if not bus.local_dispatch(message["group"], message["text"]):
        bus.group_send(message["group"], message)
    return record


async def price_publish_async(instrument: str, price: Any, **fields: Any) -> PriceRecord:
    """:func:`price_publish` for feeds running in an event loop."""
    record = price_record_build(instrument, price, **fields)
    live_store().set(record.ticker, record.to_store())
    message = _price_message(record)
    if not bus.local_dispatch(message["group"], message["text"]):
        await bus.group_send_async(message["group"], message)
    return record


# --- reading ----------------------------------------------------------------------------


def price_latest(instrument: str) -> PriceRecord | None:
    """The newest live tick for ``instrument``, or None when the layer has never seen one."""
    data = live_store().get(instrument_normalize(instrument) or instrument)
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
    now = now or timezone.now()
    found: dict[str, PriceRecord] = {}
    for instrument, data in live_store().get_many(instruments).items():
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


# --- pushing to /ws subscribers -------------------------------------------------------------

GROUP_PREFIX = "price."


def price_group(instrument: str) -> str:
    """The channel-layer group of an instrument's subscribers (valid group name)."""
    return bus.group_name(GROUP_PREFIX, instrument)


def _price_message(record: PriceRecord) -> dict[str, Any]:
    # The same staleness rule as a snapshot read, so a push and a read never disagree.
    fresh = replace(record, stale=price_is_stale(record.ticker, record.timestamp, timezone.now()))
    return {"type": "price.update", "group": price_group(record.ticker), "text": price_update_text(fresh)}


def price_snapshot_text(instrument: str) -> str | None:
    """The price_update frame of an instrument's current price, or None when it has none."""
    record = price_snapshot(instrument)
    return price_update_text(record) if record is not None else None


# ``price:<instrument>`` on /ws (registered by PricesConfig.ready).
PRICE_TOPICS = TopicFamily(
    name="price", normalize=instrument_normalize, group=price_group, snapshot=price_snapshot_text
)
