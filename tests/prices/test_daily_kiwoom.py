"""collect_daily --kiwoom against the local Kiwoom simulator (ka10081 over real HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from feeds.daily import read_kiwoom_daily
from orders.exchanges.kiwoom.client import KST
from prices.models import DailyPrice
from venuesim.kiwoom import KiwoomSim

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim() -> Iterator[KiwoomSim]:
    sim = KiwoomSim(app_key="app", secret_key="secret")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def account(sim: KiwoomSim, make_account: Callable[..., Any]) -> Any:
    return make_account(
        name="kiwoom-1",
        exchange="KIWOOM",
        api_key="app",
        api_secret="secret",
        settings={"api_base_url": sim.base_url},
    )


def test_collect_daily_from_kiwoom_stores_the_simulators_bars(sim: KiwoomSim, account: Any) -> None:
    call_command("collect_daily", "--kiwoom", "--tickers", "005930", "--days", "30")
    today = datetime.now(KST).date()
    start = today - timedelta(days=30)
    expected = {
        b.date: b
        for b in read_kiwoom_daily("005930", sim.daily_bars("005930", today, sim.prices["005930"]))
        if b.date >= start
    }
    stored = {b.date: b for b in DailyPrice.objects.filter(ticker="005930")}
    assert set(stored) == set(expected) and 20 <= len(stored) <= 23  # the weekdays of 30 days
    for day, bar in expected.items():
        row = stored[day]
        assert (row.open, row.high, row.low, row.close, row.volume, row.source) == (
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            "kiwoom",
        )
    assert stored[max(stored)].close == Decimal("70000")  # the newest close is the current price
    assert sim.token_requests == 1 and sim.chart_requests == 1  # one page of 100 was enough


def test_collect_daily_from_kiwoom_follows_pages_and_stops_when_far_enough(
    sim: KiwoomSim, account: Any
) -> None:
    sim.chart_page_size = 10
    call_command("collect_daily", "--kiwoom", "--tickers", "005930,000660", "--days", "30")
    for ticker in ("005930", "000660"):
        assert 20 <= DailyPrice.objects.filter(ticker=ticker).count() <= 23
    # 30 days are 21-23 weekdays: three pages each of 10 (not the whole 600-bar history)
    assert sim.chart_requests == 6
    call_command("collect_daily", "--kiwoom", "--tickers", "005930", "--days", "30")  # again: same rows
    assert 20 <= DailyPrice.objects.filter(ticker="005930").count() <= 23
    assert sim.token_requests == 1  # the second run reused the shared token


def test_collect_daily_from_kiwoom_reports_a_venue_error(sim: KiwoomSim, account: Any) -> None:
    with pytest.raises(CommandError, match=r"999999: .*종목코드"):
        call_command("collect_daily", "--kiwoom", "--tickers", "999999", "--days", "10")
    sim.inject("5xx", "/api/dostk/chart", count=5)
    with pytest.raises(CommandError, match=r"005930: .*502"):
        call_command("collect_daily", "--kiwoom", "--tickers", "005930", "--days", "10")
    assert not DailyPrice.objects.exists()


def test_collect_daily_from_kiwoom_needs_an_account(sim: KiwoomSim) -> None:
    with pytest.raises(CommandError, match="KIWOOM account"):
        call_command("collect_daily", "--kiwoom", "--tickers", "005930", "--days", "10")


def test_signed_and_padded_numbers_are_read_as_prices() -> None:
    [bar] = read_kiwoom_daily(
        "005930",
        [
            {
                "dt": "20250908",
                "open_pric": "+69800",
                "high_pric": "+0070500",
                "low_pric": "-69600",
                "cur_prc": "-70100",
                "trde_qty": "9263135",
            },
            {"dt": "", "cur_prc": "1"},
        ],
    )
    assert (bar.date, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        date(2025, 9, 8),
        Decimal(69800),
        Decimal(70500),
        Decimal(69600),
        Decimal(70100),
        Decimal(9263135),
    )
