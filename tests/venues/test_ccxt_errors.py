"""ccxt errors from the Binance simulator, translated at the adapter boundary, and the fault
classes: a timeout after the venue accepted, 5xx, rate limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
from quanttrade.vocabulary import OrderStatus
from venuesim.binance import BinanceSim

MARKET_BUY = OrderRequest(
    client_order_id="qt-err",
    market_type="SPOT",
    symbol="BTC/USDT",
    side="BUY",
    order_type="MARKET",
    qty_per=Decimal("10"),
)


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("reject", OrderRejected, "Binance API 오류: Account has insufficient balance for requested action."),
        (
            "rate_limit",
            RetryableVenueError,
            "Binance API 오류: Too many requests; current limit of IP is 6000 requests per minute.",
        ),
        (
            "5xx",
            RetryableVenueError,
            "Binance API 오류: Internal error; unable to process your request. Please try again.",
        ),
    ],
)
def test_venue_errors_map_to_product_errors(
    binance_account: Any, binance_sim: BinanceSim, fault: str, error: type[Exception], message: str
) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")  # markets loaded: the fault hits the order request
    binance_sim.inject(fault, "/api/v3/order", method="POST")

    with pytest.raises(error) as caught:
        adapter.place_order(MARKET_BUY)

    assert type(caught.value) is error
    assert caught.value.message == message
    assert binance_sim.orders_for("qt-err") == []


def test_a_bad_signature_is_permanent(binance_account: Any, binance_sim: BinanceSim) -> None:
    account = binance_account()
    account.api_secret = "wrong-secret"
    account.save()

    with pytest.raises(PermanentVenueError) as caught:
        adapter_for(account).place_order(MARKET_BUY)

    assert caught.value.message == "Binance API 오류: Signature for this request is not valid."
    assert binance_sim.orders == []


def test_an_unknown_api_key_is_permanent(binance_account: Any, binance_sim: BinanceSim) -> None:
    account = binance_account()
    account.api_key = "not-a-key"
    account.save()

    with pytest.raises(PermanentVenueError) as caught:
        adapter_for(account).place_order(MARKET_BUY)

    assert caught.value.message == "Binance API 오류: Invalid API-key, IP, or permissions for action."


def test_timeout_after_accepting_leaves_exactly_one_order_found_by_client_id(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account(timeout_seconds=0.5))
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.inject("timeout", "/api/v3/order", method="POST", delay=1.0)

    with pytest.raises(OrderUncertain) as caught:
        adapter.place_order(MARKET_BUY)
    found = adapter.fetch_order_by_client_id(MARKET_BUY)

    assert caught.value.message.startswith("Binance API 오류:")
    assert found is not None and found.status == OrderStatus.FILLED and found.filled_qty == Decimal("0.02")
    assert len(binance_sim.orders_for("qt-err")) == 1


def test_dropped_connection_after_accepting_is_uncertain_not_retryable(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.inject("drop", "/api/v3/order", method="POST")

    with pytest.raises(OrderUncertain):
        adapter.place_order(MARKET_BUY)

    assert len(binance_sim.orders_for("qt-err")) == 1


def test_5xx_is_looked_up_then_retried_safely(binance_account: Any, binance_sim: BinanceSim) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.inject("5xx", "/api/v3/order", method="POST")

    with pytest.raises(RetryableVenueError):
        adapter.place_order(MARKET_BUY)
    result = adapter.place_order(MARKET_BUY)

    assert result.status == OrderStatus.FILLED
    assert len(binance_sim.orders_for("qt-err")) == 1
    # The adapter asked the venue for the client id before giving the order back for retry.
    lookups = [
        r for r in binance_sim.seen("/api/v3/order", "GET") if r.query.get("origClientOrderId") == "qt-err"
    ]
    assert len(lookups) == 1


def test_a_repeat_after_success_returns_the_existing_order(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    first = adapter.place_order(MARKET_BUY)

    again = adapter.place_order(MARKET_BUY)  # the venue answers "duplicate"

    assert again.exchange_order_id == first.exchange_order_id
    assert len(binance_sim.orders_for("qt-err")) == 1


def test_rate_limit_is_retryable_and_the_next_attempt_succeeds(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.inject("rate_limit", "/api/v3/order", method="POST")

    with pytest.raises(RetryableVenueError):
        adapter.place_order(MARKET_BUY)

    assert adapter.place_order(MARKET_BUY).status == OrderStatus.FILLED
    assert len(binance_sim.orders_for("qt-err")) == 1


@pytest.mark.parametrize(
    ("order_type", "message"),
    [("BEST_LIMIT", "Binance에서는 BEST_LIMIT 주문을 지원하지 않습니다")],
)
def test_unsupported_order_type_is_rejected(binance_account: Any, order_type: str, message: str) -> None:
    with pytest.raises(OrderRejected) as caught:
        adapter_for(binance_account()).place_order(
            OrderRequest(**{**MARKET_BUY.__dict__, "order_type": order_type})
        )

    assert caught.value.message == message
