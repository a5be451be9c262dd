"""End to end over real HTTP: webhook POST -> real Celery worker -> venue simulator -> the
Order's final status and GET /api/webhooks/<id>. Every seed scenario a venue supports runs
on that venue's simulator; fan-out runs accounts on different venues in parallel."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from orders.exchanges.kis import KisAdapter
from orders.models import Order
from quanttrade.vocabulary import OrderStatus
from tests.webhook.scenarios import ALL
from venuesim.binance import BinanceSim
from venuesim.bybit import BybitSim
from venuesim.kis import KisSim
from venuesim.upbit import UpbitSim

PRODUCT_CODE = {
    "DOMESTIC_STOCK": "01",
    "OVERSEAS_STOCK": "01",
    "DOMESTIC_FUTUREOPTION": "03",
    "OVERSEAS_FUTUREOPTION": "08",
}
# What each venue makes of the guide's scenarios (status, message for refusals).
KIS_REFUSED = {
    "o05-nvda-stop-limit-sell": "한투에서는 STOP_LIMIT 주문을 지원하지 않습니다",
    "o09-sap-xetra-market-buy": "알 수 없는 해외 거래소 코드입니다: XETRA",
    "o10-bp-lse-limit-buy": "알 수 없는 해외 거래소 코드입니다: LSE",
}
# Overseas limit orders priced at or through the simulator's quote trade as they arrive.
KIS_MARKETABLE_LIMITS = {"o02-tsla-limit-buy", "o04-brkb-limit-sell", "o08-vinamilk-limit-buy"}
KIS_MARKETS = ("DOMESTIC_STOCK", "OVERSEAS_STOCK", "DOMESTIC_FUTUREOPTION", "OVERSEAS_FUTUREOPTION")


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def expected(scenario_id: str, fields: dict[str, Any], market_type: str) -> tuple[str, str]:
    order_type = fields["order_type"]
    if scenario_id in KIS_REFUSED:
        return OrderStatus.REJECTED, KIS_REFUSED[scenario_id]
    if order_type == "CANCEL_ALL_ORDER":
        return OrderStatus.CANCELLED, "취소할 미체결 주문이 없습니다"
    if order_type in ("MARKET", "BEST_LIMIT") or scenario_id in KIS_MARKETABLE_LIMITS:
        # KIS answers with the order number only; the adapter reads the fill right after.
        return OrderStatus.FILLED, ""
    return OrderStatus.OPEN, ""


@pytest.mark.parametrize(
    ("market_type", "fields", "_normalized"), [s[1:] for s in ALL], ids=[s[0] for s in ALL]
)
def test_seed_scenario_on_its_venue_simulator(
    request: pytest.FixtureRequest,
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    market_type: str,
    fields: dict[str, Any],
    _normalized: dict[str, Any],
) -> None:
    scenario_id = request.node.callspec.id
    symbol = fields.get("symbol", "")
    if market_type in ("SPOT", "FUTURES"):
        venue = "upbit" if symbol.endswith("/KRW") else "binance"
        sim = request.getfixturevalue(f"{venue}_sim")
        account = request.getfixturevalue(f"{venue}_account")()
        if fields.get("qty_per") == -100:
            sim.positions["BTCUSDT"] = Decimal("0.5")
    else:
        sim = request.getfixturevalue("kis_sim")
        sim.holdings["000660"] = Decimal("100")
        account = request.getfixturevalue("kis_account")(product_code=PRODUCT_CODE[market_type])
    make_strategy(group_name="scenario", market_type=market_type, token="tok", accounts=[account])

    webhook_id = post(client, {"group_name": "scenario", "token": "tok", **fields})

    [order] = wait_orders(webhook_id=webhook_id, timeout=20)
    status, message = expected(scenario_id, fields, market_type)
    assert (order.status, order.message) == (status, message) if message else order.status == status, (
        order.status,
        order.message,
    )
    if status in (OrderStatus.FILLED, OrderStatus.OPEN):
        assert order.exchange_order_id
        assert len(sim.orders) == 1  # exactly one order reached the venue
    if status == OrderStatus.FILLED:
        assert order.filled_qty > 0 and order.avg_price is not None
    if status == OrderStatus.FILLED and market_type in KIS_MARKETS:
        [venue_order] = sim.orders
        assert (order.filled_qty, order.avg_price) == (venue_order["filled"], venue_order["avg"])
        assert order.filled_qty == order.quantity
    if status in (OrderStatus.REJECTED, OrderStatus.CANCELLED):
        assert sim.orders == []


def test_fan_out_runs_venues_in_parallel_and_isolates_a_failure(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    upbit_sim: UpbitSim,
    upbit_account: Any,
) -> None:
    failing_sim = BinanceSim()
    failing_sim.start()
    try:
        failing = binance_account("binance-broken")
        failing.settings = {**failing.settings, "api_base_url": failing_sim.base_url}
        failing.save()
        accounts = [binance_account("binance-ok"), upbit_account("upbit-ok"), failing]
        make_strategy(group_name="fan", market_type="SPOT", token="tok", accounts=accounts)
        # Each venue takes 0.6 s to answer the order: one after the other, the second order would
        # reach its venue at least 0.6 s after the first.
        binance_sim.inject("timeout", "/api/v3/order", method="POST", delay=0.6)
        upbit_sim.inject("timeout", "/v1/orders", method="POST", delay=0.6)
        failing_sim.inject(
            "reject",
            "/api/v3/order",
            method="POST",
            message="Account has insufficient balance for requested action.",
        )

        webhook_id = post(
            client,
            {
                "group_name": "fan",
                "token": "tok",
                "symbol": "BTC/USDT",
                "currency": "USDT",
                "order_type": "MARKET",
                "side": "buy",
                "qty_per": 10,
            },
        )
        orders = wait_orders(webhook_id=webhook_id, timeout=20)

        assert {o.account.name: o.status for o in orders} == {
            "binance-ok": OrderStatus.FILLED,
            "upbit-ok": OrderStatus.FILLED,
            "binance-broken": OrderStatus.REJECTED,
        }
        [binance_post] = binance_sim.seen("/api/v3/order", "POST")
        [upbit_post] = upbit_sim.seen("/v1/orders", "POST")
        assert abs(binance_post.received_at - upbit_post.received_at) < 0.6
        assert len(binance_sim.orders) == 1 and len(upbit_sim.orders) == 1 and failing_sim.orders == []
        body = admin_client.get(f"/api/webhooks/{webhook_id}").json()
        rows = {row["account"]: row for row in body["orders"]}
        assert rows["binance-ok"]["status"] == "filled" and rows["binance-ok"]["exchange"] == "BINANCE"
        assert rows["upbit-ok"]["status"] == "filled" and rows["upbit-ok"]["exchange"] == "UPBIT"
        assert rows["binance-broken"]["status"] == "rejected"
        assert (
            rows["binance-broken"]["message"]
            == "Binance API 오류: Account has insufficient balance for requested action."
        )
    finally:
        failing_sim.stop()


def test_timeout_after_the_venue_accepted_ends_with_exactly_one_order(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
) -> None:
    make_strategy(
        group_name="t", market_type="SPOT", token="tok", accounts=[binance_account(timeout_seconds=0.5)]
    )
    binance_sim.inject("timeout", "/api/v3/order", method="POST", delay=1.0)

    webhook_id = post(
        client,
        {
            "group_name": "t",
            "token": "tok",
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 10,
        },
    )

    [order] = wait_orders(webhook_id=webhook_id, timeout=20)
    assert order.status == OrderStatus.FILLED
    assert len(binance_sim.orders_for(order.client_order_id)) == 1
    assert len(binance_sim.orders) == 1


def test_5xx_is_looked_up_and_never_sent_again(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    settings: Any,
) -> None:
    """Binance: a 5xx leaves the execution status UNKNOWN. The worker looks the order up and,
    as Binance would take a repeat of a filled order as a new one, never sends it again."""
    settings.ORDER_UNCERTAIN_LOOKUPS = 2
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    make_strategy(group_name="t", market_type="SPOT", token="tok", accounts=[binance_account()])
    binance_sim.inject("5xx", "/api/v3/order", method="POST")

    webhook_id = post(client, {"group_name": "t", "token": "tok", **MARKET_BUY})

    [order] = wait_orders(webhook_id=webhook_id, timeout=30)
    assert order.status == OrderStatus.FAILED
    assert order.message == (
        "주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요. "
        "(Binance API 오류: Internal error; unable to process your request. Please try again.)"
    )
    assert len(binance_sim.seen("/api/v3/order", "POST")) == 1
    lookups = [
        r
        for r in binance_sim.seen("/api/v3/order", "GET")
        if r.query.get("origClientOrderId") == order.client_order_id
    ]
    assert len(lookups) == 3  # at once, then ORDER_UNCERTAIN_LOOKUPS more
    assert binance_sim.orders == []


def test_kis_token_expiry_refreshes_once_through_the_worker(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    kis_sim: KisSim,
    kis_account: Any,
) -> None:
    account = kis_account()
    make_strategy(group_name="k", market_type="DOMESTIC_STOCK", token="tok", accounts=[account])
    client_of_account = KisAdapter(account).client
    client_of_account.token()  # issued earlier (over a minute ago, as far as the rule is concerned)
    cache.delete(client_of_account._token_issued_key)
    kis_sim.last_token_at.clear()
    kis_sim.inject("token_expired", "/uapi/domestic-stock/v1/trading/order-cash")

    webhook_id = post(
        client,
        {
            "group_name": "k",
            "token": "tok",
            "symbol": "005930",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 1,
        },
    )

    [order] = wait_orders(webhook_id=webhook_id, timeout=20)
    assert order.status == OrderStatus.FILLED
    assert len(kis_sim.orders) == 1
    assert Order.objects.get(pk=order.pk).exchange_order_id == kis_sim.orders[0]["odno"]
    assert kis_sim.token_requests == 2  # the first token, then exactly one refresh


def test_one_webhook_reaches_binance_bybit_and_upbit_in_parallel_and_kis_answers_for_itself(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
    upbit_sim: UpbitSim,
    upbit_account: Any,
    kis_sim: KisSim,
    kis_account: Any,
) -> None:
    accounts = [
        binance_account("binance"),
        bybit_account("bybit"),
        upbit_account("upbit"),
        kis_account("kis"),
    ]
    make_strategy(group_name="four", market_type="SPOT", token="tok", accounts=accounts)
    # Each venue takes 1 s to answer the order: one after the other, the order requests would
    # reach their venues at least 1 s apart.
    binance_sim.inject("timeout", "/api/v3/order", method="POST", delay=1.0)
    bybit_sim.inject("timeout", "/v5/order/create", method="POST", delay=1.0)
    upbit_sim.inject("timeout", "/v1/orders", method="POST", delay=1.0)

    webhook_id = post(
        client,
        {
            "group_name": "four",
            "token": "tok",
            "symbol": "BTC/USDT",
            "currency": "USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 10,
        },
    )
    orders = wait_orders(webhook_id=webhook_id, timeout=30)

    by_account = {o.account.name: o for o in orders}
    assert {name: o.status for name, o in by_account.items()} == {
        "binance": OrderStatus.FILLED,
        "bybit": OrderStatus.FILLED,
        "upbit": OrderStatus.FILLED,
        # A strategy has one market type: a KIS account cannot trade a SPOT crypto signal and
        # says so on its own Order, before any request, without touching the other accounts.
        "kis": OrderStatus.REJECTED,
    }
    assert by_account["kis"].message == "한투에서는 SPOT 주문을 지원하지 않습니다"
    assert kis_sim.orders == []
    [binance_post] = binance_sim.seen("/api/v3/order", "POST")
    [bybit_post] = bybit_sim.seen("/v5/order/create", "POST")
    [upbit_post] = upbit_sim.seen("/v1/orders", "POST")
    arrivals = [binance_post.received_at, bybit_post.received_at, upbit_post.received_at]
    assert max(arrivals) - min(arrivals) < 1.0
    assert len(binance_sim.orders) == len(bybit_sim.orders) == len(upbit_sim.orders) == 1
    assert bybit_sim.orders[0]["link_id"] == by_account["bybit"].client_order_id
    assert upbit_sim.orders[0]["market"] == "USDT-BTC"
    body = admin_client.get(f"/api/webhooks/{webhook_id}").json()
    rows = {row["account"]: row for row in body["orders"]}
    assert {name: (row["exchange"], row["status"]) for name, row in rows.items()} == {
        "binance": ("BINANCE", "filled"),
        "bybit": ("BYBIT", "filled"),
        "upbit": ("UPBIT", "filled"),
        "kis": ("KIS", "rejected"),
    }
    assert rows["bybit"]["exchange_order_id"] == bybit_sim.orders[0]["id"]
    assert rows["kis"]["message"] == "한투에서는 SPOT 주문을 지원하지 않습니다"


def test_a_failing_bybit_account_does_not_touch_the_others(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    bybit_sim: BybitSim,
    bybit_account: Any,
    upbit_sim: UpbitSim,
    upbit_account: Any,
) -> None:
    accounts = [binance_account("binance"), bybit_account("bybit"), upbit_account("upbit")]
    make_strategy(group_name="iso", market_type="SPOT", token="tok", accounts=accounts)
    bybit_sim.inject("reject", "/v5/order/create", method="POST")

    webhook_id = post(
        client,
        {
            "group_name": "iso",
            "token": "tok",
            "symbol": "BTC/USDT",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 10,
        },
    )
    orders = wait_orders(webhook_id=webhook_id, timeout=30)

    assert {o.account.name: o.status for o in orders} == {
        "binance": OrderStatus.FILLED,
        "bybit": OrderStatus.REJECTED,
        "upbit": OrderStatus.FILLED,
    }
    assert bybit_sim.orders == [] and len(binance_sim.orders) == 1 and len(upbit_sim.orders) == 1
    rows = {row["account"]: row for row in admin_client.get(f"/api/webhooks/{webhook_id}").json()["orders"]}
    assert (rows["bybit"]["status"], rows["bybit"]["message"]) == (
        "rejected",
        "Bybit API 오류: Insufficient balance.",
    )
    assert rows["binance"]["status"] == rows["upbit"]["status"] == "filled"


MARKET_BUY = {"symbol": "BTC/USDT", "currency": "USDT", "order_type": "MARKET", "side": "buy", "qty_per": 1}


def test_twenty_placements_processed_late_make_exactly_one_venue_order_each(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    settings: Any,
) -> None:
    """Finding #7: the first 10 of 20 MARKET placements are processed 3 s after they arrive
    (the client gave up after 0.5 s). Under Binance's own client-id rule a re-send after a
    lookup that missed becomes a second fill; the worker must only look them up."""
    settings.ORDER_UNCERTAIN_LOOKUPS = 10
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.5
    make_strategy(
        group_name="late", market_type="SPOT", token="tok", accounts=[binance_account(timeout_seconds=0.5)]
    )
    binance_sim.inject("late", "/api/v3/order", method="POST", count=10, delay=3.0)

    webhook_ids = [post(client, {"group_name": "late", "token": "tok", **MARKET_BUY}) for _ in range(20)]

    orders = [o for w in webhook_ids for o in wait_orders(webhook_id=w, timeout=60)]
    per_signal = {o.client_order_id: len(binance_sim.orders_for(o.client_order_id)) for o in orders}
    assert sorted(per_signal.values()) == [1] * 20, per_signal
    assert len(binance_sim.orders) == 20
    assert {o.status for o in orders} == {OrderStatus.FILLED}, [(o.status, o.message) for o in orders]


@pytest.mark.parametrize(
    ("first", "second"), [("lost", "timeout"), ("lost", "drop"), ("lost", "lost"), ("timeout", "timeout")]
)
def test_two_uncertain_answers_for_one_order_never_make_a_second_order(
    client: Client,
    admin_client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    settings: Any,
    first: str,
    second: str,
) -> None:
    """Finding #7: a second uncertain answer for the same order ended it `failed` after one
    attempt while the venue held it filled. Binance accepts a closed order's client id again,
    so the order is never sent a second time: it is looked up until the lookups run out."""
    settings.ORDER_UNCERTAIN_LOOKUPS = 3
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    make_strategy(
        group_name="u2", market_type="SPOT", token="tok", accounts=[binance_account(timeout_seconds=0.5)]
    )
    binance_sim.inject(first, "/api/v3/order", method="POST", delay=1.0)
    binance_sim.inject(second, "/api/v3/order", method="POST", delay=1.0)

    webhook_id = post(client, {"group_name": "u2", "token": "tok", **MARKET_BUY})

    [order] = wait_orders(webhook_id=webhook_id, timeout=30)
    venue_orders = binance_sim.orders_for(order.client_order_id)
    posts = binance_sim.seen("/api/v3/order", "POST")
    assert len(posts) == 1  # never sent again: Binance would take a repeat as a new order
    if first == "lost":
        # The venue never handled it: nothing there, and the Order says the venue must be checked.
        assert venue_orders == []
        assert order.status == OrderStatus.FAILED
        assert order.message.startswith("주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요.")
        row = admin_client.get(f"/api/webhooks/{webhook_id}").json()["orders"][0]
        assert (row["status"], row["message"]) == ("failed", order.message)
    else:
        assert len(venue_orders) == 1
        assert (order.status, order.exchange_order_id) == (OrderStatus.FILLED, str(venue_orders[0]["id"]))
