"""Orders of one account run in parallel through the real Celery worker, except where the order
matters: a webhook's own orders keep their priority order, and an account's orders on one symbol
keep the order their signals came in (a close after its open)."""

from __future__ import annotations

import time
from typing import Any

from orders.services import orders_dispatch
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim


def _placed(sim: BinanceSim) -> list[tuple[str, str]]:
    return [(o["symbol"], o["side"]) for o in sim.orders]


def _order_request_arrived(sim: BinanceSim, timeout: float = 20.0) -> None:
    """Wait until the first order request reached the venue (it is held there by a late fault)."""
    deadline = time.monotonic() + timeout
    while not sim.seen("/api/v3/order", "POST"):
        assert time.monotonic() < deadline, "the first order never reached the venue"
        time.sleep(0.02)


def test_a_slow_order_does_not_hold_the_accounts_order_on_another_symbol(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, wait_orders: Any
) -> None:
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    # The BTC order is answered (and booked) 1.5 s after it arrives; ETH at once.
    binance_sim.inject("late", "/api/v3/order", method="POST", count=1, delay=1.5)
    btc = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}], symbol="BTC/USDT")
    orders_dispatch(btc.id, [account.id])
    _order_request_arrived(binance_sim)
    eth = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}], symbol="ETH/USDT")
    orders_dispatch(eth.id, [account.id])
    wait_orders(webhook__in=[btc, eth])
    # ETH was booked while BTC was still waiting for its answer (one client at a time: BTC first).
    assert _placed(binance_sim) == [("ETHUSDT", "BUY"), ("BTCUSDT", "BUY")]


def test_a_close_waits_for_the_open_before_it_on_the_same_symbol(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, wait_orders: Any
) -> None:
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    binance_sim.spot_balances["ETH"] = binance_sim.spot_balances["ETH"] * 0  # nothing to close yet
    binance_sim.inject("late", "/api/v3/order", method="POST", count=1, delay=1.0)
    opening = make_orders(strategy, [account], [{"side": "BUY", "qty_per": 10}], symbol="ETH/USDT")
    orders_dispatch(opening.id, [account.id])
    _order_request_arrived(binance_sim)
    closing = make_orders(strategy, [account], [{"side": "SELL", "qty_per": -100}], symbol="ETH/USDT")
    orders_dispatch(closing.id, [account.id])
    [opened] = wait_orders(webhook=opening)
    [closed] = wait_orders(webhook=closing)
    assert (opened.status, closed.status) == ("filled", "filled"), closed.message
    assert _placed(binance_sim) == [("ETHUSDT", "BUY"), ("ETHUSDT", "SELL")]
    assert closed.quantity == opened.filled_qty  # the whole position the open made


def test_a_batch_keeps_its_priority_order_across_symbols(
    celery_worker: Any, make_strategy: Any, binance_account: Any, binance_sim: BinanceSim, wait_orders: Any
) -> None:
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    binance_sim.inject("late", "/api/v3/order", method="POST", count=1, delay=1.0)
    batch = make_orders(
        strategy,
        [account],
        [
            {"side": "BUY", "qty_per": 10, "symbol": "BTC/USDT"},
            {"side": "BUY", "qty_per": 10, "symbol": "ETH/USDT"},
            {"side": "BUY", "qty_per": 10, "symbol": "SOL/USDT"},
        ],
    )
    orders_dispatch(batch.id, [account.id])
    wait_orders(webhook=batch)
    assert _placed(binance_sim) == [("BTCUSDT", "BUY"), ("ETHUSDT", "BUY"), ("SOLUSDT", "BUY")]


def test_what_waits_for_what(db: None, make_strategy: Any, make_account: Any) -> None:
    from orders.models import Order
    from orders.services import _earlier_pending

    account = make_account("a1")
    strategy = make_strategy(accounts=[account])

    def one(spec: dict[str, Any], symbol: str = "BTC/USDT") -> Any:
        return Order.objects.get(webhook=make_orders(strategy, [account], [spec], symbol=symbol))

    opening = one({"side": "BUY", "qty_per": 10})
    other_open = one({"side": "BUY", "qty_per": 10})
    close = one({"side": "SELL", "qty_per": -100})
    eth_close = one({"side": "SELL", "qty_per": -100}, symbol="ETH/USDT")
    assert not _earlier_pending(opening)
    assert not _earlier_pending(other_open)  # opens of one symbol run side by side
    assert _earlier_pending(close)  # a close after the opens before it
    assert not _earlier_pending(eth_close)  # nothing of ETH before it
    cancel = one({"order_type": "CANCEL_ALL_ORDER"}, symbol="")
    after_cancel = one({"side": "BUY", "qty_per": 10}, symbol="ETH/USDT")
    assert _earlier_pending(cancel) and _earlier_pending(after_cancel)
    Order.objects.exclude(pk__in=[cancel.pk, after_cancel.pk]).update(status="filled")
    assert not _earlier_pending(cancel) and _earlier_pending(after_cancel)
    Order.objects.filter(pk=cancel.pk).update(status="cancelled")
    assert not _earlier_pending(after_cancel)
