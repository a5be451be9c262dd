"""collect_daily --kis against the local KIS simulator (its daily-chart TR over real HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

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


def test_collect_daily_from_kis_stores_bars_and_shares_one_token(kis_sim: KisSim) -> None:
    with override_settings(
        KIS_APP_KEY="sim-appkey", KIS_APP_SECRET="sim-appsecret", KIS_REST_URL=kis_sim.base_url
    ):
        call_command("collect_daily", "--kis", "--tickers", "005930,000660", "--days", "10")
        call_command("collect_daily", "--kis", "--tickers", "005930", "--days", "10")  # again: same rows
    bars = DailyPrice.objects.filter(ticker="005930").order_by("-date")
    assert 6 <= bars.count() <= 8  # the weekdays of the last 10 days
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
