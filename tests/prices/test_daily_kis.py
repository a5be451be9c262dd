"""collect_daily --kis against the local KIS simulator (its daily-chart TR over real HTTP)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.test.utils import override_settings

from prices.models import DailyPrice
from venuesim.kis import KisSim

pytestmark = pytest.mark.django_db


@pytest.fixture
def kis_sim() -> Iterator[KisSim]:
    sim = KisSim()
    sim.start()
    yield sim
    sim.stop()


def test_collect_daily_from_kis_stores_bars_and_shares_one_token(
    kis_sim: KisSim, kst_clock: Callable[..., Any]
) -> None:
    from orders.exchanges.kis.sessions import KST

    # A fixed Thursday: how many weekdays the last 10 days hold depends on the day of the week
    # (7 to 9), so the test reads the clock it sets (it failed on Thursdays with the real one).
    kst_clock(datetime(2026, 12, 3, 10, 0, tzinfo=KST))
    with override_settings(
        KIS_APP_KEY="sim-appkey", KIS_APP_SECRET="sim-appsecret", KIS_REST_URL=kis_sim.base_url
    ):
        call_command("collect_daily", "--kis", "--tickers", "005930,000660", "--days", "10")
        call_command("collect_daily", "--kis", "--tickers", "005930", "--days", "10")  # again: same rows
    bars = DailyPrice.objects.filter(ticker="005930").order_by("-date")
    # The weekdays of 2026-11-23 (10 days back, a Monday) through 2026-12-03, newest first.
    span = (date(2026, 12, 3) - timedelta(days=n) for n in range(11))
    assert [bar.date for bar in bars] == [day for day in span if day.weekday() < 5]
    assert bars.count() == 9
    assert bars[0].close == Decimal("70000") and bars[0].high == Decimal("70700")
    assert DailyPrice.objects.filter(ticker="000660").exists()
    assert kis_sim.token_requests == 1  # the second run reused the cached token


def test_collect_daily_from_kis_reports_an_unknown_ticker(kis_sim: KisSim) -> None:
    from django.core.management.base import CommandError

    with override_settings(
        KIS_APP_KEY="sim-appkey", KIS_APP_SECRET="sim-appsecret", KIS_REST_URL=kis_sim.base_url
    ):
        with pytest.raises((CommandError, ValueError), match="999999"):
            call_command("collect_daily", "--kis", "--tickers", "999999", "--days", "10")
    assert not DailyPrice.objects.exists()
