"""The portfolio service on the paper book: realised PnL and fees from stored fills, entry
prices, marks, totals in won, the cache, equity snapshots and day PnL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from orders.models import EquitySnapshot, PaperPosition
from orders.portfolio.records import Portfolio
from orders.portfolio.services import (
    equity_curve,
    portfolio_cached,
    portfolio_read,
    portfolio_refresh,
)
from quanttrade.vocabulary import MarketType

pytestmark = pytest.mark.django_db

NOW = datetime.fromisoformat("2026-11-30T06:00:00+00:00")  # 15:00 KST, 2026-11-30


def test_spot_realised_pnl_fees_and_entry_from_fills(
    make_account: Callable[..., Any], make_fill: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(name="paper-spot", balances={"USDT": "1000", "BTC": "0.5"})
    make_fill(account, "BUY", "1", "100", fee="0.1", fee_currency="USDT")
    make_fill(account, "BUY", "1", "110")
    make_fill(account, "SELL", "1.5", "120", fee="0.12", fee_currency="USDT")
    publish_price("BINANCE:BTC/USDT", "130")

    portfolio = portfolio_read(account, now=NOW)

    btc = next(p for p in portfolio.positions if p.symbol == "BTC/USDT")
    # FIFO: sold 1@100 (+20) and 0.5@110 (+5); 0.5 left at 110, marked at 130 → +10.
    assert (btc.realised_pnl, btc.fees) == (Decimal("25"), Decimal("0.22"))
    assert (btc.entry_price, btc.unrealised_pnl) == (Decimal("110"), Decimal("10"))
    usdt = portfolio.totals["USDT"]
    assert (usdt.realised_pnl, usdt.fees, usdt.cash, usdt.holdings_value) == (
        Decimal("25"),
        Decimal("0.22"),
        Decimal("1000"),
        Decimal("65"),
    )
    assert usdt.equity == Decimal("1065")


def test_an_overseas_stocks_realised_pnl_is_in_the_currency_it_traded_in(
    make_account: Callable[..., Any], make_fill: Callable[..., Any]
) -> None:
    """A Tokyo stock trades in JPY (the order's currency, from the signal or its exchange): its
    realised loss is JPY's, not filed under USD, the overseas market's default."""
    account = make_account(name="paper-os", balances={"JPY": "1000000"})
    make_fill(account, "BUY", "100", "3000", market_type="OVERSEAS_STOCK", symbol="7203", currency="JPY")
    make_fill(account, "SELL", "100", "2000", market_type="OVERSEAS_STOCK", symbol="7203", currency="JPY")

    portfolio = portfolio_read(account, now=NOW)

    assert portfolio.totals["JPY"].realised_pnl == Decimal("-100000")
    assert "USD" not in portfolio.totals or portfolio.totals["USD"].realised_pnl == 0


def test_futures_flip_long_to_short(
    make_account: Callable[..., Any], make_fill: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(name="paper-fut", balances={"USDT": "1000"})
    make_fill(account, "BUY", "2", "100", market_type="FUTURES")
    make_fill(account, "SELL", "3", "90", market_type="FUTURES", fee="0.27", fee_currency="USDT")
    PaperPosition.objects.create(
        account=account,
        symbol="BTC/USDT",
        market_type="FUTURES",
        quantity=-1,
        entry_price=90,
        currency="USDT",
    )
    publish_price("BINANCE:BTC/USDT", "80")

    portfolio = portfolio_read(account, now=NOW)

    short = next(p for p in portfolio.positions if p.market_type == MarketType.FUTURES)
    # The long 2@100 closed at 90 (−20); the short 1@90 marked at 80 (+10).
    assert (short.quantity, short.entry_price) == (Decimal("-1"), Decimal("90"))
    assert (short.realised_pnl, short.fees, short.unrealised_pnl) == (
        Decimal("-20"),
        Decimal("0.27"),
        Decimal("10"),
    )
    assert portfolio.totals["USDT"].equity == Decimal("1010")


def test_entry_is_unknown_when_the_fills_do_not_explain_the_holding(
    make_account: Callable[..., Any], make_fill: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(name="paper-gift", balances={"BTC": "2"})
    make_fill(account, "BUY", "1", "100")  # one of the two coins came from elsewhere
    publish_price("BINANCE:BTC/USDT", "150")
    btc = portfolio_read(account, now=NOW).positions[0]
    assert btc.entry_price is None and btc.unrealised_pnl is None
    assert btc.value == Decimal("300")  # still valued at the mark


def test_won_total_uses_the_upbit_usdt_rate_where_there_is_one(
    make_account: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(name="paper-fx", balances={"USDT": "100", "KRW": "50000", "USD": "10"})
    publish_price("UPBIT:USDT/KRW", "1400")
    portfolio = portfolio_read(account, now=NOW)
    assert portfolio.total_krw == Decimal("50000") + Decimal("140000")
    assert portfolio.unconverted == ["USD"]


def test_refresh_caches_and_round_trips_exactly(make_account: Callable[..., Any], no_prices: None) -> None:
    account = make_account(name="paper-cache", balances={"USDT": "1234.5678901234"})
    assert portfolio_cached(account.pk) is None
    fresh = portfolio_refresh(account, now=NOW)
    cached = portfolio_cached(account.pk)
    assert cached == fresh
    assert Portfolio.from_dict(fresh.to_dict()).totals["USDT"].cash == Decimal("1234.5678901234")


def test_refresh_keeps_the_kst_days_equity_and_day_pnl(
    make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="paper-eq", balances={"USDT": "1000"})
    EquitySnapshot.objects.create(
        account=account, day=date(2026, 11, 29), currency="USDT", equity=Decimal("900"), taken_at=NOW
    )
    portfolio_refresh(account, now=NOW)
    late = datetime.fromisoformat("2026-11-30T14:59:00+00:00")  # 23:59 KST, same day
    portfolio = portfolio_refresh(account, now=late)
    assert portfolio.totals["USDT"].day_pnl == Decimal("100")
    rows = EquitySnapshot.objects.filter(account=account).order_by("day")
    assert [(r.day, r.equity, r.taken_at) for r in rows] == [
        (date(2026, 11, 29), Decimal("900"), NOW),
        (date(2026, 11, 30), Decimal("1000"), late),
    ]
    assert equity_curve(account.pk) == {
        "USDT": [(date(2026, 11, 29), Decimal("900")), (date(2026, 11, 30), Decimal("1000"))]
    }


def test_a_later_refresh_of_the_day_replaces_each_currencys_snapshot(
    make_account: Callable[..., Any], no_prices: None
) -> None:
    """One row per account, KST day and currency: a later refresh of the same day writes its
    figures over the earlier ones (one upsert for all currencies), another account's rows and
    another day's are left alone."""
    from orders.models import PaperBalance

    account = make_account(name="paper-two", balances={"USDT": "1000", "KRW": "500000"})
    other = make_account(name="paper-other", balances={"USDT": "7"})
    portfolio_refresh(other, now=NOW)
    portfolio_refresh(account, now=NOW)
    PaperBalance.objects.filter(account=account, asset="USDT").update(free=Decimal("1250.5"))
    PaperBalance.objects.filter(account=account, asset="KRW").update(free=Decimal("400000"))
    late = datetime.fromisoformat("2026-11-30T14:59:00+00:00")  # 23:59 KST, same day
    portfolio_refresh(account, now=late)
    rows = EquitySnapshot.objects.filter(account=account).order_by("currency")
    assert [(r.day, r.currency, r.equity, r.taken_at) for r in rows] == [
        (date(2026, 11, 30), "KRW", Decimal("400000"), late),
        (date(2026, 11, 30), "USDT", Decimal("1250.5"), late),
    ]
    [kept] = EquitySnapshot.objects.filter(account=other)
    assert (kept.equity, kept.taken_at) == (Decimal("7"), NOW)
    next_day = datetime.fromisoformat("2026-11-30T15:00:00+00:00")  # 00:00 KST, 12-01
    portfolio_refresh(account, now=next_day)
    assert EquitySnapshot.objects.filter(account=account).count() == 4


def test_a_failed_read_is_cached_with_its_error_and_writes_no_snapshot(
    make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="broken", exchange="NOSUCHVENUE")
    portfolio = portfolio_refresh(account, now=NOW)
    assert portfolio.errors
    cached = portfolio_cached(account.pk)
    assert cached is not None and cached.error == portfolio.error
    assert not EquitySnapshot.objects.filter(account=account).exists()


def test_no_won_total_when_no_currency_has_a_rate(make_account: Callable[..., Any], no_prices: None) -> None:
    portfolio = portfolio_read(make_account(name="paper-usd", balances={"USD": "10"}), now=NOW)
    assert portfolio.total_krw is None and portfolio.unconverted == ["USD"]


def test_the_refreshs_fills_are_each_filled_orders_part_at_its_price_in_sent_order(
    make_account: Callable[..., Any], make_fill: Callable[..., Any]
) -> None:
    """account_fills reads ten values per order instead of whole orders: each filled order's
    filled quantity at its average price, its fee (zero when none was reported), grouped per
    (market type, symbol) and ordered by when it was sent (or created, when it never was)."""
    from datetime import UTC

    from orders.models import Order
    from orders.portfolio.fills import account_fills
    from orders.portfolio.pnl import Fill

    account, other = make_account("a1"), make_account("a2")
    first = make_fill(account, "BUY", "1.5", "100", fee="0.1", fee_currency="USDT")
    second = make_fill(account, "SELL", "0.5", "110", symbol="btc/usdt")  # no fee reported
    futures = make_fill(account, "BUY", "2", "50", symbol="ETH/USDT", market_type="FUTURES", fee="0.02")
    unsent = make_fill(account, "SELL", "1", "105")
    created = datetime(2026, 12, 1, tzinfo=UTC)  # after every make_fill's send time
    Order.objects.filter(pk=unsent.pk).update(submitted_at=None, created_at=created)
    still_open = make_fill(account, "BUY", "3", "99", status="open")  # partly filled: a fill
    make_fill(other, "BUY", "9", "1")
    D = Decimal  # noqa: N806 - short, for the table below
    assert account_fills(account.pk) == {
        ("SPOT", "BTC/USDT"): [
            Fill("BTC/USDT", "BUY", D("1.5"), D("100"), D("0.1"), "USDT", first.submitted_at),
            Fill("BTC/USDT", "SELL", D("0.5"), D("110"), D("0"), "", second.submitted_at),
            Fill("BTC/USDT", "BUY", D("3"), D("99"), D("0"), "", still_open.submitted_at),
            Fill("BTC/USDT", "SELL", D("1"), D("105"), D("0"), "", created),
        ],
        ("FUTURES", "ETH/USDT"): [
            Fill("ETH/USDT", "BUY", D("2"), D("50"), D("0.02"), "", futures.submitted_at),
        ],
    }
