"""ccxt errors from the Binance simulator, translated at the adapter boundary, and the fault
classes: a timeout after the venue accepted, 5xx, rate limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt
import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import (
    OrderRejected,
    OrderRequest,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
)
from orders.exchanges.ccxt import base as ccxt_base
from quanttrade.vocabulary import OrderStatus
from tests.ports import free_port
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
            # Binance: a 5xx means "execution status UNKNOWN": the order may be on the book.
            "5xx",
            OrderUncertain,
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


def test_5xx_is_uncertain_and_the_adapter_does_not_send_it_again(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.inject("5xx", "/api/v3/order", method="POST")

    with pytest.raises(OrderUncertain):
        adapter.place_order(MARKET_BUY)

    assert len(binance_sim.seen("/api/v3/order", "POST")) == 1
    assert binance_sim.orders_for("qt-err") == []


@pytest.mark.parametrize(("fault", "never_sent"), [("refused", True), ("timeout", False), ("drop", False)])
def test_only_a_refused_connection_counts_as_never_sent(
    binance_account: Any, binance_sim: BinanceSim, fault: str, never_sent: bool
) -> None:
    adapter = adapter_for(binance_account(timeout_seconds=0.5))
    adapter.market("SPOT", "BTC/USDT")
    client, _lock = adapter._client("SPOT")
    if fault == "refused":
        # A port nobody listens on: the connection is refused before a byte of the order leaves.
        closed_port = free_port()
        client.urls["api"] = ccxt_base._rebase(client.urls["api"], f"http://127.0.0.1:{closed_port}")
    else:
        binance_sim.inject(fault, "/api/v3/order", method="POST", delay=1.0)

    with pytest.raises(ccxt.NetworkError) as caught:
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 40000, {"newClientOrderId": "qt-net"})

    assert ccxt_base.request_never_sent(caught.value) is never_sent


def test_a_repeat_of_an_open_order_returns_the_existing_order(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    resting = OrderRequest(**{**MARKET_BUY.__dict__, "order_type": "LIMIT", "price": Decimal("40000")})
    first = adapter.place_order(resting)

    again = adapter.place_order(resting)  # the venue answers -2010 "Duplicate order sent."

    assert again.exchange_order_id == first.exchange_order_id
    assert len(binance_sim.orders_for("qt-err")) == 1


def test_binance_takes_a_filled_orders_client_id_again(binance_account: Any, binance_sim: BinanceSim) -> None:
    """Finding #2: newClientOrderId is unique among open orders only. A filled order's id is
    accepted again and makes a second order: a repeat is never a safe way to find an order."""
    adapter = adapter_for(binance_account())
    first = adapter.place_order(MARKET_BUY)

    second = adapter.place_order(MARKET_BUY)

    assert first.status == second.status == OrderStatus.FILLED
    assert first.exchange_order_id != second.exchange_order_id
    assert len(binance_sim.orders_for("qt-err")) == 2


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
