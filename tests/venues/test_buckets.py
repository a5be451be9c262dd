"""Venue rate limits as shared buckets (orders/exchanges/brokerkit/buckets.py): what one bucket
admits, the bounded wait, the ccxt adapters taking from them instead of ccxt's own throttle, and
two worker processes taking from one bucket through Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, RetryableVenueError
from orders.exchanges.brokerkit import SharedRateLimiter
from orders.exchanges.brokerkit import buckets as buckets_module
from orders.exchanges.brokerkit.buckets import RateLimitWaitError, VenueBuckets, VenueLimit, key_digest
from orders.exchanges.ccxt.binance import BinanceAdapter
from orders.models import Order
from orders.services import ExecutionRetry, account_orders_execute
from quanttrade.vocabulary import MarketType
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim

D = Decimal
ROOT = Path(__file__).resolve().parents[2]


def buy(cid: str = "qt1", market: str = "SPOT") -> OrderRequest:
    return OrderRequest(
        client_order_id=cid,
        market_type=market,
        symbol="BTC/USDT",
        side="BUY",
        order_type="MARKET",
        qty_per=D("10"),
    )


def test_a_bucket_admits_its_amount_per_window_and_no_more() -> None:
    limit = VenueLimit("ORDERS", 5, 60)
    buckets = VenueBuckets(f"test-{uuid.uuid4().hex}", "the-key", (limit,))
    assert [buckets.try_take(limit) for _ in range(7)] == [True] * 5 + [False] * 2
    # Another API key has a bucket of its own; a per-IP limit is one for every key.
    other = VenueBuckets(buckets.venue, "another-key", (limit,))
    assert other.try_take(limit)
    shared = VenueLimit("WEIGHT", 3, 60, per_ip=True)
    assert VenueBuckets(buckets.venue, "k1", (shared,)).try_take(shared, 3)
    assert not VenueBuckets(buckets.venue, "k2", (shared,)).try_take(shared)


def test_a_weighted_request_takes_its_cost() -> None:
    weight = VenueLimit("REQUEST_WEIGHT", 100, 60, weight=5)
    orders = VenueLimit("ORDERS", 10, 10, paths=(("POST", "order"),))
    buckets = VenueBuckets(f"test-{uuid.uuid4().hex}", "k", (weight, orders))
    buckets.acquire_request("GET", "account", 4)  # Binance spot account: ccxt cost 4 = weight 20
    buckets.acquire_request("POST", "order", 0.2)  # weight 1, and one order
    assert not buckets.try_take(weight, 80)  # 21 used: 79 left
    assert buckets.try_take(weight, 79)
    assert [buckets.try_take(orders) for _ in range(10)] == [True] * 9 + [False]


def test_waiting_longer_than_the_bound_raises_a_retryable_error_at_once() -> None:
    limit = VenueLimit("ORDERS", 2, 60)
    buckets = VenueBuckets(f"test-{uuid.uuid4().hex}", "k", (limit,), display_name="Sim")
    buckets.acquire([(limit, 2)])
    with pytest.raises(RateLimitWaitError) as raised:
        buckets.acquire([(limit, 1)], max_wait=0.05)
    assert isinstance(raised.value, RetryableVenueError)
    assert "Sim" in raised.value.message and "ORDERS" in raised.value.message


def test_a_full_bucket_waits_until_its_window_frees() -> None:
    limit = VenueLimit("REQ", 3, 1)
    buckets = VenueBuckets(f"test-{uuid.uuid4().hex}", "k", (limit,))
    start = time.monotonic()
    for _ in range(6):
        buckets.acquire([(limit, 1)], max_wait=5)
    # Six requests through a 3-per-second moving window: the 4th waits for the 1st to leave it.
    assert time.monotonic() - start >= 0.95


def test_the_raw_api_key_never_names_a_bucket() -> None:
    buckets = VenueBuckets("binance:spot:x", "secret-api-key", (VenueLimit("ORDERS", 5, 10),))
    ident = buckets.bucket_id(buckets.limits[0])
    assert "secret-api-key" not in ident and key_digest("secret-api-key") in ident


def test_shared_rate_limiter_keeps_its_per_second_rate() -> None:
    limiter = SharedRateLimiter(f"kis:rate:{uuid.uuid4().hex}", 2)
    assert limiter.buckets.try_take(limiter.limit) and limiter.buckets.try_take(limiter.limit)
    assert not limiter.buckets.try_take(limiter.limit)


# --- the ccxt adapters --------------------------------------------------------------------


def test_binance_requests_take_from_the_buckets_instead_of_ccxts_throttle(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account(enable_rate_limit=True))
    assert isinstance(adapter, BinanceAdapter)
    adapter.place_order(buy())
    client, _lock = adapter._client(MarketType.SPOT)
    assert client.enableRateLimit is False  # ccxt's per-process throttle is off
    buckets = adapter.buckets(MarketType.SPOT)
    orders_10s, orders_day = buckets.limits[1], buckets.limits[2]
    # One order placed: one taken from each order bucket (49 of 50 left in the 10 s window).
    assert buckets.try_take(orders_10s, 49) and not buckets.try_take(orders_10s)
    assert buckets.try_take(orders_day, 159_999) and not buckets.try_take(orders_day)


@override_settings(VENUE_RATE_MAX_WAIT_SECONDS=0.1)
def test_an_order_over_the_order_limit_is_not_sent_and_is_retryable(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account(enable_rate_limit=True))
    adapter.warm(MarketType.SPOT)
    buckets = adapter.buckets(MarketType.SPOT)
    assert buckets.try_take(buckets.limits[1], 50)  # another worker used this 10 s window up
    with pytest.raises(RateLimitWaitError):
        adapter.place_order(buy())
    assert binance_sim.orders_for("qt1") == []
    assert binance_sim.seen("/api/v3/order", "POST") == []


def test_rate_limit_ms_keeps_ccxts_own_throttle(binance_account: Any, binance_sim: BinanceSim) -> None:
    adapter = adapter_for(binance_account(enable_rate_limit=True, rate_limit_ms=5))
    client, _lock = adapter._client(MarketType.SPOT)
    assert client.enableRateLimit is True and client.rateLimit == 5.0


# --- two processes, one bucket (Redis) ------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys, time
    import django
    django.setup()
    from orders.exchanges.brokerkit.buckets import VenueBuckets, VenueLimit
    venue, mode, tries = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limit = VenueLimit("ORDERS", int(sys.argv[4]), int(sys.argv[5]))
    buckets = VenueBuckets(venue, "shared-key", (limit,))
    admitted = []
    for _ in range(tries):
        if mode == "try":
            if buckets.try_take(limit):
                admitted.append(time.time())
        else:
            buckets.acquire([(limit, 1)], max_wait=30)
            admitted.append(time.time())
    print(json.dumps(admitted))
    """
)


def _run_workers(venue: str, mode: str, tries: int, amount: int, seconds: int) -> list[float]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "quanttrade.settings", "REDIS_URL": settings.REDIS_URL}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, venue, mode, str(tries), str(amount), str(seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    times: list[float] = []
    for proc in procs:
        out, _err = proc.communicate(timeout=90)
        assert proc.returncode == 0
        times += json.loads(out.strip().splitlines()[-1])
    return sorted(times)


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_two_processes_share_one_bucket_through_redis() -> None:
    # Each process tries 80 times within a 120 s window of 50: together they get exactly 50.
    admitted = _run_workers(f"test-{uuid.uuid4().hex}", "try", 80, 50, 120)
    assert len(admitted) == 50


@pytest.mark.redis
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")
def test_two_waiting_processes_never_pass_the_rate_together() -> None:
    # 2 x 12 requests through 8 per second: request n+8 is admitted a second after request n at
    # the earliest, whichever process sent them.
    admitted = _run_workers(f"test-{uuid.uuid4().hex}", "wait", 12, 8, 1)
    assert len(admitted) == 24
    assert min(admitted[i + 8] - admitted[i] for i in range(len(admitted) - 8)) >= 0.9


@override_settings(VENUE_RATE_MAX_WAIT_SECONDS=0.1)
def test_an_order_held_back_by_the_limit_is_retried_as_a_first_attempt(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    account = binance_account(enable_rate_limit=True)
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    adapter = adapter_for(account)
    adapter.warm(MarketType.SPOT)
    buckets = adapter.buckets(MarketType.SPOT)
    assert buckets.try_take(buckets.limits[1], 50)  # the 10-s order window is used up
    with pytest.raises(ExecutionRetry):
        account_orders_execute(event.id, account.id)
    [order] = Order.objects.filter(webhook=event)
    assert (order.status, order.attempts) == ("queued", 0)
    assert binance_sim.seen("/api/v3/order") == []
    buckets_module.reset()  # the window passed
    account_orders_execute(event.id, account.id)
    order.refresh_from_db()
    assert (order.status, order.attempts) == ("filled", 1)
    # A first attempt: sent without a lookup by client id first.
    assert [r.method for r in binance_sim.seen("/api/v3/order")] == ["POST"]


def test_a_venue_wide_limit_is_one_bucket_for_spot_and_futures(make_account: Any) -> None:
    account = make_account(name="bybit-1", exchange="BYBIT", api_key="k", api_secret="s")
    spot, futures = (adapter_for(account).buckets(m) for m in (MarketType.SPOT, MarketType.FUTURES))  # type: ignore[attr-defined]
    ip_spot, order_spot = spot.limits
    ip_futures, order_futures = futures.limits
    assert spot.bucket_id(ip_spot) == futures.bucket_id(ip_futures)  # 600 per 5 s for all traffic
    assert spot.bucket_id(order_spot) != futures.bucket_id(order_futures)


@override_settings(VENUE_RATE_MAX_WAIT_SECONDS=0.1, ORDER_MAX_ATTEMPTS=3)
def test_waits_for_the_limit_never_use_up_the_attempts_after_a_retryable_failure(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    """Only what reached the venue counts against ORDER_MAX_ATTEMPTS: after a refused attempt
    (429), any number of attempts held back by the rate limit leave the count at one, so the
    order is sent again and fills instead of ending `failed` without a second try."""
    account = binance_account(enable_rate_limit=True)
    event = make_orders(make_strategy(accounts=[account]), [account], [{"side": "BUY", "qty_per": 10}])
    binance_sim.inject("rate_limit", "/api/v3/order", method="POST")
    with pytest.raises(ExecutionRetry):
        account_orders_execute(event.id, account.id)
    [order] = Order.objects.filter(webhook=event)
    assert (order.status, order.attempts) == ("queued", 1)

    adapter = adapter_for(account)
    buckets = adapter.buckets(MarketType.SPOT)
    for _ in range(3):  # more holds than ORDER_MAX_ATTEMPTS
        buckets_module.reset()
        assert buckets.try_take(buckets.limits[1], 50)  # the 10-s order window is used up
        with pytest.raises(ExecutionRetry):
            account_orders_execute(event.id, account.id)
        order.refresh_from_db()
        assert (order.status, order.attempts) == ("queued", 1)
    buckets_module.reset()  # the window passed

    account_orders_execute(event.id, account.id)
    order.refresh_from_db()
    assert (order.status, order.attempts) == ("filled", 2)
    assert len(binance_sim.orders_for(order.client_order_id)) == 1
