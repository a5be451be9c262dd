"""KIS orders with no answer, end to end: webhook POST -> real Celery worker -> KIS simulator ->
the Order's final status. KIS has no client order id, so every market finds an unanswered order
again in its order list; whatever the fault, the venue ends with exactly one order per signal."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from orders.services import live_orders_refresh
from quanttrade.vocabulary import OrderStatus
from venuesim.kis import KisSim

# market -> (account product code, order path, webhook fields of a 2-lot order)
MARKETS = {
    "OVERSEAS_STOCK": (
        "01",
        "/uapi/overseas-stock/v1/trading/order",
        {"symbol": "AAPL", "params": {"exchange_code": "NASD", "currency": "USD"}},
    ),
    "DOMESTIC_FUTUREOPTION": (
        "03",
        "/uapi/domestic-futureoption/v1/trading/order",
        {"symbol": "101TC000", "params": {"session": "day"}},
    ),
    "OVERSEAS_FUTUREOPTION": (
        "08",
        "/uapi/overseas-futureoption/v1/trading/order",
        {"symbol": "ESZ4", "params": {"exchange_code": "CME", "contract_month": "Z4"}},
    ),
}
# A limit price that rests on the simulator (below its price for a buy).
RESTING = {"OVERSEAS_STOCK": "150", "DOMESTIC_FUTUREOPTION": "300", "OVERSEAS_FUTUREOPTION": "4900"}
every_market = pytest.mark.parametrize("market", list(MARKETS))


@pytest.fixture
def signal(client: Client, make_strategy: Any, kis_account: Any) -> Any:
    """signal(market, **fields) posts a 2-lot buy to a strategy on one KIS account (HTTP timeout
    0.5 s) and returns the webhook id."""
    strategies: dict[str, Any] = {}

    def post(market: str, **fields: Any) -> str:
        if market not in strategies:
            account = kis_account(product_code=MARKETS[market][0], timeout_seconds=0.5)
            strategies[market] = make_strategy(
                group_name="k", market_type=market, token="tok", accounts=[account]
            )
        body = {"group_name": "k", "token": "tok", "order_type": "MARKET", "side": "buy", "qty_per": 2}
        body.update(MARKETS[market][2], **fields)
        response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
        assert response.status_code == 202, response.json()
        return str(response.json()["webhook_id"])

    return post


@every_market
def test_timeout_after_the_venue_accepted_ends_filled_with_one_order(
    celery_worker: Any, kis_sim: KisSim, signal: Any, wait_orders: Any, market: str
) -> None:
    kis_sim.inject("timeout", MARKETS[market][1], delay=1.0)

    [order] = wait_orders(webhook_id=signal(market), timeout=20)

    [venue_order] = kis_sim.orders
    assert (order.status, order.exchange_order_id) == (OrderStatus.FILLED, venue_order["odno"]), order.message
    assert (order.filled_qty, order.avg_price) == (Decimal("2"), venue_order["avg"])
    assert len(kis_sim.order_requests()) == 1


@every_market
def test_timeout_after_the_venue_accepted_a_resting_order_ends_open(
    celery_worker: Any, kis_sim: KisSim, signal: Any, wait_orders: Any, market: str
) -> None:
    kis_sim.inject("timeout", MARKETS[market][1], delay=1.0)

    [order] = wait_orders(webhook_id=signal(market, order_type="LIMIT", price=RESTING[market]), timeout=20)

    [venue_order] = kis_sim.orders
    assert (order.status, order.exchange_order_id) == (OrderStatus.OPEN, venue_order["odno"]), order.message
    assert order.filled_qty == 0


@every_market
def test_an_order_lost_before_the_venue_is_never_sent_again(
    celery_worker: Any, kis_sim: KisSim, signal: Any, wait_orders: Any, market: str, settings: Any
) -> None:
    # From the client, a request lost before the venue looks like one the venue is still
    # processing: KIS has no client id that refuses a repeat, so the order is only looked up
    # (client_id_refused_in_every_state is False) and ends `failed` with "check the venue".
    settings.ORDER_UNCERTAIN_LOOKUPS = 2
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    kis_sim.inject("lost", MARKETS[market][1])

    [order] = wait_orders(webhook_id=signal(market), timeout=20)

    assert kis_sim.orders == []
    assert len(kis_sim.order_requests()) == 1
    assert order.status == OrderStatus.FAILED
    assert order.message.startswith("주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요.")
    assert live_orders_refresh() == 0


@every_market
def test_two_identical_signals_both_timing_out_end_with_two_orders_one_each(
    celery_worker: Any, kis_sim: KisSim, signal: Any, wait_orders: Any, market: str
) -> None:
    kis_sim.inject("timeout", MARKETS[market][1], delay=1.0, count=2)

    first, second = signal(market), signal(market)
    orders = wait_orders(webhook_id__in=[first, second], timeout=30)

    assert len(kis_sim.orders) == 2
    assert sorted(o.exchange_order_id for o in orders) == sorted(v["odno"] for v in kis_sim.orders)
    assert [o.status for o in orders] == [OrderStatus.FILLED, OrderStatus.FILLED], [o.message for o in orders]
