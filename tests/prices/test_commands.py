"""Management commands: collect_daily (CSV), publish_price, and the feeds they share the layer with."""

from __future__ import annotations

import io
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import feeds
from prices.health import feed_statuses
from prices.models import DailyPrice
from prices.serializers import price_json
from prices.services import price_latest, price_snapshot
from prices.watchlist import DEMO_INSTRUMENTS

CSV = """ticker,date,open,high,low,close,volume
005930,2025-02-20,58000,58600,57900,58400,20000000
005930,2025-02-21,58300,58500,58100,58200,22198428
BINANCE:BTC/USDT,2025-02-21,96000.5,97000.25,95000,96500.75,1234.5
"""


@pytest.mark.django_db
def test_collect_daily_from_csv_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(CSV)
    out = io.StringIO()
    call_command("collect_daily", "--csv", str(path), stdout=out)
    assert "3" in out.getvalue()
    assert DailyPrice.objects.count() == 3
    path.write_text(CSV.replace("58200,22198428", "58300,22198428"))
    call_command("collect_daily", "--csv", str(path), stdout=io.StringIO())
    assert DailyPrice.objects.count() == 3
    bar = DailyPrice.objects.get(ticker="005930", date=date(2025, 2, 21))
    assert bar.close == Decimal("58300")
    assert DailyPrice.objects.get(ticker="BINANCE:BTC/USDT").close == Decimal("96500.75")
    assert price_json(price_snapshot("005930"))["change"] == -100


@pytest.mark.django_db
def test_collect_daily_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ticker,date,open,high,low,close,volume\n005930,2025-02-30,1,1,1,1,1\n")
    with pytest.raises(CommandError, match=r"bad\.csv:2"):
        call_command("collect_daily", "--csv", str(path))
    assert DailyPrice.objects.count() == 0


@pytest.mark.django_db
def test_collect_daily_with_ticker_option(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("date,open,high,low,close,volume\n2025-02-21,1,2,1,2,5\n")
    call_command("collect_daily", "--csv", str(path), "--ticker", "000660", stdout=io.StringIO())
    assert DailyPrice.objects.get().ticker == "000660"


def test_publish_price_goes_through_the_layer() -> None:
    out = io.StringIO()
    call_command(
        "publish_price", "005930", "--price", "158600", "--change", "-700", "--volume", "36358081", stdout=out
    )
    record = price_latest("005930")
    assert record is not None and record.price == Decimal("158600") and record.feed == "manual"
    assert '"price": 158600' in out.getvalue()


def test_publish_price_refuses_bad_input() -> None:
    with pytest.raises(CommandError):
        call_command("publish_price", "<bad>", "--price", "1")
    with pytest.raises(CommandError):
        call_command("publish_price", "005930", "--price", "abc")


def test_pricefeed_refuses_unknown_feed() -> None:
    with pytest.raises(CommandError, match="unknown price feed"):
        call_command("pricefeed", "--feeds", "bloomberg")


@pytest.mark.django_db(transaction=True)
def test_simulated_feed_in_background_covers_demo_instruments(settings: object) -> None:
    settings.PRICE_SIMULATED_INTERVAL_SECONDS = 0.05  # type: ignore[attr-defined]
    settings.PRICE_WATCHLIST = ["BYBIT:XRP/USDT"]  # type: ignore[attr-defined]
    stop = feeds.run_in_background(["simulated"])
    try:
        deadline = time.monotonic() + 10
        wanted = [*DEMO_INSTRUMENTS, "BYBIT:XRP/USDT"]
        while any(price_latest(i) is None for i in wanted):
            assert time.monotonic() < deadline, [i for i in wanted if price_latest(i) is None]
            time.sleep(0.05)
        status = next(s for s in feed_statuses() if s["feed"] == "simulated")
        assert (
            status["running"] is True and status["simulated"] is True and status["instruments"] == len(wanted)
        )
        assert price_latest("005930").price % 1 == 0 and price_latest("005930").feed == "simulated"
    finally:
        stop.set()
        time.sleep(0.3)
    assert all(t.name != "pricefeed-simulated" or not t.is_alive() for t in threading.enumerate())


@pytest.mark.django_db
def test_universe_has_watchlist_recent_orders_of_active_strategies_and_tracked_instruments(
    settings: object, make_strategy: object
) -> None:
    from feeds.universe import universe
    from orders.models import Order
    from prices.models import Instrument
    from webhooks.models import WebhookEvent

    settings.PRICE_WATCHLIST = ["nasd:amzn"]  # type: ignore[attr-defined]
    active = make_strategy("kr", market_type="DOMESTIC_STOCK")  # type: ignore[operator]
    inactive = make_strategy("old", market_type="SPOT", is_active=False)  # type: ignore[operator]
    event = WebhookEvent.objects.create(outcome="accepted", http_status=202)
    for n, (strategy, market, symbol) in enumerate(
        [(active, "DOMESTIC_STOCK", "KR000020"), (inactive, "SPOT", "DOGE/USDT")]
    ):
        Order.objects.create(
            webhook=event, strategy=strategy, account=strategy.accounts.first(), sequence=0,
            market_type=market, symbol=symbol, order_type="MARKET", client_order_id=f"qt{n}",
        )  # fmt: skip
    Instrument.objects.create(ticker="123456")
    ids = universe()
    assert ids == ["NASD:AMZN", "000020", "123456"]
    assert "BINANCE:BTC/USDT" in universe(include_demo=True)
