"""One venue call per signal: qty_per sized from the account's balance snapshot and the price
layer's last price gives the quantity today's path (a balance read and a ticker per order)
gives, against two Binance simulators in the same state over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, VenueError
from orders.models import Order
from orders.services import account_orders_execute
from prices.services import price_publish
from quanttrade.vocabulary import MarketType
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim

D = Decimal
TODAY = {"balance_max_age_seconds": 0, "price_max_age_seconds": 0}
CACHED = {"price_layer_for_base_url": True}


@pytest.fixture
def two_sims() -> Iterator[tuple[BinanceSim, BinanceSim]]:
    today, cached = BinanceSim(), BinanceSim()
    today.start()
    cached.start()
    yield today, cached
    today.stop()
    cached.stop()


def _account(make_account: Any, sim: BinanceSim, name: str, **settings: Any) -> Any:
    return make_account(
        name=name,
        exchange="BINANCE",
        api_key="sim-key",
        api_secret="sim-secret",
        settings={"api_base_url": sim.base_url, "timeout_seconds": 2, "enable_rate_limit": False, **settings},
    )


def _placed(sim: BinanceSim) -> list[tuple[Any, ...]]:
    return [(o["market"], o["type"], o["side"], o["qty"], o.get("price")) for o in sim.orders]


SIGNALS = [
    {"side": "BUY", "qty_per": 10},
    {"side": "BUY", "qty_per": 25},
    {"side": "SELL", "qty_per": 50},
    {"side": "BUY", "qty_per": 5, "order_type": "LIMIT", "price": "49000"},
    {"side": "SELL", "qty_per": -100},  # close the long (SPEC §2.1: a negative qty_per)
]


@pytest.fixture(autouse=True)
def _execution_calls_only(settings: Any) -> None:
    """What these tests count is the execution path's venue calls: the portfolio's own refresh
    after a fill (a background read of the same venue, by a worker) is off here."""
    settings.PORTFOLIO_REFRESH_AFTER_FILL = False


@pytest.mark.parametrize("market_type", [MarketType.SPOT, MarketType.FUTURES])
def test_a_sequence_is_sized_as_today_without_reads_between_signal_and_order(
    transactional_db: None,
    make_account: Any,
    make_strategy: Any,
    two_sims: tuple[BinanceSim, BinanceSim],
    no_prices: None,
    market_type: str,
) -> None:
    today_sim, cached_sim = two_sims
    today = _account(make_account, today_sim, "today", leverage=3, **TODAY)
    cached = _account(make_account, cached_sim, "cached", leverage=3, **CACHED)
    signals = SIGNALS
    if market_type == MarketType.FUTURES:  # equity x leverage: a sell of 50% would flip the long
        signals = [*SIGNALS[:2], {"side": "SELL", "qty_per": 20}, *SIGNALS[3:]]
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    for account in (today, cached):
        adapter_for(account).warm(market_type)  # markets (and the cached one's balance snapshot)
    before = {sim: len(sim.requests) for sim in two_sims}
    for account in (today, cached):
        event = make_orders(
            make_strategy(group_name=account.name, market_type=market_type, accounts=[account]),
            [account],
            signals,
        )
        account_orders_execute(event.id, account.id)
        assert all(o.status in ("filled", "open") for o in Order.objects.filter(webhook=event)), [
            (o.status, o.message) for o in Order.objects.filter(webhook=event)
        ]
    assert _placed(cached_sim) == _placed(today_sim)
    assert len(_placed(today_sim)) == len(signals)
    # Today: a balance read and a ticker before each order. Cached: the balances are read once
    # right after each order left (for the next one), never between a signal and its order;
    # a spot order's price comes from the price layer. A close is the exception: it reads the
    # holding (spot) or the position (futures) right before its order.
    calls = [f"{r.method} {r.path}" for r in cached_sim.requests[before[cached_sim] :]]
    last_order = max(i for i, call in enumerate(calls) if call.startswith("POST") and "order" in call)
    assert "account" in calls[last_order - 1] or "positionRisk" in calls[last_order - 1], calls
    calls = calls[: last_order - 1]
    reads = [i for i, call in enumerate(calls) if "account" in call]
    assert reads and all(calls[i - 1].startswith("POST") and "order" in calls[i - 1] for i in reads), calls
    if market_type == MarketType.SPOT:
        assert not [call for call in calls if "ticker" in call], calls
    today_calls = [f"{r.method} {r.path}" for r in today_sim.requests[before[today_sim] :]]
    assert any("ticker" in c for c in today_calls)  # today's path asks the venue for a price


def test_a_spot_signal_with_a_fresh_snapshot_and_price_is_one_venue_call(
    db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    _today_sim, sim = two_sims
    adapter = adapter_for(_account(make_account, sim, "cached", **CACHED))
    adapter.warm(MarketType.SPOT)
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    since = len(sim.requests)
    adapter.place_order(
        OrderRequest(
            client_order_id="qt-one",
            market_type=MarketType.SPOT,
            symbol="BTC/USDT",
            side="BUY",
            order_type="MARKET",
            qty_per=D("10"),
        )
    )
    assert [f"{r.method} {r.path}" for r in sim.requests[since:]] == ["POST /api/v3/order"]
    (order,) = sim.orders_for("qt-one")
    assert order["qty"] == D("0.02")  # 10% of 10,000 USDT at 50,000


def test_a_stale_snapshot_or_price_is_read_from_the_venue(
    db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    _today_sim, sim = two_sims
    adapter = adapter_for(_account(make_account, sim, "cached", **CACHED))
    adapter.warm(MarketType.SPOT)
    price_publish("BINANCE:BTC/USDT", D("40000"), feed="ccxt")
    sim.spot_balances["USDT"] = D("20000")  # changed at the venue, unknown to the snapshot
    with time_machine.travel(timezone.now() + timedelta(seconds=11), tick=False):
        since = len(sim.requests)
        adapter.place_order(
            OrderRequest(
                client_order_id="qt-stale",
                market_type=MarketType.SPOT,
                symbol="BTC/USDT",
                side="BUY",
                order_type="MARKET",
                qty_per=D("10"),
            )
        )
    paths = [f"{r.method} {r.path}" for r in sim.requests[since:]]
    assert paths == ["GET /api/v3/account", "GET /api/v3/ticker/24hr", "POST /api/v3/order"]
    (order,) = sim.orders_for("qt-stale")
    assert order["qty"] == D("0.04")  # 10% of 20,000 USDT at the venue's 50,000


def test_a_close_reads_the_holding_from_the_venue(
    db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    _today_sim, sim = two_sims
    adapter = adapter_for(_account(make_account, sim, "cached", **CACHED))
    adapter.warm(MarketType.SPOT)  # the snapshot holds 0.5 BTC
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    sim.spot_balances["BTC"] = D("0.7")  # a resting buy filled at the venue since
    adapter.place_order(
        OrderRequest(
            client_order_id="qt-close",
            market_type=MarketType.SPOT,
            symbol="BTC/USDT",
            side="SELL",
            order_type="MARKET",
            qty_per=D("-100"),
        )
    )
    (order,) = sim.orders_for("qt-close")
    assert order["qty"] == D("0.7")  # the whole holding, as today's path sells


def _buy_half(adapter: Any, client_order_id: str) -> None:
    adapter.place_order(
        OrderRequest(
            client_order_id=client_order_id,
            market_type=MarketType.SPOT,
            symbol="BTC/USDT",
            side="BUY",
            order_type="MARKET",
            qty_per=D("50"),
        )
    )


def _in_thread(work: Any) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _until(condition: Any) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the venue never saw the request"
        time.sleep(0.005)


def test_a_balance_read_that_returns_after_another_order_left_is_not_kept(
    transactional_db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    """Two orders of one account in parallel (two adapters, as two tasks): the first one's
    after-order read is answered from before the second order, and comes back after it (and
    after the second one's own read). The third signal is sized from the venue's balances after
    the second order, not from that late answer."""
    _today_sim, sim = two_sims
    account = _account(make_account, sim, "cached", timeout_seconds=10, **CACHED)
    first, second, third = adapter_for(account), adapter_for(account), adapter_for(account)
    first.warm(MarketType.SPOT)  # 10,000 USDT
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    reads = len(sim.seen("/api/v3/account"))
    sim.inject("timeout", "/api/v3/account", delay=4.0)  # answered now, delivered 4 s later
    late = _in_thread(lambda: first.after_order(MarketType.SPOT, placed=True))
    _until(lambda: len(sim.seen("/api/v3/account")) > reads)  # the venue has answered it
    _buy_half(second, "qt-second")  # 5,000 USDT: 0.1 BTC
    second.after_order(MarketType.SPOT, placed=True)
    assert late.is_alive(), "the late read came back too early for this test"
    late.join()
    _buy_half(third, "qt-third")
    assert sim.orders_for("qt-second")[0]["qty"] == D("0.1")
    assert sim.orders_for("qt-third")[0]["qty"] == D("0.05")  # half of the 5,000 USDT left


def test_a_balance_read_begun_while_an_order_was_in_flight_is_not_kept(
    transactional_db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    """A read begins after an order of the account left but is answered before the venue
    handles that order: a signal sized between the order's answer and its own after-order read
    does not take that read's snapshot as fresh."""
    _today_sim, sim = two_sims
    account = _account(make_account, sim, "cached", timeout_seconds=10, **CACHED)
    placing, reading, third = adapter_for(account), adapter_for(account), adapter_for(account)
    placing.warm(MarketType.SPOT)
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    sim.inject("late", "/api/v3/order", method="POST", delay=3.0)  # handled 3 s after it came
    in_flight = _in_thread(lambda: _buy_half(placing, "qt-second"))
    _until(lambda: sim.seen("/api/v3/order", "POST"))
    reading.after_order(MarketType.SPOT, placed=True)  # the venue answers it before the order
    assert in_flight.is_alive(), "the order was handled too early for this test"
    in_flight.join()
    _buy_half(third, "qt-third")  # before the placing order's own after-order read
    assert sim.orders_for("qt-second")[0]["qty"] == D("0.1")
    assert sim.orders_for("qt-third")[0]["qty"] == D("0.05")


@pytest.mark.parametrize("fault", ["reject", "5xx", "lost"])
def test_an_order_attempt_that_failed_ends_the_snapshot(
    db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None, fault: str
) -> None:
    """Refused, answered with a 5xx (its fate unknown) or never handled: after the attempt the
    next signal reads the venue's balances, never the snapshot from before it."""
    _today_sim, sim = two_sims
    adapter = adapter_for(_account(make_account, sim, "cached", **CACHED))
    adapter.warm(MarketType.SPOT)  # 10,000 USDT
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    sim.spot_balances["USDT"] = D("20000")  # changed at the venue, unknown to the snapshot
    sim.inject(fault, "/api/v3/order", method="POST")
    with pytest.raises(VenueError):
        _buy_half(adapter, "qt-failed")
    adapter.after_order(MarketType.SPOT, placed=False)
    _buy_half(adapter, "qt-next")
    assert sim.orders_for("qt-next")[0]["qty"] == D("0.2")  # half of the 20,000 USDT at the venue


def test_a_resting_order_seen_filled_ends_the_snapshot(
    db: None, make_account: Any, two_sims: tuple[BinanceSim, BinanceSim], no_prices: None
) -> None:
    """The live refresh saw a resting order fill (orders.services: after_order, not placed):
    the next signal reads the venue's balances."""
    _today_sim, sim = two_sims
    adapter = adapter_for(_account(make_account, sim, "cached", **CACHED))
    adapter.warm(MarketType.SPOT)  # 10,000 USDT
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    sim.spot_balances["USDT"] = D("6000")  # a resting buy filled at the venue
    adapter.after_order(MarketType.SPOT, placed=False)
    _buy_half(adapter, "qt-next")
    assert sim.orders_for("qt-next")[0]["qty"] == D("0.06")
