"""Bitget end to end: webhook POST -> real Celery worker -> CcxtAdapter -> the Bitget V2
simulator over HTTP -> the Order's final status. Seed scenarios, spot quote-amount market buys,
futures sizing and leverage, reduce-only closes (one-way mode), plan (trigger) orders, cancels,
lookups by clientOid, error mapping, faults and Bitget's request signing."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import ccxt
import pytest
import requests
from django.test import Client

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, OrderUncertain, VenueError
from orders.models import Order
from quanttrade.vocabulary import OrderStatus
from tests.venues.order_requests import order_request
from tests.webhook.scenarios import CRYPTO
from venuesim.bitget import BitgetSim

D = Decimal
BITGET_SCENARIOS = [s for s in CRYPTO if not s[2].get("symbol", "").endswith("/KRW")]
SPOT_PLACE = "/api/v2/spot/trade/place-order"
SPOT_PLAN = "/api/v2/spot/trade/place-plan-order"
MIX_PLACE = "/api/v2/mix/order/place-order"


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def order_body(group: str = "bitget", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"group_name": group, "token": "tok", "symbol": "BTC/USDT", "currency": "USDT"}
    body.update(fields)
    return body


@pytest.fixture
def bitget_strategy(make_strategy: Any, bitget_account: Any) -> Any:
    """make("SPOT" | "FUTURES", **account settings): a strategy "bitget" with one Bitget account."""

    def make(market_type: str = "SPOT", **settings: Any) -> Any:
        account = bitget_account(**settings)
        make_strategy(group_name="bitget", market_type=market_type, token="tok", accounts=[account])
        return account

    return make


def run(client: Client, wait_orders: Any, timeout: float = 20, **fields: Any) -> Order:
    [order] = wait_orders(webhook_id=post(client, order_body(**fields)), timeout=timeout)
    return order


def placed_bodies(sim: BitgetSim, path: str) -> list[dict[str, Any]]:
    return [r.json() for r in sim.seen(path, "POST")]


# --- seed scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market_type", "fields"), [s[1:3] for s in BITGET_SCENARIOS], ids=[s[0] for s in BITGET_SCENARIOS]
)
def test_seed_scenario_on_the_bitget_simulator(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    market_type: str,
    fields: dict[str, Any],
) -> None:
    bitget_strategy(market_type)
    if fields.get("qty_per") == -100:
        bitget_sim.positions["BTCUSDT"] = D("0.5")
        bitget_sim.entry_prices["BTCUSDT"] = D("95000")

    [order] = wait_orders(
        webhook_id=post(client, {"group_name": "bitget", "token": "tok", **fields}), timeout=20
    )

    order_type = fields["order_type"]
    if order_type == "CANCEL_ALL_ORDER":
        assert (order.status, order.message) == (OrderStatus.CANCELLED, "취소할 미체결 주문이 없습니다")
        assert bitget_sim.orders == []
        return
    expected = OrderStatus.FILLED if order_type == "MARKET" else OrderStatus.OPEN
    assert order.status == expected, order.message
    [placed] = bitget_sim.orders  # exactly one order reached the venue
    assert order.exchange_order_id == placed["orderId"]
    assert placed["clientOid"] == order.client_order_id
    assert placed["plan"] == order_type.startswith("STOP")
    assert placed["product"] == ("USDT-FUTURES" if market_type == "FUTURES" else "SPOT")
    if expected == OrderStatus.FILLED:
        base = placed["symbol"].removesuffix("USDT")
        assert order.filled_qty == placed["size"] > 0 and order.avg_price == bitget_sim.prices[base]
    if fields.get("qty_per") == -100:
        assert (placed["side"], placed["size"], placed["reduceOnly"]) == ("sell", D("0.5"), True)
        assert bitget_sim.positions["BTCUSDT"] == 0


# --- sizing, precision, minimums ----------------------------------------------------------------


def test_spot_market_buy_sends_the_quote_amount_to_spend(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("SPOT")

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    [body] = placed_bodies(bitget_sim, SPOT_PLACE)
    # Bitget spot market buys take the USDT to spend: 10% of 10,000 USDT
    assert (body["symbol"], body["orderType"], body["side"], body["size"]) == (
        "BTCUSDT",
        "market",
        "buy",
        "1000",
    )
    assert body["clientOid"] == order.client_order_id
    assert (order.status, order.quantity, order.filled_qty, order.avg_price) == (
        OrderStatus.FILLED,
        D("0.01"),
        D("0.01"),
        D("100000"),
    )
    assert bitget_sim.spot_balances["BTC"] == D("0.51") and bitget_sim.spot_balances["USDT"] == D("9000")


def test_spot_limit_sell_truncates_to_quantity_precision_and_rounds_to_price_precision(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("SPOT")

    order = run(
        client,
        wait_orders,
        symbol="ETH/USDT",
        order_type="LIMIT",
        side="sell",
        qty_per="33.3333333",
        price="3500.123",
    )

    [placed] = bitget_sim.orders
    # 33.3333333% of 2 ETH = 0.666666666 -> quantityPrecision 4 -> 0.6666; pricePrecision 2: a
    # sell moves up to 3500.13 (the passive side, never cheaper than asked), and the order says so
    assert (placed["size"], placed["price"], placed["status"]) == (D("0.6666"), D("3500.13"), "live")
    assert (order.status, order.quantity) == (OrderStatus.OPEN, D("0.6666"))
    assert "3500.123" in order.message and "3500.13" in order.message


def test_futures_long_is_sized_from_equity_times_leverage_on_isolated_margin(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("FUTURES", leverage=5, margin_mode="isolated")

    order = run(client, wait_orders, order_type="MARKET", side="long", qty_per=10)

    [body] = placed_bodies(bitget_sim, MIX_PLACE)
    # 10% of 10,000 USDT x 5 / 100,000 = 0.05 BTC, one-way mode (no tradeSide)
    assert (body["symbol"], body["productType"], body["side"], body["size"], body["marginMode"]) == (
        "BTCUSDT",
        "USDT-FUTURES",
        "buy",
        "0.05",
        "isolated",
    )
    assert "tradeSide" not in body and "reduceOnly" not in body
    assert bitget_sim.leverage["BTCUSDT"] == 5
    assert bitget_sim.margin_modes["BTCUSDT"] == "isolated"
    assert bitget_sim.positions["BTCUSDT"] == D("0.05")
    assert (order.status, order.quantity, order.filled_qty) == (OrderStatus.FILLED, D("0.05"), D("0.05"))


def test_futures_short_truncates_to_the_size_multiplier(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("FUTURES", leverage=3)

    order = run(client, wait_orders, symbol="ETH/USDT", order_type="MARKET", side="short", qty_per=7)

    [body] = placed_bodies(bitget_sim, MIX_PLACE)
    # 7% of 10,000 x 3 / 3,000 = 0.7 ETH; 0.7 is on ETHUSDT's 0.01 step; crossed margin by default
    assert (body["side"], body["size"], body["marginMode"]) == ("sell", "0.7", "crossed")
    assert bitget_sim.positions["ETHUSDT"] == D("-0.7")
    assert (order.status, order.quantity) == (OrderStatus.FILLED, D("0.7"))


@pytest.mark.parametrize(
    ("position", "side", "qty_per", "sent_side", "sent", "left"),
    [
        (D("0.08"), "sell", -50, "sell", D("0.04"), D("0.04")),
        (D("-0.07"), "buy", -100, "buy", D("0.07"), D("0")),
        (D("0.1"), "sell", -33, "sell", D("0.033"), D("0.067")),
    ],
)
def test_futures_close_is_reduce_only_and_sized_from_the_position(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    position: Decimal,
    side: str,
    qty_per: int,
    sent_side: str,
    sent: Decimal,
    left: Decimal,
) -> None:
    bitget_sim.positions["BTCUSDT"] = position
    bitget_strategy("FUTURES")

    order = run(client, wait_orders, order_type="MARKET", side=side, qty_per=qty_per)

    [body] = placed_bodies(bitget_sim, MIX_PLACE)
    # one-way mode: the closing side with reduceOnly=YES, no tradeSide
    assert (body["side"], D(body["size"]), body["reduceOnly"]) == (sent_side, sent, "YES")
    assert bitget_sim.positions["BTCUSDT"] == left
    assert (order.status, order.quantity) == (OrderStatus.FILLED, sent)
    assert bitget_sim.seen("/api/v2/mix/market/ticker") == []  # a reduce-only close needs no price


@pytest.mark.parametrize(
    ("side", "message"), [("sell", "청산할 롱 포지션이 없습니다"), ("buy", "청산할 숏 포지션이 없습니다")]
)
def test_futures_close_without_a_position_is_rejected(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    side: str,
    message: str,
) -> None:
    bitget_strategy("FUTURES")

    order = run(client, wait_orders, order_type="MARKET", side=side, qty_per=-100)

    assert (order.status, order.message) == (OrderStatus.REJECTED, message)
    assert bitget_sim.seen(MIX_PLACE) == []


@pytest.mark.parametrize(
    ("market_type", "fields", "message"),
    [
        # 0.005% of 10,000 USDT / 100,000 = 0.000005 BTC < minTradeAmount 0.00001
        (
            "SPOT",
            {"side": "buy", "qty_per": "0.005"},
            "주문 수량 0.000005이(가) BTC/USDT의 최소 주문 수량 0.00001보다 작습니다",
        ),
        # 0.2% of 2 ETH = 0.004 ETH x 3,000 = 12 USDT passes; 0.01% = 0.0002 ETH = 0.6 USDT < 1 USDT
        (
            "SPOT",
            {"symbol": "ETH/USDT", "side": "sell", "qty_per": "0.01"},
            "주문 금액 0.6이(가) ETH/USDT의 최소 주문 금액 1.0보다 작습니다",
        ),
        # 0.005% x 10,000 / 100,000 = 0.000005 BTC -> sizeMultiplier 0.001 -> 0
        (
            "FUTURES",
            {"side": "buy", "qty_per": "0.005"},
            "주문 수량 0이(가) BTC/USDT:USDT의 최소 주문 수량 0.001보다 작습니다",
        ),
    ],
)
def test_below_the_minimum_is_rejected_before_sending(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    market_type: str,
    fields: dict[str, Any],
    message: str,
) -> None:
    bitget_strategy(market_type)

    order = run(client, wait_orders, order_type="MARKET", **fields)

    assert (order.status, order.message) == (OrderStatus.REJECTED, message)
    assert bitget_sim.orders == [] and bitget_sim.seen("/api/v2/spot/trade/place") == []
    assert bitget_sim.seen("/api/v2/mix/order/place") == []


# --- plan (trigger) orders, lookups -----------------------------------------------------------


def test_spot_stop_limit_is_a_plan_order_with_the_orders_client_id(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("SPOT")

    order = run(
        client,
        wait_orders,
        order_type="STOP_LIMIT",
        side="sell",
        qty_per=10,
        stop_price="95000.006",
        price="94000",
    )

    assert bitget_sim.seen(SPOT_PLACE) == []
    [body] = placed_bodies(bitget_sim, SPOT_PLAN)
    assert (
        body["orderType"],
        body["planType"],
        body["triggerPrice"],
        body["executePrice"],
        body["size"],
    ) == (
        "limit",
        "amount",
        "95000.01",
        "94000",
        "0.05",
    )
    assert body["clientOid"] == order.client_order_id
    assert order.status == OrderStatus.OPEN
    assert order.exchange_order_id == bitget_sim.orders[0]["orderId"]


def test_spot_stop_market_buy_spends_a_quote_amount(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("SPOT")

    order = run(client, wait_orders, order_type="STOP_MARKET", side="buy", qty_per=10, stop_price=125000)

    [body] = placed_bodies(bitget_sim, SPOT_PLAN)
    # 10% of 10,000 USDT, spent when the price reaches 125,000 (0.008 BTC at the trigger)
    assert (body["orderType"], body["planType"], body["size"], body["triggerPrice"]) == (
        "market",
        "total",
        "1000",
        "125000",
    )
    assert (order.status, order.quantity) == (OrderStatus.OPEN, D("0.008"))


def test_futures_stop_market_is_a_normal_plan_order(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("FUTURES", leverage=2)

    order = run(client, wait_orders, order_type="STOP_MARKET", side="short", qty_per=10, stop_price=90000)

    [body] = placed_bodies(bitget_sim, "/api/v2/mix/order/place-plan-order")
    # 10% x 10,000 x 2 / 90,000 (the trigger price) = 0.0222 -> 0.022 BTC
    assert (body["planType"], body["orderType"], body["side"], body["size"], body["triggerPrice"]) == (
        "normal_plan",
        "market",
        "sell",
        "0.022",
        "90000",
    )
    assert body["clientOid"] == order.client_order_id
    assert (order.status, order.exchange_order_id) == (OrderStatus.OPEN, bitget_sim.orders[0]["orderId"])


@pytest.mark.parametrize("market_type", ["SPOT", "FUTURES"])
def test_timeout_on_a_plan_order_is_resolved_from_the_plan_lists(
    bitget_account: Any, bitget_sim: BitgetSim, market_type: str
) -> None:
    adapter = adapter_for(bitget_account(timeout_seconds=0.5))
    adapter.market(market_type, "BTC/USDT")
    stop = OrderRequest(
        client_order_id="qt" + "7" * 32,
        market_type=market_type,
        symbol="BTC/USDT",
        side="SELL",
        order_type="STOP_MARKET",
        qty_per=D("10"),
        stop_price=D("90000"),
    )
    path = SPOT_PLAN if market_type == "SPOT" else "/api/v2/mix/order/place-plan-order"
    bitget_sim.inject("timeout", path, method="POST", delay=1.0)

    with pytest.raises(OrderUncertain):
        adapter.place_order(stop)
    found = adapter.fetch_order_by_client_id(stop)

    assert found is not None and found.status == OrderStatus.OPEN
    assert found.exchange_order_id == bitget_sim.orders[0]["orderId"]
    assert len(bitget_sim.orders) == 1

    bitget_sim.orders[0]["status"] = "cancelled"  # finished plans are in the history list
    cancelled = adapter.fetch_order_by_client_id(stop)
    assert cancelled is not None and cancelled.status == OrderStatus.CANCELLED


def test_an_unknown_client_id_is_not_found(bitget_account: Any, bitget_sim: BitgetSim) -> None:
    adapter = adapter_for(bitget_account())
    for market_type in ("SPOT", "FUTURES"):
        missing = OrderRequest(
            client_order_id="qt" + "9" * 32,
            market_type=market_type,
            symbol="BTC/USDT",
            side="BUY",
            order_type="LIMIT",
            qty_per=D("10"),
            price=D("90000"),
        )
        assert adapter.fetch_order_by_client_id(missing) is None
    assert [r.query["clientOid"] for r in bitget_sim.seen("/api/v2/spot/trade/orderInfo")] == [
        "qt" + "9" * 32
    ]
    assert [r.query["clientOid"] for r in bitget_sim.seen("/api/v2/mix/order/detail")] == ["qt" + "9" * 32]


# --- cancels --------------------------------------------------------------------------------


def test_cancel_all_for_one_symbol_cancels_its_limit_and_plan_orders(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("SPOT")
    btc_limit = run(client, wait_orders, order_type="LIMIT", side="sell", qty_per=10, price=120000)
    btc_stop = run(client, wait_orders, order_type="STOP_MARKET", side="sell", qty_per=10, stop_price=90000)
    eth_limit = run(
        client, wait_orders, symbol="ETH/USDT", order_type="LIMIT", side="sell", qty_per=10, price=4000
    )

    cancel = run(client, wait_orders, order_type="CANCEL_ALL_ORDER")  # symbol BTC/USDT

    assert (cancel.status, cancel.cancelled_orders) == (OrderStatus.CANCELLED, 2)
    assert cancel.message == "미체결 주문 2건을 취소했습니다"
    assert [o["status"] for o in bitget_sim.orders] == ["cancelled", "cancelled", "live"]
    assert [r.json() for r in bitget_sim.seen("/api/v2/spot/trade/cancel-symbol-order")] == [
        {"symbol": "BTCUSDT", "type": "spot"}
    ]
    assert bitget_sim.seen("/api/v2/spot/trade/batch-cancel-plan-order")[0].json()["symbolList"] == [
        "BTCUSDT"
    ]
    states = {o.pk: o.status for o in Order.objects.filter(pk__in=[btc_limit.pk, btc_stop.pk, eth_limit.pk])}
    # the resting Orders follow the venue; the plan order found in the plan history by clientOid
    assert states == {
        btc_limit.pk: OrderStatus.CANCELLED,
        btc_stop.pk: OrderStatus.CANCELLED,
        eth_limit.pk: OrderStatus.OPEN,
    }


def test_cancel_all_symbols_cancels_futures_orders_and_plans_and_leaves_spot_alone(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    bitget_account: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
) -> None:
    account = bitget_account()
    make_strategy(group_name="bitget", market_type="FUTURES", token="tok", accounts=[account])
    make_strategy(group_name="bitget-spot", market_type="SPOT", token="tok", accounts=[account])
    run(client, wait_orders, order_type="LIMIT", side="long", qty_per=10, price=90000)
    run(client, wait_orders, order_type="STOP_MARKET", side="short", qty_per=10, stop_price=90000)
    run(client, wait_orders, symbol="ETH/USDT", order_type="LIMIT", side="short", qty_per=10, price=3500)
    [spot] = wait_orders(
        webhook_id=post(
            client, order_body("bitget-spot", order_type="LIMIT", side="buy", qty_per=10, price=90000)
        )
    )

    [cancel] = wait_orders(
        webhook_id=post(client, {"group_name": "bitget", "token": "tok", "order_type": "CANCEL_ALL_ORDER"})
    )

    assert (cancel.status, cancel.cancelled_orders) == (OrderStatus.CANCELLED, 3)
    futures = [o for o in bitget_sim.orders if o["product"] == "USDT-FUTURES"]
    assert {(o["symbol"], o["plan"], o["status"]) for o in futures} == {
        ("BTCUSDT", False, "canceled"),
        ("BTCUSDT", True, "cancelled"),
        ("ETHUSDT", False, "canceled"),
    }
    assert [o["status"] for o in bitget_sim.orders if o["product"] == "SPOT"] == ["live"]
    assert len(bitget_sim.seen("/api/v2/mix/order/batch-cancel-orders")) == 2
    assert len(bitget_sim.seen("/api/v2/mix/order/cancel-plan-order")) == 1
    assert Order.objects.get(pk=spot.pk).status == OrderStatus.OPEN


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market_type", "path", "code", "message"),
    [
        ("SPOT", SPOT_PLACE, "43012", "Bitget API 오류: Insufficient balance"),
        ("FUTURES", MIX_PLACE, "40762", "Bitget API 오류: The order amount exceeds the balance"),
        ("SPOT", SPOT_PLACE, "45110", "Bitget API 오류: less than the minimum amount 1 USDT"),
        ("FUTURES", MIX_PLACE, "45111", "Bitget API 오류: less than the minimum order quantity"),
    ],
)
def test_bitget_order_refusals_are_stored_on_the_order(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    market_type: str,
    path: str,
    code: str,
    message: str,
) -> None:
    bitget_strategy(market_type)
    bitget_sim.inject("reject", path, method="POST", message=code)

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert (order.status, order.message) == (OrderStatus.REJECTED, message)
    assert order.attempts == 1
    assert bitget_sim.orders == []


@pytest.mark.parametrize(
    ("market_type", "args", "message"),
    [
        ("SPOT", ("limit", "buy", 1, 100000), "Bitget API 오류: Insufficient balance"),
        ("FUTURES", ("limit", "buy", 2, 100000), "Bitget API 오류: The order amount exceeds the balance"),
        ("SPOT", ("limit", "buy", 0.00001, 50000), "Bitget API 오류: less than the minimum amount 1 USDT"),
        (
            "FUTURES",
            ("market", "sell", 0.01, None, {"reduceOnly": True}),
            "Bitget API 오류: Not enough position is available.",
        ),
    ],
)
def test_the_simulator_refuses_what_bitget_refuses(
    bitget_account: Any, bitget_sim: BitgetSim, market_type: str, args: tuple[Any, ...], message: str
) -> None:
    """The venue's own balance, minimum and position checks, reached through ccxt past the
    adapter's sizing, and mapped to a rejection."""
    adapter = adapter_for(bitget_account())
    symbol = "BTC/USDT:USDT" if market_type == "FUTURES" else "BTC/USDT"

    with pytest.raises(VenueError) as refused:
        adapter._call(market_type, "create_order", symbol, *args)

    assert refused.value.message == message
    assert bitget_sim.orders == []


def test_one_way_mode_is_required_hedge_mode_refuses_the_order(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("FUTURES")
    bitget_sim.pos_mode = "hedge_mode"

    order = run(client, wait_orders, order_type="MARKET", side="long", qty_per=10)

    assert order.status == OrderStatus.REJECTED
    assert order.message == (
        "Bitget API 오류: The order type for unilateral position must also be the unilateral position type."
    )
    assert bitget_sim.orders == []


def test_a_repeat_of_a_placed_order_returns_it_instead_of_a_second_one(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    adapter = adapter_for(bitget_account())
    request = OrderRequest(
        client_order_id="qt" + "5" * 32,
        market_type="FUTURES",
        symbol="BTC/USDT",
        side="SELL",
        order_type="LIMIT",
        qty_per=D("10"),
        price=D("120000"),
    )
    first = adapter.place_order(request)

    again = adapter.place_order(request)  # Bitget answers 40786 Duplicate clientOid

    assert len(bitget_sim.seen(MIX_PLACE, "POST")) == 2
    assert (again.exchange_order_id, again.status) == (first.exchange_order_id, OrderStatus.OPEN)
    assert len(bitget_sim.orders) == 1


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("market_type", "path"), [("SPOT", SPOT_PLACE), ("FUTURES", MIX_PLACE)])
def test_timeout_after_bitget_accepted_ends_with_exactly_one_order(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    market_type: str,
    path: str,
) -> None:
    bitget_strategy(market_type, timeout_seconds=0.5)
    bitget_sim.inject("timeout", path, method="POST", delay=1.0)

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert order.status == OrderStatus.FILLED, order.message
    assert len(bitget_sim.seen(path, "POST")) == 1
    assert len(bitget_sim.orders_for(order.client_order_id)) == 1
    assert len(bitget_sim.orders) == 1
    assert order.exchange_order_id == bitget_sim.orders[0]["orderId"]


def test_5xx_is_looked_up_and_not_sent_again(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    settings: Any,
) -> None:
    # A 5xx leaves the order's fate unknown: looked up by clientOid, never sent again (the
    # adapter's client_id_refused_in_every_state is False), then `failed` with "check the venue".
    settings.ORDER_UNCERTAIN_LOOKUPS = 2
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    bitget_strategy("SPOT")
    bitget_sim.inject("5xx", SPOT_PLACE, method="POST")

    order = run(client, wait_orders, timeout=30, order_type="MARKET", side="buy", qty_per=10)

    assert order.status == OrderStatus.FAILED
    assert order.message.startswith("주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요.")
    assert len(bitget_sim.seen(SPOT_PLACE, "POST")) == 1
    lookups = bitget_sim.seen("/api/v2/spot/trade/orderInfo")
    assert lookups and lookups[0].query["clientOid"] == order.client_order_id
    assert bitget_sim.orders == []


def test_rate_limit_backs_off_then_succeeds(
    client: Client, celery_worker: Any, bitget_strategy: Any, bitget_sim: BitgetSim, wait_orders: Any
) -> None:
    bitget_strategy("FUTURES")
    bitget_sim.inject("rate_limit", MIX_PLACE, method="POST")

    order = run(client, wait_orders, timeout=30, order_type="MARKET", side="long", qty_per=10)

    assert order.status == OrderStatus.FILLED, order.message
    first, second = bitget_sim.seen(MIX_PLACE, "POST")
    assert second.received_at - first.received_at >= 0.9  # the worker's 1 s backoff
    assert order.attempts == 2
    assert len(bitget_sim.orders) == 1


# --- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_secret", "wrong-secret", "Bitget API 오류: sign signature error"),
        ("passphrase", "wrong-pass", "Bitget API 오류: apikey/password is incorrect"),
        ("api_key", "not-a-key", "Bitget API 오류: Invalid ACCESS_KEY"),
    ],
)
def test_bad_credentials_fail_the_order_with_bitget_auth_error(
    client: Client,
    celery_worker: Any,
    bitget_strategy: Any,
    bitget_sim: BitgetSim,
    wait_orders: Any,
    field: str,
    value: str,
    message: str,
) -> None:
    account = bitget_strategy("SPOT")
    setattr(account, field, value)
    account.save()

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert (order.status, order.message) == (OrderStatus.FAILED, message)
    assert bitget_sim.orders == []
    assert bitget_sim.seen(SPOT_PLACE) == []  # refused at its first signed call


def test_signed_requests_carry_bitget_headers_and_verify(bitget_account: Any, bitget_sim: BitgetSim) -> None:
    adapter = adapter_for(bitget_account())

    adapter.position("FUTURES", "BTC/USDT")

    [request] = bitget_sim.seen("/api/v2/mix/position/all-position")
    assert request.header("ACCESS-KEY") == "sim-key"
    assert request.header("ACCESS-PASSPHRASE") == "sim-pass"
    assert request.header("ACCESS-TIMESTAMP").isdigit() and len(request.header("ACCESS-TIMESTAMP")) == 13
    assert request.raw_query == "marginCoin=USDT&productType=USDT-FUTURES"
    # The simulator checks the signature itself (query included): tampering is refused with 40009.
    headers = {k: v for k, v in request.headers.items() if k.startswith("access-")}
    url = f"{bitget_sim.base_url}{request.path}"
    replay = requests.get(f"{url}?{request.raw_query}", headers=headers, timeout=5)
    other_query = requests.get(f"{url}?marginCoin=USDT&productType=COIN-FUTURES", headers=headers, timeout=5)
    sign = headers["access-sign"]
    headers["access-sign"] = ("B" if sign[0] == "A" else "A") + sign[1:]  # always a different signature
    tampered = requests.get(f"{url}?{request.raw_query}", headers=headers, timeout=5)
    assert (replay.status_code, replay.json()["code"]) == (200, "00000")
    assert (other_query.status_code, other_query.json()["code"]) == (400, "40009")
    assert (tampered.status_code, tampered.json()["code"]) == (400, "40009")


# --- client ids: clientOid is held only while the order is unfilled (spot, 6 hours) -----------


def spot_request(order_type: str = "MARKET", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "side": "BUY",
        "order_type": order_type,
        "qty_per": D("10"),
    }
    fields.update(kw)
    return OrderRequest(client_order_id="qt" + "7" * 32, market_type="SPOT", **fields)


def test_spot_client_id_of_a_filled_order_is_accepted_again(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    from orders.exchanges.ccxt.bitget import BitgetAdapter

    adapter = adapter_for(bitget_account())
    first = adapter.place_order(spot_request())

    again = adapter.place_order(spot_request())  # Bitget takes it: the first one is filled

    assert first.status == again.status == OrderStatus.FILLED
    assert first.exchange_order_id != again.exchange_order_id
    assert len(bitget_sim.orders) == 2
    assert BitgetAdapter.client_id_refused_in_every_state is False


def test_spot_client_id_of_a_live_order_is_refused(bitget_account: Any, bitget_sim: BitgetSim) -> None:
    adapter = adapter_for(bitget_account())
    limit = spot_request("LIMIT", price=D("40000"))
    first = adapter.place_order(limit)

    again = adapter.place_order(limit)  # 40786 Duplicate clientOid: the adapter finds the first

    assert (again.exchange_order_id, again.status) == (first.exchange_order_id, OrderStatus.OPEN)
    assert len(bitget_sim.orders) == 1


# --- spot lookups by clientOid reach unfilled orders only ------------------------------------
# Bitget, spot Get Order Info: "If you query the order details through clientOid, the following
# requirements need to be met: … the order is in unfilled status".


def test_the_simulator_answers_a_spot_client_id_lookup_for_unfilled_orders_only(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    adapter = adapter_for(bitget_account())
    placed = adapter.place_order(order_request("qt" + "a" * 32, price=60000))
    client, _lock = adapter._client("SPOT")

    while_live = client.fetch_order("", "BTC/USDT", {"clientOrderId": "qt" + "a" * 32})
    bitget_sim.fill_order(placed.exchange_order_id)

    assert while_live["status"] == "open"
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("", "BTC/USDT", {"clientOrderId": "qt" + "a" * 32})
    assert client.fetch_order(placed.exchange_order_id, "BTC/USDT")["status"] == "closed"


@pytest.mark.parametrize("knows_the_venue_id", [True, False])
def test_a_spot_order_that_filled_while_resting_reads_filled(
    bitget_account: Any, bitget_sim: BitgetSim, knows_the_venue_id: bool
) -> None:
    adapter = adapter_for(bitget_account())
    limit = order_request("qt" + "b" * 32, price=60000)
    placed = adapter.place_order(limit)
    bitget_sim.fill_order(placed.exchange_order_id)
    bitget_sim.requests.clear()

    read = replace(limit, exchange_order_id=placed.exchange_order_id if knows_the_venue_id else "")
    found = adapter.fetch_order_by_client_id(read)

    assert found is not None and (found.status, found.exchange_order_id) == (
        OrderStatus.FILLED,
        placed.exchange_order_id,
    )
    assert found.filled_qty == placed.quantity
    by_id = [r for r in bitget_sim.requests if r.query.get("orderId") == placed.exchange_order_id]
    assert bool(by_id) is knows_the_venue_id  # else: by clientOid, then the order lists


def test_a_spot_order_filled_before_its_cancel_reads_filled(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    adapter = adapter_for(bitget_account())
    limit = order_request("qt" + "c" * 32, price=60000)
    placed = adapter.place_order(limit)
    bitget_sim.fill_order(placed.exchange_order_id)

    result = adapter.cancel_order(limit, placed.exchange_order_id)

    assert (result.status, result.filled_qty) == (OrderStatus.FILLED, placed.quantity)


def test_an_order_whose_answer_was_lost_is_found_past_the_first_page_of_history(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    adapter = adapter_for(bitget_account())
    ours = order_request("qt" + "d" * 32, order_type="MARKET", qty_per=1)
    adapter.place_order(ours)
    client, _lock = adapter._client("SPOT")
    for n in range(100):  # newer finished orders: ours is on the second page
        client.create_order("BTC/USDT", "market", "sell", 0.0001, None, {"clientOrderId": f"other-{n}"})
    bitget_sim.requests.clear()

    found = adapter.fetch_order_by_client_id(ours)  # no venue id: the answer was lost

    assert found is not None and found.status == OrderStatus.FILLED and found.filled_qty > 0
    pages = [r.query.get("idLessThan", "") for r in bitget_sim.requests if r.path.endswith("/history-orders")]
    assert len(pages) == 2 and pages[0] == "" and pages[1] != ""
