"""OKX end to end: webhook POST -> real Celery worker -> CcxtAdapter -> the OKX simulator over
HTTP -> the Order's final status. Seed scenarios, swap sizing in contracts, closes, cancels
(trigger orders included), client ids, error mapping, faults and OKX's request signing."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from notify.models import EventKind, Notification, NotificationDestination
from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, OrderUncertain, VenueError
from orders.exchanges.ccxt.base import venue_client_order_id
from orders.models import Order
from orders.services import account_orders_execute, live_orders_refresh, order_cancel
from quanttrade.vocabulary import OrderStatus
from tests.execution.test_execution import make_orders
from tests.venues.order_requests import order_request
from tests.webhook.scenarios import CRYPTO
from venuesim.okx import OkxSim

D = Decimal
OKX_SCENARIOS = [s for s in CRYPTO if not s[2].get("symbol", "").endswith("/KRW")]


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def order_body(group: str = "okx", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"group_name": group, "token": "tok", "symbol": "BTC/USDT", "currency": "USDT"}
    body.update(fields)
    return body


@pytest.fixture
def okx_strategy(make_strategy: Any, okx_account: Any) -> Any:
    """make("SPOT" | "FUTURES", **account settings): a strategy "okx" with one OKX account."""

    def make(market_type: str = "SPOT", **settings: Any) -> Any:
        account = okx_account(**settings)
        make_strategy(group_name="okx", market_type=market_type, token="tok", accounts=[account])
        return account

    return make


def run(client: Client, wait_orders: Any, timeout: float = 20, **fields: Any) -> Order:
    [order] = wait_orders(webhook_id=post(client, order_body(**fields)), timeout=timeout)
    return order


# --- seed scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("market_type", "fields"), [s[1:3] for s in OKX_SCENARIOS], ids=[s[0] for s in OKX_SCENARIOS]
)
def test_seed_scenario_on_the_okx_simulator(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    market_type: str,
    fields: dict[str, Any],
) -> None:
    okx_strategy(market_type)
    if fields.get("qty_per") == -100:
        okx_sim.positions["BTC-USDT-SWAP"] = D("50")  # 0.5 BTC long
        okx_sim.entry_prices["BTC-USDT-SWAP"] = D("95000")

    [order] = wait_orders(
        webhook_id=post(client, {"group_name": "okx", "token": "tok", **fields}), timeout=20
    )

    order_type = fields["order_type"]
    if order_type == "CANCEL_ALL_ORDER":
        assert (order.status, order.message) == (OrderStatus.CANCELLED, "취소할 미체결 주문이 없습니다")
        assert okx_sim.orders == []
        return
    expected = OrderStatus.FILLED if order_type == "MARKET" else OrderStatus.OPEN
    assert order.status == expected, order.message
    [placed] = okx_sim.orders  # exactly one order reached the venue
    assert order.exchange_order_id == (placed["algoId"] or placed["ordId"])
    assert placed["algo"] == order_type.startswith("STOP")
    assert placed["instType"] == ("SWAP" if market_type == "FUTURES" else "SPOT")
    if expected == OrderStatus.FILLED:
        assert order.filled_qty > 0 and order.avg_price is not None
    if fields.get("qty_per") == -100:
        assert (placed["side"], placed["sz"], placed["reduceOnly"]) == ("sell", D("50"), True)
        assert okx_sim.positions["BTC-USDT-SWAP"] == 0


# --- sizing, precision, minimums ----------------------------------------------------------------


def test_spot_market_buy_spends_percent_of_free_usdt_in_base_units(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    [placed] = okx_sim.orders
    # 10% of 10,000 USDT at 100,000 = 0.01 BTC, sent as a base-currency size
    assert (placed["instId"], placed["ordType"], placed["tgtCcy"], placed["sz"]) == (
        "BTC-USDT",
        "market",
        "base_ccy",
        D("0.01"),
    )
    assert placed["tdMode"] == "cash"
    assert (order.status, order.quantity, order.filled_qty, order.avg_price) == (
        OrderStatus.FILLED,
        D("0.01"),
        D("0.01"),
        D("100000"),
    )
    assert okx_sim.balances["BTC"] == D("0.51") and okx_sim.balances["USDT"] == D("9000")


def test_spot_limit_sell_truncates_to_the_lot_and_rounds_to_the_tick(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")

    order = run(
        client,
        wait_orders,
        symbol="ETH/USDT",
        order_type="LIMIT",
        side="sell",
        qty_per="33.3333333",
        price="3500.123",
    )

    [placed] = okx_sim.orders
    # 33.3333333% of 2 ETH = 0.6666666660 -> lotSz 0.000001 -> 0.666666; tickSz 0.01: a sell
    # moves up to 3500.13 (the passive side, never cheaper than asked), and the order says so
    assert (placed["sz"], placed["px"], placed["state"]) == (D("0.666666"), D("3500.13"), "live")
    assert (order.status, order.quantity) == (OrderStatus.OPEN, D("0.666666"))
    assert "3500.123" in order.message and "3500.13" in order.message


def test_swap_long_is_sized_in_contracts_from_equity_times_leverage(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("FUTURES", leverage=5)

    order = run(client, wait_orders, order_type="MARKET", side="long", qty_per=10)

    [placed] = okx_sim.orders
    # 10% of 10,000 USDT x 5 / 100,000 = 0.05 BTC = 5 contracts of 0.01 BTC
    assert (placed["instId"], placed["side"], placed["sz"], placed["tdMode"]) == (
        "BTC-USDT-SWAP",
        "buy",
        D("5"),
        "cross",
    )
    assert okx_sim.leverage[("BTC-USDT-SWAP", "cross")] == 5
    assert okx_sim.positions["BTC-USDT-SWAP"] == D("5")
    assert (order.status, order.quantity, order.filled_qty) == (OrderStatus.FILLED, D("0.05"), D("0.05"))


def test_swap_short_on_isolated_margin(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("FUTURES", leverage=3, margin_mode="isolated")

    order = run(client, wait_orders, symbol="ETH/USDT", order_type="MARKET", side="short", qty_per=15)

    [placed] = okx_sim.orders
    # 15% of 10,000 x 3 / 3,000 = 1.5 ETH = 15 contracts of 0.1 ETH
    assert (placed["instId"], placed["side"], placed["sz"], placed["tdMode"]) == (
        "ETH-USDT-SWAP",
        "sell",
        D("15"),
        "isolated",
    )
    assert okx_sim.leverage[("ETH-USDT-SWAP", "isolated")] == 3
    assert okx_sim.positions["ETH-USDT-SWAP"] == D("-15")
    assert (order.status, order.quantity) == (OrderStatus.FILLED, D("1.5"))


@pytest.mark.parametrize(
    ("position", "side", "qty_per", "sent_side", "sent", "left"),
    [
        (D("8"), "sell", -50, "sell", D("4"), D("4")),
        (D("-7"), "buy", -100, "buy", D("7"), D("0")),
        (D("10"), "sell", -33, "sell", D("3.3"), D("6.7")),
    ],
)
def test_swap_close_is_reduce_only_and_sized_from_the_position(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    position: Decimal,
    side: str,
    qty_per: int,
    sent_side: str,
    sent: Decimal,
    left: Decimal,
) -> None:
    okx_sim.positions["BTC-USDT-SWAP"] = position
    okx_strategy("FUTURES")

    order = run(client, wait_orders, order_type="MARKET", side=side, qty_per=qty_per)

    [placed] = okx_sim.orders
    assert (placed["side"], placed["sz"], placed["reduceOnly"]) == (sent_side, sent, True)
    assert okx_sim.positions["BTC-USDT-SWAP"] == left
    assert (order.status, order.quantity) == (OrderStatus.FILLED, sent * D("0.01"))
    assert okx_sim.seen("/api/v5/market/ticker") == []  # a reduce-only close needs no price


@pytest.mark.parametrize(
    ("side", "message"), [("sell", "청산할 롱 포지션이 없습니다"), ("buy", "청산할 숏 포지션이 없습니다")]
)
def test_swap_close_without_a_position_is_rejected(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    side: str,
    message: str,
) -> None:
    okx_strategy("FUTURES")

    order = run(client, wait_orders, order_type="MARKET", side=side, qty_per=-100)

    assert (order.status, order.message) == (OrderStatus.REJECTED, message)
    assert okx_sim.seen("/api/v5/trade/order", "POST") == []


@pytest.mark.parametrize(
    ("market_type", "qty_per", "message"),
    [
        # 0.005% of 10,000 USDT / 100,000 = 0.000005 BTC < minSz 0.00001
        ("SPOT", "0.005", "주문 수량 0.000005이(가) BTC/USDT의 최소 주문 수량 0.00001보다 작습니다"),
        # 0.05% x 10,000 / 100,000 = 0.000005 BTC = 0.0005 contracts -> lotSz 0.01 -> 0 (min 0.01 contracts)
        ("FUTURES", "0.05", "주문 수량 0이(가) BTC/USDT:USDT의 최소 주문 수량 0.0001보다 작습니다"),
    ],
)
def test_below_the_minimum_size_is_rejected_before_sending(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    market_type: str,
    qty_per: str,
    message: str,
) -> None:
    okx_strategy(market_type)

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=qty_per)

    assert (order.status, order.message) == (OrderStatus.REJECTED, message)
    assert okx_sim.orders == [] and okx_sim.seen("/api/v5/trade/order", "POST") == []


# --- stops, client ids ----------------------------------------------------------------------


def test_stop_limit_goes_to_the_algo_book_with_the_orders_client_id(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")

    order = run(
        client,
        wait_orders,
        order_type="STOP_LIMIT",
        side="sell",
        qty_per=10,
        stop_price="95000.06",
        price="94000",
    )

    [placed] = okx_sim.seen("/api/v5/trade/order-algo", "POST")
    assert [r.path for r in okx_sim.seen("/api/v5/trade/order", "POST")] == ["/api/v5/trade/order-algo"]
    body = placed.json()
    assert (body["ordType"], body["triggerPx"], body["orderPx"], body["sz"]) == (
        "trigger",
        "95000.1",
        "94000",
        "0.05",
    )
    assert body["algoClOrdId"] == order.client_order_id[:32]
    assert order.status == OrderStatus.OPEN
    assert order.exchange_order_id == okx_sim.orders[0]["algoId"]


def test_the_venue_client_id_is_the_orders_id_cut_to_okx_rules() -> None:
    ours = "qt" + "0123456789abcdef" * 2  # 34 characters, as every Order's client_order_id

    assert venue_client_order_id("okx", ours) == ours[:32]
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", venue_client_order_id("okx", "qt-err"))
    assert venue_client_order_id("okx", "qt-err") == venue_client_order_id("okx", "qt-err")
    assert venue_client_order_id("okx", "qt-err") != venue_client_order_id("okx", "qt-err2")
    assert venue_client_order_id("okx", "abc123") == "abc123"
    assert venue_client_order_id("binance", ours) == ours


def test_every_order_fits_okx_client_id_rules(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")

    order = run(client, wait_orders, order_type="LIMIT", side="buy", qty_per=10, price=90000)

    [placed] = okx_sim.orders
    assert len(order.client_order_id) > 32  # ours does not fit as is
    assert placed["clOrdId"] == venue_client_order_id("okx", order.client_order_id)
    assert re.fullmatch(r"[A-Za-z0-9]{1,32}", placed["clOrdId"])


@pytest.mark.parametrize(
    ("order_type", "price", "status", "filled"),
    [
        ("STOP_MARKET", None, OrderStatus.FILLED, D("0.05")),
        ("STOP_LIMIT", D("89000"), OrderStatus.OPEN, D("0")),
    ],
)
def test_a_triggered_stop_reads_the_state_of_the_order_it_placed(
    okx_account: Any,
    okx_sim: OkxSim,
    order_type: str,
    price: Decimal | None,
    status: str,
    filled: Decimal,
) -> None:
    adapter = adapter_for(okx_account())
    stop = OrderRequest(
        client_order_id="qt" + "3" * 32,
        market_type="SPOT",
        symbol="BTC/USDT",
        side="SELL",
        order_type=order_type,
        qty_per=D("10"),
        price=price,
        stop_price=D("90000"),
    )
    placed = adapter.place_order(stop)
    okx_sim.trigger("qt" + "3" * 30)

    found = adapter.fetch_order_by_client_id(stop)

    # OKX calls a triggered algo order "effective"; what counts is the order it placed.
    assert found is not None
    assert (found.status, found.filled_qty, found.quantity) == (status, filled, D("0.05"))
    assert found.exchange_order_id == placed.exchange_order_id == okx_sim.orders[0]["algoId"]


def test_a_stop_whose_order_failed_to_be_placed_when_it_fired_reads_rejected(
    okx_account: Any, okx_sim: OkxSim
) -> None:
    """OKX algo order state ``order_failed``: it fired and the order it places was refused.
    ccxt reads it cancelled; nothing was placed and nothing filled: a refusal, which is told."""
    adapter = adapter_for(okx_account())
    stop = order_request("qt" + "4" * 32, side="SELL", order_type="STOP_MARKET", stop_price=90000)
    placed = adapter.place_order(stop)
    okx_sim.trigger("qt" + "4" * 30, outcome="fail")

    found = adapter.fetch_order_by_client_id(stop)

    assert okx_sim.orders[0]["state"] == "order_failed" and len(okx_sim.orders) == 1
    assert found is not None
    assert (found.status, found.filled_qty, found.exchange_order_id) == (
        OrderStatus.REJECTED,
        D("0"),
        placed.exchange_order_id,
    )


# --- cancels --------------------------------------------------------------------------------


def test_cancel_all_for_one_symbol_cancels_its_limit_and_trigger_orders(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")
    btc_limit = run(client, wait_orders, order_type="LIMIT", side="sell", qty_per=10, price=120000)
    btc_stop = run(client, wait_orders, order_type="STOP_MARKET", side="sell", qty_per=10, stop_price=90000)
    eth_limit = run(
        client, wait_orders, symbol="ETH/USDT", order_type="LIMIT", side="sell", qty_per=10, price=4000
    )

    cancel = run(client, wait_orders, order_type="CANCEL_ALL_ORDER")  # symbol BTC/USDT

    assert (cancel.status, cancel.cancelled_orders) == (OrderStatus.CANCELLED, 2)
    assert cancel.message == "미체결 주문 2건을 취소했습니다"
    assert [o["state"] for o in okx_sim.orders] == ["canceled", "canceled", "live"]
    assert len(okx_sim.seen("/api/v5/trade/cancel-batch-orders")) == 1
    assert len(okx_sim.seen("/api/v5/trade/cancel-algos")) == 1
    states = {o.pk: o.status for o in Order.objects.filter(pk__in=[btc_limit.pk, btc_stop.pk, eth_limit.pk])}
    # the resting Orders follow the venue, the trigger order found by its algoClOrdId
    assert states == {
        btc_limit.pk: OrderStatus.CANCELLED,
        btc_stop.pk: OrderStatus.CANCELLED,
        eth_limit.pk: OrderStatus.OPEN,
    }


def test_cancel_all_symbols_cancels_swap_orders_and_leaves_spot_alone(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    okx_account: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
) -> None:
    account = okx_account()
    make_strategy(group_name="okx", market_type="FUTURES", token="tok", accounts=[account])
    make_strategy(group_name="okx-spot", market_type="SPOT", token="tok", accounts=[account])
    run(client, wait_orders, order_type="LIMIT", side="long", qty_per=10, price=90000)
    run(client, wait_orders, order_type="STOP_MARKET", side="short", qty_per=10, stop_price=90000)
    run(client, wait_orders, symbol="ETH/USDT", order_type="LIMIT", side="short", qty_per=10, price=3500)
    [spot] = wait_orders(
        webhook_id=post(
            client, order_body("okx-spot", order_type="LIMIT", side="buy", qty_per=10, price=90000)
        )
    )

    [cancel] = wait_orders(
        webhook_id=post(client, {"group_name": "okx", "token": "tok", "order_type": "CANCEL_ALL_ORDER"})
    )

    assert (cancel.status, cancel.cancelled_orders) == (OrderStatus.CANCELLED, 3)
    assert {o["instId"]: o["state"] for o in okx_sim.orders if o["instType"] == "SWAP" and not o["algo"]} == {
        "BTC-USDT-SWAP": "canceled",
        "ETH-USDT-SWAP": "canceled",
    }
    assert [o["state"] for o in okx_sim.orders if o["algo"]] == ["canceled"]
    assert [o["state"] for o in okx_sim.orders if o["instType"] == "SPOT"] == ["live"]
    assert Order.objects.get(pk=spot.pk).status == OrderStatus.OPEN


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("51008", OrderStatus.REJECTED, "OKX API 오류: Order failed. Insufficient USDT balance in account."),
        (
            "51020",
            OrderStatus.REJECTED,
            "OKX API 오류: Order amount should be greater than the min available amount.",
        ),
        ("51001", OrderStatus.REJECTED, "OKX API 오류: Instrument ID does not exist."),
        ("51121", OrderStatus.REJECTED, "OKX API 오류: Order quantity must be a multiple of the lot size."),
    ],
)
def test_okx_order_refusals_are_stored_on_the_order(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    code: str,
    status: str,
    message: str,
) -> None:
    okx_strategy("SPOT")
    okx_sim.inject("reject", "/api/v5/trade/order", method="POST", message=code)

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert (order.status, order.message) == (status, message)
    assert order.attempts == 1
    assert okx_sim.orders == []


def test_a_repeat_of_a_placed_order_returns_it_instead_of_a_second_one(
    okx_account: Any, okx_sim: OkxSim
) -> None:
    adapter = adapter_for(okx_account())
    request = OrderRequest(
        client_order_id="qt" + "5" * 32,
        market_type="SPOT",
        symbol="BTC/USDT",
        side="SELL",
        order_type="LIMIT",
        qty_per=D("10"),
        price=D("120000"),
    )
    first = adapter.place_order(request)

    again = adapter.place_order(request)  # OKX answers 51016 Duplicated clOrdId

    assert len(okx_sim.seen("/api/v5/trade/order", "POST")) == 2
    assert (again.exchange_order_id, again.status) == (first.exchange_order_id, OrderStatus.OPEN)
    assert len(okx_sim.orders) == 1


# --- faults ---------------------------------------------------------------------------------


def test_timeout_after_okx_accepted_ends_with_exactly_one_order(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT", timeout_seconds=0.5)
    okx_sim.inject("timeout", "/api/v5/trade/order", method="POST", delay=1.0)

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert order.status == OrderStatus.FILLED, order.message
    assert len(okx_sim.seen("/api/v5/trade/order", "POST")) == 1
    assert len(okx_sim.orders_for(venue_client_order_id("okx", order.client_order_id))) == 1
    assert len(okx_sim.orders) == 1
    assert order.exchange_order_id == okx_sim.orders[0]["ordId"]


def test_timeout_on_a_trigger_order_is_resolved_by_its_algo_client_id(
    okx_account: Any, okx_sim: OkxSim
) -> None:
    adapter = adapter_for(okx_account(timeout_seconds=0.5))
    adapter.market("SPOT", "BTC/USDT")
    stop = OrderRequest(
        client_order_id="qt" + "7" * 32,
        market_type="SPOT",
        symbol="BTC/USDT",
        side="SELL",
        order_type="STOP_MARKET",
        qty_per=D("10"),
        stop_price=D("90000"),
    )
    okx_sim.inject("timeout", "/api/v5/trade/order-algo", method="POST", delay=1.0)

    with pytest.raises(OrderUncertain):
        adapter.place_order(stop)
    found = adapter.fetch_order_by_client_id(stop)

    assert found is not None and found.status == OrderStatus.OPEN
    assert found.exchange_order_id == okx_sim.orders[0]["algoId"]
    lookups = okx_sim.seen("/api/v5/trade/order-algo", "GET")
    assert lookups[-1].query["algoClOrdId"] == "qt" + "7" * 30
    assert len(okx_sim.orders) == 1


def test_5xx_is_looked_up_and_not_sent_again(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any, settings: Any
) -> None:
    # A 5xx leaves the order's fate unknown: looked up by clOrdId, never sent again (the
    # adapter's client_id_refused_in_every_state is False), then `failed` with "check the venue".
    settings.ORDER_UNCERTAIN_LOOKUPS = 2
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    okx_strategy("SPOT")
    okx_sim.inject("5xx", "/api/v5/trade/order", method="POST")

    order = run(client, wait_orders, timeout=30, order_type="MARKET", side="buy", qty_per=10)

    assert order.status == OrderStatus.FAILED
    assert order.message.startswith("주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요.")
    assert len(okx_sim.seen("/api/v5/trade/order", "POST")) == 1
    venue_id = venue_client_order_id("okx", order.client_order_id)
    assert any(r.query.get("clOrdId") == venue_id for r in okx_sim.seen("/api/v5/trade/order", "GET"))
    assert okx_sim.orders == []


def test_rate_limit_backs_off_then_succeeds(
    client: Client, celery_worker: Any, okx_strategy: Any, okx_sim: OkxSim, wait_orders: Any
) -> None:
    okx_strategy("SPOT")
    okx_sim.inject("rate_limit", "/api/v5/trade/order", method="POST")

    order = run(client, wait_orders, timeout=30, order_type="MARKET", side="buy", qty_per=10)

    assert order.status == OrderStatus.FILLED, order.message
    first, second = okx_sim.seen("/api/v5/trade/order", "POST")
    assert second.received_at - first.received_at >= 0.9  # the worker's 1 s backoff
    assert order.attempts == 2
    assert len(okx_sim.orders) == 1


# --- signing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("api_secret", "wrong-secret", "OKX API 오류: Invalid Sign"),
        ("passphrase", "wrong-pass", "OKX API 오류: OK-ACCESS-PASSPHRASE incorrect."),
        ("api_key", "not-a-key", "OKX API 오류: Invalid OK-ACCESS-KEY."),
    ],
)
def test_bad_credentials_fail_the_order_with_okx_auth_error(
    client: Client,
    celery_worker: Any,
    okx_strategy: Any,
    okx_sim: OkxSim,
    wait_orders: Any,
    field: str,
    value: str,
    message: str,
) -> None:
    account = okx_strategy("SPOT")
    setattr(account, field, value)
    account.save()

    order = run(client, wait_orders, order_type="MARKET", side="buy", qty_per=10)

    assert (order.status, order.message) == (OrderStatus.FAILED, message)
    assert okx_sim.orders == []
    assert okx_sim.seen("/api/v5/trade/order", "POST") == []  # refused at its first signed call


def test_signed_requests_carry_okx_headers_and_verify(okx_account: Any, okx_sim: OkxSim) -> None:
    adapter = adapter_for(okx_account())

    adapter.balances("SPOT")

    [request] = okx_sim.seen("/api/v5/account/balance")
    assert request.header("OK-ACCESS-KEY") == "sim-key"
    assert request.header("OK-ACCESS-PASSPHRASE") == "sim-pass"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", request.header("OK-ACCESS-TIMESTAMP"))
    # The simulator checks the signature itself: a tampered one is refused with 50113.
    headers = {k: v for k, v in request.headers.items() if k.startswith("ok-access")}
    sign = headers["ok-access-sign"]
    headers["ok-access-sign"] = ("B" if sign[0] == "A" else "A") + sign[1:]  # always a different signature
    refused = requests.get(okx_sim.base_url + request.path, headers=headers, timeout=5)
    assert (refused.status_code, refused.json()["code"]) == (401, "50113")


# --- a cancel OKX accepted is not yet a cancel ------------------------------------------------
# POST /api/v5/trade/cancel-order: "Cancel order returns with sCode equal to 0. It is not
# strictly considered that the order has been canceled. It only means that your cancellation
# request has been accepted by the system server."


def resting_order(okx_account: Any, make_strategy: Any) -> Order:
    """An OKX spot LIMIT buy placed through the real execution path, resting."""
    account = okx_account()
    strategy = make_strategy(market_type="SPOT", accounts=[account])
    spec = {"order_type": "LIMIT", "side": "BUY", "qty_per": 10, "price": 90000}
    event = make_orders(strategy, [account], [spec])
    account_orders_execute(event.id, account.pk)
    order = Order.objects.select_related("account").get(webhook=event)
    assert order.status == OrderStatus.OPEN
    return order


@pytest.mark.parametrize("then", ["fills", "cancels"])
def test_an_accepted_cancel_the_venue_has_not_applied_keeps_the_order_live_until_it_ends(
    okx_account: Any, okx_sim: OkxSim, then: str
) -> None:
    adapter = adapter_for(okx_account())
    limit = order_request("qt" + "e" * 32, price=90000)
    placed = adapter.place_order(limit)
    okx_sim.cancel_lag = True

    asked = adapter.cancel_order(limit, placed.exchange_order_id)
    if then == "fills":  # the engine fills it before the cancel takes effect
        okx_sim.fill_order(placed.exchange_order_id)
    assert okx_sim.settle_cancels() == (1 if then == "cancels" else 0)
    ended = adapter.fetch_order_by_client_id(limit)

    assert (asked.status, asked.exchange_order_id) == (OrderStatus.OPEN, placed.exchange_order_id)
    assert asked.message.startswith("취소를 요청했지만 거래소에 주문이 아직 살아 있습니다")
    assert ended is not None
    if then == "fills":
        assert (ended.status, ended.filled_qty) == (OrderStatus.FILLED, placed.quantity)
    else:
        assert (ended.status, ended.filled_qty) == (OrderStatus.CANCELLED, D("0"))


@pytest.mark.django_db(transaction=True)
def test_the_order_page_cancel_okx_has_not_applied_yet_ends_filled_through_the_live_refresh(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any
) -> None:
    order = resting_order(okx_account, make_strategy)
    okx_sim.cancel_lag = True

    after_cancel = order_cancel(order).status
    okx_sim.fill_order(order.exchange_order_id)  # before the cancel takes effect
    live_orders_refresh()
    order.refresh_from_db()

    assert after_cancel == OrderStatus.OPEN  # asked for, not done: still followed
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, order.quantity)


def _age_the_cancel(order: Order, seconds: float = 31) -> None:
    """As if the outstanding cancel had been sent ``seconds`` ago."""
    Order.objects.filter(pk=order.pk).update(cancel_requested_at=timezone.now() - timedelta(seconds=seconds))


def _operator_watching() -> None:
    """A notification destination that wants every kind (its outbox is what the operator gets)."""
    NotificationDestination.objects.create(
        name="ops", url="json://127.0.0.1:9/ops", events=list(EventKind.values)
    )


def _told() -> list[tuple[str, dict[str, Any]]]:
    """What the operator's outbox holds, oldest first."""
    return [(row.kind, row.fields) for row in Notification.objects.order_by("pk")]


def _cancels_sent(okx_sim: OkxSim) -> int:
    return len(okx_sim.seen("/api/v5/trade/cancel-order", method="POST"))


@pytest.mark.django_db(transaction=True)
def test_an_accepted_cancel_the_venue_dropped_is_sent_again_and_ends_the_order(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any
) -> None:
    _operator_watching()
    order = resting_order(okx_account, make_strategy)
    okx_sim.cancel_lag = True
    assert order_cancel(order).status == OrderStatus.OPEN  # accepted, not applied
    assert okx_sim.drop_cancels() == 1  # the venue loses the accepted cancel: it never applies
    okx_sim.cancel_lag = False
    order.refresh_from_db()
    outstanding = (order.cancel_requested_at is not None, order.cancel_resends)

    live_orders_refresh()  # within ORDER_CANCEL_RESEND_SECONDS: nothing sent again
    before = (_cancels_sent(okx_sim), Order.objects.get(pk=order.pk).status)
    _age_the_cancel(order)
    live_orders_refresh()
    order.refresh_from_db()

    assert outstanding == (True, 0)
    assert before == (1, OrderStatus.OPEN)
    assert _cancels_sent(okx_sim) == 2
    assert (order.status, order.cancel_resends) == (OrderStatus.CANCELLED, 1)
    assert [kind for kind, _ in _told() if kind == "order_cancel_unconfirmed"] == []  # nothing to check


@pytest.mark.django_db(transaction=True)
def test_a_cancel_the_venue_never_applies_is_sent_again_a_bounded_number_of_times_and_told(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any, settings: Any
) -> None:
    settings.ORDER_CANCEL_RESENDS = 2
    _operator_watching()
    order = resting_order(okx_account, make_strategy)
    okx_sim.cancel_lag = True  # every cancel is accepted and held
    order_cancel(order)

    sent = []
    for _ in range(4):
        _age_the_cancel(order)
        live_orders_refresh()
        sent.append(_cancels_sent(okx_sim))
    order.refresh_from_db()
    told = [(kind, fields) for kind, fields in _told() if kind == "order_cancel_unconfirmed"]

    assert sent == [2, 3, 3, 3]  # the cancel asked for, then ORDER_CANCEL_RESENDS more, no more
    assert (order.status, order.cancel_resends) == (OrderStatus.OPEN, 2)
    assert order.message == told[1][1]["message"]  # the order page says so too
    assert [fields["order_id"] for _, fields in told] == [str(order.pk)] * 2
    assert told[0][1]["message"] == "거래소가 취소를 접수했지만 주문이 아직 살아 있어 취소를 다시 보냈습니다"
    assert told[1][1]["message"].startswith("취소를 여러 번 다시 보냈지만 거래소에 주문이 아직 살아 있습니다")
    assert okx_sim.settle_cancels() == 1  # the venue applies them at last
    live_orders_refresh()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def _cancel_unread(order: Order, okx_sim: OkxSim) -> None:
    """The order page's cancel, the venue holding it and the read-back after it failing."""
    okx_sim.cancel_lag = True
    okx_sim.inject("5xx", "/api/v5/trade/order", method="GET")  # the read-back after the cancel
    with pytest.raises(VenueError):
        order_cancel(order)
    order.refresh_from_db()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_accepted_whose_read_back_failed_is_followed_up_as_well(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any
) -> None:
    order = resting_order(okx_account, make_strategy)
    _cancel_unread(order, okx_sim)
    outstanding = order.cancel_requested_at is not None
    assert okx_sim.drop_cancels() == 1
    okx_sim.cancel_lag = False

    _age_the_cancel(order)
    live_orders_refresh()
    order.refresh_from_db()

    assert outstanding
    assert (_cancels_sent(okx_sim), order.status, order.cancel_resends) == (2, OrderStatus.CANCELLED, 1)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_whose_read_back_fails_leaves_the_order_live_and_a_later_fill_is_read(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any
) -> None:
    order = resting_order(okx_account, make_strategy)
    _cancel_unread(order, okx_sim)
    after_cancel = (order.status, order.message)
    okx_sim.fill_order(order.exchange_order_id)  # before the cancel takes effect
    live_orders_refresh()
    order.refresh_from_db()

    assert after_cancel[0] == OrderStatus.OPEN
    assert "끝날 때까지 상태를 확인합니다" in after_cancel[1]
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, order.quantity)


@pytest.mark.django_db(transaction=True)
def test_the_order_page_says_a_cancel_was_asked_for_and_leaves_the_order_live(
    okx_account: Any, okx_sim: OkxSim, make_strategy: Any
) -> None:
    account = okx_account()
    strategy = make_strategy(market_type="SPOT", accounts=[account])
    spec = {"order_type": "LIMIT", "side": "BUY", "qty_per": 10, "price": 90000}
    event = make_orders(strategy, [account], [spec])
    account_orders_execute(event.id, account.pk)
    order = Order.objects.get(webhook=event)
    okx_sim.cancel_lag = True
    staff = Client()
    staff.force_login(User.objects.create_user("boss", password="pw-123456", is_staff=True))

    response = staff.post(f"/orders/{order.pk}/cancel/", {"confirm": "1"}, follow=True)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.OPEN
    assert "취소를 요청했습니다. 거래소에 주문이 아직 살아 있어" in response.content.decode()
