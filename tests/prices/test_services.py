"""The price layer's rules: ids, number types, the daily-close fallback, staleness, groups."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal

import pytest

from prices import calendar
from prices.models import DailyPrice
from prices.records import instrument_for
from prices.serializers import price_json
from prices.services import price_group, price_latest, price_publish, price_snapshot


@pytest.mark.parametrize(
    ("market_type", "symbol", "exchange", "params", "expected"),
    [
        ("DOMESTIC_STOCK", "005930", "", None, "005930"),
        ("DOMESTIC_STOCK", "KR005930", "KIS", None, "005930"),
        ("DOMESTIC_FUTUREOPTION", "101TC000", "KIS", None, "101TC000"),
        ("SPOT", "BTC/USDT", "PAPER", None, "BINANCE:BTC/USDT"),
        ("SPOT", "BTC/KRW", "PAPER", None, "UPBIT:BTC/KRW"),
        ("SPOT", "ETH/USDT", "PAPER", {"price_exchange": "BYBIT"}, "BYBIT:ETH/USDT"),
        ("FUTURES", "BTC/USDT", "BINANCE", None, "BINANCE:BTC/USDT"),
        ("OVERSEAS_STOCK", "AAPL", "KIS", None, "NASD:AAPL"),
        ("OVERSEAS_STOCK", "BRK.B", "KIS", {"exchange_code": "NYSE"}, "NYSE:BRK.B"),
        ("OVERSEAS_FUTUREOPTION", "ESZ4", "KIS", None, "CME:ESZ4"),
    ],
)
def test_instrument_ids(
    market_type: str, symbol: str, exchange: str, params: dict | None, expected: str
) -> None:
    assert instrument_for(market_type, symbol, exchange=exchange, params=params) == expected


def test_kr_stock_renders_integers_and_keeps_decimal_inside() -> None:
    record = price_publish("005930", "158600.0", change="-700", volume="36358081", bid="158500", ask="158600")
    body = price_json(record)
    assert body["price"] == 158600 and type(body["price"]) is int
    assert type(body["change"]) is int and type(body["bid_price"]) is int and type(body["ask_price"]) is int
    assert body["change_rate"] == pytest.approx(-0.4394)
    assert type(body["volume"]) is int
    assert price_latest("005930").price == Decimal("158600")


def test_crypto_renders_decimals() -> None:
    record = price_publish("binance:btc/usdt", Decimal("67123.45"), change="-120.5", volume="1234.9")
    body = price_json(record)
    assert body["ticker"] == "BINANCE:BTC/USDT"
    assert body["price"] == 67123.45 and type(body["price"]) is float
    assert body["volume"] == 1234
    assert price_latest("BINANCE:BTC/USDT").price == Decimal("67123.45")


def test_timestamp_is_iso8601_with_offset() -> None:
    body = price_json(price_publish("000660", 128000))
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", body["timestamp"])


def _bar(ticker: str, day: str, close: str) -> DailyPrice:
    value = Decimal(close)
    return DailyPrice.objects.create(
        ticker=ticker,
        date=date.fromisoformat(day),
        open=value,
        high=value,
        low=value,
        close=value,
        volume=1000,
    )


@pytest.mark.django_db
def test_daily_close_fallback_has_change_from_previous_close() -> None:
    _bar("005930", "2025-02-20", "58400")
    _bar("005930", "2025-02-21", "58200")
    now = datetime(2025, 2, 21, 16, 0, tzinfo=calendar.KST)
    body = price_json(price_snapshot("005930", now=now))
    assert body["source"] == "daily_close"
    assert body["price"] == 58200 and body["change"] == -200
    assert body["change_rate"] == pytest.approx(-0.3425)
    assert body["stale"] is False
    assert body["timestamp"] == "2025-02-21T06:30:00+00:00"


@pytest.mark.django_db
def test_daily_close_is_stale_only_when_older_than_last_trading_day() -> None:
    # 16-18 Feb 2026 is Seollal: on the 19th before the close, the last session is the 13th.
    _bar("000660", "2026-02-13", "128000")
    _bar("035420", "2026-02-12", "190000")
    now = datetime(2026, 2, 19, 10, 0, tzinfo=calendar.KST)
    assert price_snapshot("000660", now=now).stale is False
    assert price_snapshot("035420", now=now).stale is True


@pytest.mark.django_db
def test_live_tick_wins_over_daily_close() -> None:
    _bar("005930", "2025-02-21", "58200")
    price_publish("005930", 158600)
    record = price_snapshot("005930")
    assert record.source == "realtime" and record.price == Decimal("158600")


def test_group_names_are_valid_and_distinct() -> None:
    ids = ["BINANCE:BTC/USDT", "BINANCE:BTC_USDT", "CL-DEC24", "6E_Z4", "NYSE:BRK.B", "005930"]
    groups = [price_group(i) for i in ids]
    assert len(set(groups)) == len(ids)
    for group in groups:
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,99}", group)


def test_trading_calendar_skips_weekends_and_holidays() -> None:
    assert calendar.previous_trading_day(date(2026, 2, 19)) == date(2026, 2, 13)
    assert calendar.trading_days_between(date(2026, 2, 13), date(2026, 2, 23)) == 3
