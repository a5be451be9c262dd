"""REST endpoints of the price layer: shapes, limits, errors, permissions, schema."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from prices import calendar
from prices.models import DailyPrice, Instrument
from prices.services import price_publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(User.objects.create_user("ops", password="x", is_staff=True))
    return client


def _bar(ticker: str, day: date, close: str, volume: int = 1000) -> None:
    value = Decimal(close)
    DailyPrice.objects.create(
        ticker=ticker, date=day, open=value, high=value, low=value, close=value, volume=volume
    )


def test_batch_returns_prices_and_missing(client: Client) -> None:
    price_publish("005930", 158600, change=-700, volume=36358081)
    _bar("000660", date(2025, 2, 21), "128000")
    response = client.get("/api/kr/realtime-prices?tickers=005930,000660,999999")
    assert response.status_code == 200
    body = response.json()
    assert set(body["prices"]) == {"005930", "000660"}
    assert body["prices"]["005930"]["price"] == 158600 and body["prices"]["005930"]["source"] == "realtime"
    assert body["prices"]["000660"]["source"] == "daily_close" and body["prices"]["000660"]["stale"] is True
    assert body["missing"] == ["999999"]


def test_batch_accepts_200_and_refuses_201(client: Client) -> None:
    tickers = ",".join(f"{n:06d}" for n in range(200))
    assert client.get(f"/api/kr/realtime-prices?tickers={tickers}").status_code == 200
    response = client.get(f"/api/kr/realtime-prices?tickers={tickers},999999")
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_tickers" and response.json()["status"] == 400


def test_batch_without_tickers_is_400(client: Client) -> None:
    response = client.get("/api/kr/realtime-prices")
    assert response.status_code == 400 and response.json()["code"] == "missing_field"


def test_single_ticker(client: Client) -> None:
    price_publish("005930", 158600)
    body = client.get("/api/kr/stocks/005930/realtime-price").json()
    assert body["ticker"] == "005930" and body["price"] == 158600


def test_unknown_ticker_is_404_envelope(client: Client) -> None:
    response = client.get("/api/kr/stocks/000020/realtime-price", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert response.json() == {"error": "No price for 000020.", "status": 404, "code": "price_not_found"}


def test_unknown_ticker_message_is_korean_by_default(client: Client) -> None:
    response = client.get("/api/kr/stocks/000020/realtime-price")
    assert response.json()["error"] == "가격 정보가 없는 종목입니다: 000020"


def test_generic_ids_with_exchange_and_slash(client: Client) -> None:
    price_publish("BINANCE:BTC/USDT", "67123.45")
    price_publish("NYSE:BRK.B", "410.5")
    body = client.get("/api/prices?ids=BINANCE:BTC/USDT,NYSE:BRK.B,UPBIT:XRP/KRW").json()
    assert body["prices"]["BINANCE:BTC/USDT"]["price"] == 67123.45
    assert body["prices"]["NYSE:BRK.B"]["price"] == 410.5
    assert body["missing"] == ["UPBIT:XRP/KRW"]
    single = client.get("/api/prices/BINANCE:BTC/USDT").json()
    assert single == body["prices"]["BINANCE:BTC/USDT"]
    assert client.get("/api/prices/BINANCE:BTC%2FUSDT").json()["price"] == 67123.45


def test_daily_bars_for_charts(client: Client) -> None:
    _bar("005930", date(2025, 2, 20), "58400", 100)
    _bar("005930", date(2025, 2, 21), "58200", 200)
    _bar("005930", date(2025, 1, 2), "53000", 300)
    body = client.get("/api/kr/stocks/005930/daily?from=2025-02-01&to=2025-02-28").json()
    assert [b["date"] for b in body["bars"]] == ["2025-02-20", "2025-02-21"]
    assert body["bars"][1] == {
        "date": "2025-02-21",
        "open": 58200,
        "high": 58200,
        "low": 58200,
        "close": 58200,
        "volume": 200,
    }


def test_daily_bars_bad_date_is_400(client: Client) -> None:
    _bar("005930", date(2025, 2, 20), "58400")
    response = client.get("/api/kr/stocks/005930/daily?from=yesterday")
    assert response.status_code == 400 and response.json()["code"] == "invalid_field"


@pytest.mark.parametrize(
    ("query", "start"),
    [
        ("to=0001-01-01", "0001-01-01"),
        ("from=0001-01-02&to=0001-01-02", "0001-01-02"),
        ("to=0001-07-01", "0001-01-01"),
    ],
)
def test_daily_bars_for_the_first_days_there_are_answer_200(client: Client, query: str, start: str) -> None:
    """The default `from` (a year before `to`) was worked out before the date was read, and a
    year before 0001 is no date: a 500 with or without a `from`."""
    _bar("005930", date(2025, 2, 20), "58400")
    response = client.get(f"/api/kr/stocks/005930/daily?{query}")
    assert response.status_code == 200 and response.json()["from"] == start
    assert response.json()["bars"] == []


def test_gap_report_lists_missing_and_outdated_and_marks_halted(staff_client: Client) -> None:
    last = calendar.last_closed_trading_day(timezone.now())
    _bar("005930", last, "58200")
    _bar("000020", date(2023, 10, 5), "9730")
    _bar("035420", calendar.previous_trading_day(calendar.previous_trading_day(last)), "190000")
    Instrument.objects.create(ticker="000020", name="동화약품", halted=True, halted_reason="거래정지")
    Instrument.objects.create(ticker="123456", name="no data")
    body = staff_client.get("/api/prices/gaps?days=1").json()
    gaps = {g["ticker"]: g for g in body["gaps"]}
    assert set(gaps) == {"000020", "123456", "035420"}
    assert gaps["000020"]["reason"] == "outdated" and gaps["000020"]["halted"] is True
    assert gaps["123456"]["reason"] == "no_data" and gaps["123456"]["last_date"] is None
    assert gaps["035420"]["trading_days_behind"] == 2
    assert body["as_of"] == last.isoformat()
    assert "035420" not in {g["ticker"] for g in staff_client.get("/api/prices/gaps?days=2").json()["gaps"]}


def test_gap_report_rejects_bad_days(staff_client: Client) -> None:
    assert staff_client.get("/api/prices/gaps?days=-1").json()["code"] == "invalid_field"


@pytest.mark.parametrize("path", ["/api/prices/status", "/api/prices/gaps"])
def test_operational_endpoints_are_staff_only(client: Client, path: str) -> None:
    assert client.get(path).status_code == 401
    client.force_login(User.objects.create_user("user", password="x"))
    assert client.get(path).status_code == 403


def test_status_shows_feeds_websocket_and_cache(staff_client: Client) -> None:
    from prices.health import FeedHealth

    health = FeedHealth("simulated", simulated=True)
    health.started()
    price_publish("005930", 1000)
    health.tick("005930")
    health.reconnected()
    body = staff_client.get("/api/prices/status").json()
    feed = next(f for f in body["feeds"] if f["feed"] == "simulated")
    assert feed["running"] is True and feed["simulated"] is True
    assert feed["ticks"] == 1 and feed["reconnects"] == 1 and feed["last_tick_at"]
    assert body["websocket"]["active_connections"] >= 0 and "subscribed_topics" in body["websocket"]
    assert body["cache"]["instruments"] == 1


def test_admin_status_page(staff_client: Client) -> None:
    User.objects.filter(username="ops").update(is_superuser=True)
    response = staff_client.get("/admin/prices/instrument/status/")
    assert response.status_code == 200
    assert "WebSocket" in response.content.decode()


def test_endpoints_are_in_openapi_schema(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in (
        "/api/kr/realtime-prices",
        "/api/kr/stocks/{ticker}/realtime-price",
        "/api/kr/stocks/{ticker}/daily",
        "/api/prices/status",
        "/api/prices/gaps",
        "/api/prices/{instrument}",
    ):
        assert path in schema, path


def test_paper_fill_price_is_the_number_users_see(client: Client) -> None:
    from prices.services import price_latest

    price_publish("UPBIT:BTC/KRW", "92345678")
    shown = client.get("/api/prices/UPBIT:BTC/KRW").json()["price"]
    assert price_latest("UPBIT:BTC/KRW").price == Decimal(shown) and type(shown) is int
    assert timedelta(0) <= timezone.now() - price_latest("UPBIT:BTC/KRW").timestamp


def test_daily_bars_under_generic_id(client: Client) -> None:
    _bar("BINANCE:BTC/USDT", date(2025, 2, 21), "96500.75")
    body = client.get("/api/prices/BINANCE:BTC/USDT/daily?from=2025-02-01&to=2025-02-28").json()
    assert body["ticker"] == "BINANCE:BTC/USDT" and body["bars"][0]["close"] == 96500.75


def test_krw_coins_below_one_won_keep_their_fraction(client: Client) -> None:
    price_publish("UPBIT:XRP/KRW", "0.5432")
    price_publish("UPBIT:BTC/KRW", "95000000")
    price_publish("005930", "70000.4")

    assert client.get("/api/prices/UPBIT:XRP/KRW").json()["price"] == 0.5432
    btc = client.get("/api/prices/UPBIT:BTC/KRW").json()["price"]
    assert btc == 95000000 and type(btc) is int
    stock = client.get("/api/prices/005930").json()["price"]
    assert stock == 70000 and type(stock) is int  # KRX trades in whole won
