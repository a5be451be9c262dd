"""Risk limits in the worker (issue #14): checked just before placement, per account, with the
strategy's and the account's limits together; a refused order ends `rejected` naming the limit,
the account's other orders and the other accounts go on; closes pass position and loss limits;
the daily-loss limit pauses the account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import Order, PaperBalance
from orders.risk import realised_pnl
from orders.services import account_orders_execute
from orders.tasks import paper_match
from strategies.models import Account, Strategy
from tests.execution.test_execution import make_orders

D = Decimal
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock(kst_clock: Any) -> Any:
    kst_clock(NOW)
    return kst_clock


def run(event: Any, *accounts: Any) -> list[Order]:
    for account in accounts:
        account_orders_execute(event.id, account.pk)
    return list(
        Order.objects.filter(webhook=event).select_related("account").order_by("account__name", "sequence")
    )


@pytest.mark.django_db
def test_one_account_blocked_by_its_allow_list_the_others_trade(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    blocked = make_account("a1", balances={"USDT": "10000"}, allowed_symbols="ETH/USDT")
    free = make_account("a2", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[blocked, free])
    publish_price("BINANCE:BTC/USDT", "50000")
    event = make_orders(strategy, [blocked, free], [{"side": "BUY", "qty_per": 10}])
    first, second = run(event, blocked, free)
    assert (first.account.name, first.status) == ("a1", "rejected")
    assert (
        first.message
        == "리스크 한도 초과 (계좌 a1): 허용 종목 ETH/USDT — BTC/USDT 은(는) 허용되지 않은 종목입니다"
    )
    assert (second.account.name, second.status, second.filled_qty) == ("a2", "filled", D("0.02"))
    assert PaperBalance.objects.get(account=blocked, asset="USDT").free == D("10000")


@pytest.mark.django_db
def test_max_order_notional_estimates_a_crypto_percent_order_from_the_balance(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"}, max_order_notional=D("1500"))
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 20}, {"side": "BUY", "qty_per": 10}])
    big, small = run(event, account)
    assert (big.status, big.message) == (
        "rejected",
        "리스크 한도 초과 (계좌 a1): 최대 주문 금액 1500 — 이 주문은 2000",
    )
    assert (small.status, small.filled_qty) == ("filled", D("0.02"))  # 10% of 10,000 = 1,000


@pytest.mark.django_db
def test_the_stricter_of_strategy_and_account_wins(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"}, max_order_notional=D("5000"))
    strategy = make_strategy(accounts=[account], max_order_notional=D("500"))
    publish_price("BINANCE:BTC/USDT", "50000")
    (order,) = run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    assert order.status == "rejected"
    assert order.message == "리스크 한도 초과 (전략 my_strategy): 최대 주문 금액 500 — 이 주문은 1000"


@pytest.mark.django_db
def test_a_notional_limit_without_any_price_refuses_rather_than_guessing(
    make_strategy: Any, make_account: Any, no_prices: None, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"}, max_order_notional=D("5000"))
    (order,) = run(
        make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}]), account
    )
    assert order.status == "rejected" and "BTC/USDT 의 시세가 없어 확인할 수 없습니다" in order.message


@pytest.mark.django_db
def test_max_position_notional_blocks_growth_but_not_the_close(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("s1", balances={"KRW": "10000000"}, max_position_notional=D("1000000"))
    strategy = make_strategy("kr", market_type="DOMESTIC_STOCK", accounts=[account])
    publish_price("005930", "70000")
    specs = [{"side": "BUY", "qty_per": 10}, {"side": "BUY", "qty_per": 5}, {"side": "SELL", "qty_per": -100}]
    first, second, close = run(make_orders(strategy, [account], specs, symbol="005930"), account)
    assert (first.status, first.filled_qty) == ("filled", D("10"))
    assert second.status == "rejected"
    assert second.message == (
        "리스크 한도 초과 (계좌 s1): 최대 포지션 금액 1000000 — 005930 포지션이 1050000 이(가) 됩니다"
    )
    assert (close.status, close.filled_qty) == ("filled", D("10"))


@pytest.mark.django_db
def test_max_open_orders_refuses_the_order_past_the_count(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"}, max_open_orders=1)
    strategy = make_strategy(accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    limit = {"order_type": "LIMIT", "side": "BUY", "qty_per": 10, "price": "40000"}
    first, second = run(make_orders(strategy, [account], [limit, limit]), account)
    assert first.status == "open"
    assert (second.status, second.message) == (
        "rejected",
        "리스크 한도 초과 (계좌 a1): 최대 미체결 주문 수 1 — 미체결 1건",
    )


@pytest.mark.django_db
def test_max_orders_per_minute_counts_the_last_minute_only(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account], max_orders_per_minute=2)
    publish_price("BINANCE:BTC/USDT", "50000")
    buy = {"side": "BUY", "qty_per": 1}
    orders = run(make_orders(strategy, [account], [buy, buy, buy]), account)
    assert [o.status for o in orders] == ["filled", "filled", "rejected"]
    assert (
        orders[2].message == "리스크 한도 초과 (전략 my_strategy): 분당 최대 주문 수 2 — 최근 1분간 2건 전송"
    )
    clock(NOW + timedelta(seconds=61))
    (later,) = run(make_orders(strategy, [account], [buy]), account)
    assert later.status == "filled"


def test_the_last_minutes_orders_are_found_without_reading_the_accounts_history(
    make_strategy: Any, make_account: Any
) -> None:
    """The orders-per-minute limit counts through the (account, submitted_at) index, for an
    account's and for a strategy's limit alike, not by filtering every order of the account."""
    from orders.risk import _sent_last_minute
    from tests.query_plans import index_columns, sqlite_plan

    assert index_columns("orders_order", "order_account_submitted_idx") == ["account_id", "submitted_at"]
    account = make_account("a1")
    strategy = make_strategy(accounts=[account])
    order = Order.objects.get(webhook=make_orders(strategy, [account], [{"side": "BUY", "qty_per": 1}]))
    for holder in (account, strategy):
        plan = sqlite_plan(*_sent_last_minute(holder, order, NOW).order_by().query.sql_with_params())
        if plan is not None:
            assert plan == [
                "SEARCH orders_order USING INDEX order_account_submitted_idx (account_id=? AND submitted_at>?)"
            ], plan


@pytest.mark.django_db
def test_outside_the_accounts_trading_hours_in_its_time_zone(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    # 01:00 UTC is 20:00 in New York: outside 09:30-16:00 there.
    account = make_account(
        "a1", balances={"USDT": "10000"}, trading_hours="09:30-16:00", market_timezone="America/New_York"
    )
    publish_price("BINANCE:BTC/USDT", "50000")
    (order,) = run(
        make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 1}]), account
    )
    assert order.status == "rejected" and "현재 20:00 (America/New_York)" in order.message


@pytest.mark.django_db
def test_the_strategys_trading_hours_are_read_in_the_markets_zone_whatever_the_accounts(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    """The intake reads a strategy's hours in its market's zone (UTC for crypto); the worker
    reads them the same way, not in the zone of the account the order is for (01:00 UTC is
    10:00 in Seoul, outside 00:00-02:00 there)."""
    account = make_account("a1", balances={"USDT": "10000"}, market_timezone="Asia/Seoul")
    strategy = make_strategy(accounts=[account], trading_hours="00:00-02:00")
    publish_price("BINANCE:BTC/USDT", "50000")
    (order,) = run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 1}]), account)
    assert (order.status, order.filled_qty) == ("filled", D("0.002")), order.message


@pytest.mark.django_db
def test_a_paused_account_refuses_opening_orders_but_takes_closes(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("f1", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    (opened,) = run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    assert opened.status == "filled"
    account.pause("by hand")
    buy, close = run(
        make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}, {"side": "SELL", "qty_per": -100}]),
        account,
    )
    assert (buy.status, buy.message) == ("rejected", "계좌가 일시 정지되었습니다: f1")
    assert (close.status, close.filled_qty) == ("filled", opened.filled_qty)


# --- daily realised loss ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_daily_loss_limit_pauses_the_account_and_closes_still_pass(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("f1", balances={"USDT": "10000"}, max_daily_loss=D("100"))
    other = make_account("f2", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account, other])
    publish_price("BINANCE:BTC/USDT", "50000")
    run(make_orders(strategy, [account, other], [{"side": "BUY", "qty_per": 10}]), account, other)  # 0.02 BTC
    publish_price("BINANCE:BTC/USDT", "40000")
    run(
        make_orders(strategy, [account, other], [{"side": "SELL", "qty_per": -50}]), account, other
    )  # -100 USDT
    assert realised_pnl(Order.objects.filter(account=account), NOW - timedelta(hours=1)) == D("-100")
    # The losing fill pauses the account at once; the other account (no limit) is untouched.
    account.refresh_from_db()
    assert account.is_paused and account.paused_reason.startswith(
        "리스크 한도 초과 (계좌 f1): 일일 최대 실현 손실 100"
    )
    assert account.paused_until == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # the next reset (UTC for crypto)
    assert not Account.objects.get(pk=other.pk).is_paused

    buy, close = run(
        make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}, {"side": "SELL", "qty_per": -100}]),
        account,
    )
    assert (buy.status, buy.message) == ("rejected", "계좌가 일시 정지되었습니다: f1")
    assert close.status == "filled"  # a close is never blocked by the loss limit
    (other_buy,) = run(make_orders(strategy, [other], [{"side": "BUY", "qty_per": 10}]), other)
    assert other_buy.status == "filled"  # the other account trades on


@pytest.mark.django_db
def test_a_resting_close_sent_before_the_reset_that_fills_after_it_counts_today(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    """A loss counts on the day it is realised: a stop-loss sent yesterday evening that fires
    and fills this morning is today's loss (and pauses the account), not yesterday's."""
    account = make_account("f1", balances={"USDT": "10000"}, max_daily_loss=D("100"))
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    clock(NOW - timedelta(hours=4))  # 21:00 UTC yesterday
    publish_price("BINANCE:BTC/USDT", "50000")
    run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)  # 0.02 BTC
    publish_price("BINANCE:BTC/USDT", "46000")
    (close,) = run(
        make_orders(
            strategy,
            [account],
            [{"order_type": "STOP_MARKET", "side": "SELL", "qty_per": -100, "stop_price": 45000}],
        ),
        account,
    )
    assert close.status == "open"

    clock(NOW)  # 01:00 UTC: after the 00:00 reset
    publish_price("BINANCE:BTC/USDT", "45000")
    paper_match.apply()
    close.refresh_from_db()
    assert (close.status, close.filled_qty) == ("filled", D("0.02"))
    assert realised_pnl(Order.objects.filter(account=account), NOW - timedelta(hours=1)) == D("-100")
    account.refresh_from_db()
    assert account.is_paused and account.paused_reason.startswith(
        "리스크 한도 초과 (계좌 f1): 일일 최대 실현 손실 100"
    ), account.paused_reason


@pytest.mark.django_db
def test_a_fill_stays_on_its_day_when_its_order_changes_later(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    """What moves a fill to a day is its recording, not any later change of its order: a close
    that filled in part yesterday and whose rest was cancelled today is yesterday's loss."""
    account = make_account("f1", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    publish_price("BINANCE:BTC/USDT", "45000")
    (close,) = run(make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}]), account)
    yesterday = NOW - timedelta(hours=5)
    Order.objects.filter(account=account).update(filled_at=yesterday, submitted_at=yesterday)
    Order.objects.filter(pk=close.pk).update(status="cancelled", updated_at=NOW)  # a change today
    assert realised_pnl(Order.objects.filter(account=account), NOW - timedelta(hours=1)) == 0
    assert realised_pnl(Order.objects.filter(account=account), yesterday - timedelta(hours=1)) == D("-100")


@pytest.mark.django_db
def test_a_daily_loss_limit_set_after_the_loss_refuses_and_pauses_at_the_next_order(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("f1", balances={"USDT": "10000"})
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    publish_price("BINANCE:BTC/USDT", "50000")
    run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    publish_price("BINANCE:BTC/USDT", "40000")
    run(make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}]), account)  # -200
    Strategy.objects.filter(pk=strategy.pk).update(max_daily_loss=D("150"))
    (buy,) = run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    assert buy.status == "rejected"
    assert buy.message == (
        "리스크 한도 초과 (전략 my_strategy): 일일 최대 실현 손실 150 — 오늘 실현 손실 200, 거래를 일시 정지합니다"
    )
    assert Strategy.objects.get(pk=strategy.pk).is_paused  # a strategy limit pauses the strategy
    assert not Account.objects.get(pk=account.pk).is_paused


@pytest.mark.django_db
def test_the_daily_loss_resets_at_the_accounts_reset_time(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    # Reset at 09:00 Seoul (00:00 UTC). The loss is taken at 23:30 UTC the day before (08:30 KST).
    account = make_account(
        "f1",
        balances={"USDT": "10000"},
        max_daily_loss=D("50"),
        loss_reset_time=time(9, 0),
        market_timezone="Asia/Seoul",  # crypto markets otherwise count days in UTC
    )
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    clock(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    publish_price("BINANCE:BTC/USDT", "50000")
    run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}]), account)
    publish_price("BINANCE:BTC/USDT", "40000")
    run(make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}]), account)  # -200
    paused = Account.objects.get(pk=account.pk)
    assert paused.is_paused and paused.paused_until == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 09:00 KST
    clock(NOW)  # 10:00 KST: a new day for this account, and the loss pause has lifted
    (buy,) = run(make_orders(strategy, [account], [{"side": "BUY", "qty_per": 1}]), account)
    assert buy.status == "filled"
    assert not Account.objects.get(pk=account.pk).is_paused


def test_realised_pnl_matches_first_in_first_out_including_shorts(db: None, make_strategy: Any) -> None:
    strategy = make_strategy(market_type="FUTURES")
    account = strategy.accounts.get()
    fills = [
        ("BUY", "1", "100"),
        ("BUY", "1", "110"),
        ("SELL", "1.5", "120"),
        ("SELL", "1.5", "100"),
        ("BUY", "1", "90"),
    ]
    event = make_orders(strategy, [account], [{"side": s, "qty_per": 1} for s, _q, _p in fills])
    for order, (_side, qty, price) in zip(
        Order.objects.filter(webhook=event).order_by("sequence"), fills, strict=True
    ):
        Order.objects.filter(pk=order.pk).update(
            status="filled",
            filled_qty=D(qty),
            avg_price=D(price),
            submitted_at=NOW + timedelta(seconds=order.sequence),
            filled_at=NOW + timedelta(seconds=order.sequence),  # filled as it was sent
        )
    # +20 (lot 100) +5 (half of lot 110) +5 (other half at 100: 110→100 is -5)... step by step:
    # SELL 1.5@120: 1@100 → +20, 0.5@110 → +5. SELL 1.5@100: 0.5@110 → -5, then short 1@100.
    # BUY 1@90 covers the short: +10. Total +30.
    assert realised_pnl(Order.objects.filter(account=account), NOW) == D("30")
    # Only fills from the third on count: -5 + 10.
    assert realised_pnl(Order.objects.filter(account=account), NOW + timedelta(seconds=3)) == D("5")
    # Fees the venue reported count against the day they were paid (the portfolio's FIFO).
    last = Order.objects.filter(webhook=event).order_by("sequence").last()
    Order.objects.filter(pk=last.pk).update(fee=D("0.7"), fee_currency="USDT")
    assert realised_pnl(Order.objects.filter(account=account), NOW + timedelta(seconds=3)) == D("4.3")
    assert realised_pnl(Order.objects.filter(account=account), NOW) == D("29.3")


# --- the real worker: fan-out through the webhook, refusal in the results API -----------------


def test_fan_out_through_the_worker_shows_the_refusal_in_the_results_api(
    celery_worker: Any, make_strategy: Any, make_account: Any, publish_price: Any, wait_orders: Any
) -> None:
    accounts = [
        make_account("acct-a", balances={"USDT": "10000"}, max_order_notional=D("100")),
        make_account("acct-b", balances={"USDT": "10000"}),
    ]
    make_strategy(accounts=accounts)
    publish_price("BINANCE:BTC/USDT", "50000")
    body = {
        "group_name": "my_strategy",
        "token": "test-token",
        "symbol": "BTC/USDT",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 10,
    }
    response = Client().post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    webhook_id = response.json()["webhook_id"]
    orders = wait_orders(webhook_id=webhook_id)
    assert [(o.account.name, o.status) for o in orders] == [("acct-a", "rejected"), ("acct-b", "filled")]
    admin = get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    client = Client()
    client.force_login(admin)
    result = client.get(f"/api/webhooks/{webhook_id}").json()
    rows = {row["account"]: row for row in result["orders"]}
    assert rows["acct-a"]["status"] == "rejected"
    assert rows["acct-a"]["message"] == "리스크 한도 초과 (계좌 acct-a): 최대 주문 금액 100 — 이 주문은 1000"
    page = client.get(f"/orders/{orders[0].id}/")
    assert page.status_code == 200 and "최대 주문 금액 100" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("waited", "status"), [(58, "filled"), (62, "rejected")])
def test_an_order_older_than_the_max_signal_age_when_it_is_sent_is_refused_stale(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any, waited: int, status: str
) -> None:
    """The intake checked the signal's own time; an order that then waited past the strategy's
    max age (a backlog, a rate limit, retries, an outage) is not sent late."""
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account], max_signal_age_seconds=60)
    publish_price("BINANCE:BTC/USDT", "50000")
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    clock(NOW + timedelta(seconds=waited))
    publish_price("BINANCE:BTC/USDT", "50000")

    [order] = run(event, account)

    assert order.status == status
    if status == "rejected":
        assert order.message.startswith("주문을 보내기 전에 신호가 오래되었습니다: 6")
        assert order.message.endswith("초 전에 접수되었습니다 (전략 허용 최대 60초)")
        assert PaperBalance.objects.get(account=account, asset="USDT").free == D("10000")


@pytest.mark.django_db
def test_an_approved_orders_age_counts_from_its_approval(
    make_strategy: Any, make_account: Any, publish_price: Any, clock: Any
) -> None:
    account = make_account("a1", balances={"USDT": "10000"})
    strategy = make_strategy(accounts=[account], max_signal_age_seconds=60)
    event = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}])
    clock(NOW + timedelta(minutes=10))
    Order.objects.filter(webhook=event).update(approved_at=NOW + timedelta(minutes=10) - timedelta(seconds=5))
    publish_price("BINANCE:BTC/USDT", "50000")

    [order] = run(event, account)

    assert order.status == "filled"
