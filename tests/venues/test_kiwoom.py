"""Kiwoom end to end over real HTTP: webhook POST -> real Celery worker -> KiwoomAdapter ->
the Kiwoom simulator (venuesim/kiwoom.py) -> the Order's final status. Kiwoom has no client
order id; whatever the fault, the venue ends with exactly one order per signal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRejected, OrderRequest
from orders.exchanges.kiwoom import KiwoomAdapter
from orders.exchanges.kiwoom.domestic_stock import KRX_STOCK_STEPS
from orders.services import live_orders_refresh
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account, link_problem
from tests.webhook.scenarios import DOMESTIC_STOCK
from venuesim.kis import KisSim
from venuesim.kiwoom import ORDER_PATH, KiwoomSim


@pytest.fixture
def kiwoom_sim() -> Iterator[KiwoomSim]:
    sim = KiwoomSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def kiwoom_account(make_account: Callable[..., Account], kiwoom_sim: KiwoomSim) -> Callable[..., Account]:
    def make(name: str = "kiwoom-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="KIWOOM",
            api_key="sim-appkey",
            api_secret="sim-secretkey",
            settings={
                "api_base_url": kiwoom_sim.base_url,
                "account_number": "1234567890",
                "timeout_seconds": 2,
                "rate_limit_per_second": 50,
                **settings,
            },
        )

    return make


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.json()
    return str(response.json()["webhook_id"])


def request(**fields: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "client_order_id": "c-1",
        "market_type": "DOMESTIC_STOCK",
        "symbol": "005930",
        "side": "BUY",
        "order_type": "MARKET",
        "qty_per": Decimal(2),
    }
    return OrderRequest(**{**base, **fields})


# --- the adapter against the simulator ---------------------------------------------------


@pytest.mark.django_db
def test_market_buy_is_sent_as_kt10000_and_reads_filled(kiwoom_sim: KiwoomSim, kiwoom_account: Any) -> None:
    adapter = adapter_for(kiwoom_account())
    assert isinstance(adapter, KiwoomAdapter)

    result = adapter.place_order(request())

    [sent] = kiwoom_sim.seen(ORDER_PATH)
    assert sent.header("api-id") == "kt10000" and sent.header("authorization").startswith("Bearer ")
    assert json.loads(sent.body) == {
        "dmst_stex_tp": "KRX",
        "stk_cd": "005930",
        "ord_qty": "2",
        "ord_uv": "",
        "trde_tp": "3",
        "cond_uv": "",
    }
    assert result.status == OrderStatus.FILLED and result.exchange_order_id == kiwoom_sim.orders[0]["ord_no"]
    assert (result.filled_qty, result.avg_price) == (Decimal(2), Decimal(70000))


@pytest.mark.parametrize(
    ("order_type", "trde_tp"),
    [("LIMIT", "0"), ("CONDITIONAL_LIMIT", "5"), ("PRE_MARKET", "61"), ("AFTER_MARKET", "81")],
)
@pytest.mark.django_db
def test_priced_order_types_map_to_trde_tp_and_rest(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any, order_type: str, trde_tp: str
) -> None:
    result = adapter_for(kiwoom_account()).place_order(request(order_type=order_type, price=Decimal("69990")))

    body = json.loads(kiwoom_sim.seen(ORDER_PATH)[0].body)
    assert (body["trde_tp"], body["ord_uv"]) == (trde_tp, "69900")  # onto the 100-won step, downward
    assert result.status == OrderStatus.OPEN


@pytest.mark.django_db
def test_sell_price_rounds_up_and_nxt_goes_through_exchange_id(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any
) -> None:
    adapter_for(kiwoom_account()).place_order(
        request(side="SELL", order_type="LIMIT", price=Decimal("70010"), params={"exchange_id": "nxt"})
    )
    [sent] = kiwoom_sim.seen(ORDER_PATH)
    body = json.loads(sent.body)
    assert (sent.header("api-id"), body["ord_uv"], body["dmst_stex_tp"]) == ("kt10001", "70100", "NXT")


@pytest.mark.django_db
def test_stop_limit_is_stop_designated_and_stop_market_is_refused(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any
) -> None:
    adapter = adapter_for(kiwoom_account())
    adapter.place_order(request(order_type="STOP_LIMIT", price=Decimal(71000), stop_price=Decimal(70500)))
    body = json.loads(kiwoom_sim.seen(ORDER_PATH)[0].body)
    assert (body["trde_tp"], body["ord_uv"], body["cond_uv"]) == ("28", "71000", "70500")

    with pytest.raises(OrderRejected) as refused:
        adapter.place_order(request(client_order_id="c-2", order_type="STOP_MARKET", stop_price=Decimal(1)))
    assert refused.value.message == "키움에서는 STOP_MARKET 주문을 지원하지 않습니다"
    assert len(kiwoom_sim.orders) == 1


@pytest.mark.django_db
def test_unknown_exchange_id_and_other_markets_are_refused(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any
) -> None:
    adapter = adapter_for(kiwoom_account())
    with pytest.raises(OrderRejected, match="ABC"):
        adapter.place_order(request(order_type="LIMIT", price=Decimal(1000), params={"exchange_id": "ABC"}))
    with pytest.raises(OrderRejected):
        adapter.place_order(request(market_type="OVERSEAS_STOCK", symbol="AAPL"))
    assert kiwoom_sim.orders == []


@pytest.mark.django_db
def test_close_all_sells_the_orderable_holding(kiwoom_sim: KiwoomSim, kiwoom_account: Any) -> None:
    kiwoom_sim.holdings["005930"] = Decimal(37)
    result = adapter_for(kiwoom_account()).place_order(request(side="SELL", qty_per=Decimal(-100)))

    body = json.loads(kiwoom_sim.seen(ORDER_PATH)[0].body)
    assert (kiwoom_sim.seen(ORDER_PATH)[0].header("api-id"), body["ord_qty"]) == ("kt10001", "37")
    assert result.status == OrderStatus.FILLED and kiwoom_sim.holdings["005930"] == 0


@pytest.mark.django_db
def test_cancel_all_pages_the_order_list_and_cancels_what_is_left(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any
) -> None:
    kiwoom_sim.page_size = 2
    adapter = adapter_for(kiwoom_account())
    for n in range(5):
        adapter.place_order(request(client_order_id=f"c-{n}", order_type="LIMIT", price=Decimal(60000)))
    adapter.place_order(request(client_order_id="c-market"))  # filled: nothing to cancel

    assert adapter.cancel_all("DOMESTIC_STOCK", "005930") == 5
    assert [r.header("api-id") for r in kiwoom_sim.seen(ORDER_PATH)].count("kt10003") == 5
    assert {r.header("cont-yn") for r in kiwoom_sim.seen("/api/dostk/acnt")} == {"", "Y"}
    assert adapter.cancel_all("DOMESTIC_STOCK", None) == 0


@pytest.mark.django_db
def test_balances_read_orderable_cash_and_holdings(kiwoom_sim: KiwoomSim, kiwoom_account: Any) -> None:
    adapter = adapter_for(kiwoom_account())
    adapter.place_order(request(order_type="LIMIT", price=Decimal(60000), qty_per=Decimal(10)))
    balances = adapter.balances()
    assert balances["KRW"].free == Decimal(100000000 - 600000) and balances["KRW"].locked == Decimal(600000)
    assert balances["005930"].free == Decimal(100)


@pytest.mark.django_db
def test_token_is_issued_once_and_refreshed_once_when_it_expires(
    kiwoom_sim: KiwoomSim, kiwoom_account: Any
) -> None:
    adapter = adapter_for(kiwoom_account())
    adapter.place_order(request())
    kiwoom_sim.expire_tokens()
    cache.delete(adapter.client.tokens.issued_key)  # a day later: a new token may be issued
    adapter.place_order(request(client_order_id="c-2"))
    assert kiwoom_sim.token_requests == 2 and len(kiwoom_sim.orders) == 2


@pytest.mark.django_db
def test_rate_limited_answers_are_backed_off_and_retried(kiwoom_sim: KiwoomSim, kiwoom_account: Any) -> None:
    kiwoom_sim.inject("rate_limit", ORDER_PATH)
    result = adapter_for(kiwoom_account()).place_order(request())
    assert result.status == OrderStatus.FILLED and len(kiwoom_sim.orders) == 1


@pytest.mark.django_db
def test_a_refusal_is_rejected_with_the_venue_message(kiwoom_sim: KiwoomSim, kiwoom_account: Any) -> None:
    with pytest.raises(OrderRejected) as refused:
        adapter_for(kiwoom_account()).place_order(request(symbol="999999"))
    assert refused.value.message == "키움 API 오류: 종목코드가 존재하지 않습니다"


def test_krx_step_table() -> None:
    assert KRX_STOCK_STEPS.to_step(Decimal("1999"), "BUY") == Decimal(1999)
    assert KRX_STOCK_STEPS.to_step(Decimal("19999"), "SELL") == Decimal(20000)
    assert KRX_STOCK_STEPS.to_step(Decimal("499999"), "BUY") == Decimal(499500)
    assert KRX_STOCK_STEPS.to_step(Decimal("500001"), "SELL") == Decimal(501000)


def test_kiwoom_links_to_domestic_stock_strategies_only() -> None:
    assert link_problem("KIWOOM", "DOMESTIC_STOCK") is None
    assert link_problem("KIWOOM", "OVERSEAS_STOCK") and link_problem("KIWOOM", "SPOT")


# --- end to end through the webhook and a Celery worker --------------------------------

KR_SCENARIOS = {s[0]: s for s in DOMESTIC_STOCK}


@pytest.mark.parametrize("scenario", list(KR_SCENARIOS))
def test_seed_kr_scenarios_on_kiwoom(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    kiwoom_sim: KiwoomSim,
    kiwoom_account: Any,
    scenario: str,
) -> None:
    _id, market_type, fields, _normalized = KR_SCENARIOS[scenario]
    kiwoom_sim.holdings["000660"] = Decimal(100)
    make_strategy(group_name="kr", market_type=market_type, token="tok", accounts=[kiwoom_account()])

    [order] = wait_orders(webhook_id=post(client, {"group_name": "kr", "token": "tok", **fields}), timeout=20)

    [venue_order] = kiwoom_sim.orders
    assert order.exchange_order_id == venue_order["ord_no"]
    if fields["order_type"] in ("MARKET", "BEST_LIMIT"):
        assert order.status == OrderStatus.FILLED, order.message
        assert (order.filled_qty, order.avg_price) == (venue_order["filled"], venue_order["avg"])
    else:
        assert order.status == OrderStatus.OPEN, order.message


def test_batch_cancel_all_then_close_all(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    kiwoom_sim: KiwoomSim,
    kiwoom_account: Any,
) -> None:
    make_strategy(group_name="kr", market_type="DOMESTIC_STOCK", token="tok", accounts=[kiwoom_account()])
    batch = {
        "group_name": "kr",
        "token": "tok",
        "symbol": "005930",
        "orders": [
            {"order_type": "LIMIT", "side": "buy", "price": 65000, "qty_per": 3},
            {"order_type": "LIMIT", "side": "buy", "price": 64000, "qty_per": 3},
        ],
    }
    first = wait_orders(webhook_id=post(client, batch), timeout=20)
    assert [o.status for o in first] == [OrderStatus.OPEN, OrderStatus.OPEN]

    cancel = {"group_name": "kr", "token": "tok", "symbol": "005930", "order_type": "CANCEL_ALL_ORDER"}
    [cancelled] = wait_orders(webhook_id=post(client, cancel), timeout=20)
    assert cancelled.status == OrderStatus.CANCELLED
    assert all(o["cancelled"] == 3 for o in kiwoom_sim.orders)

    close = {
        "group_name": "kr",
        "token": "tok",
        "symbol": "005930",
        "order_type": "MARKET",
        "side": "sell",
        "qty_per": -100,
    }
    [closed] = wait_orders(webhook_id=post(client, close), timeout=20)
    assert closed.status == OrderStatus.FILLED and closed.filled_qty == 100
    assert kiwoom_sim.holdings["005930"] == 0


def test_fan_out_to_a_kis_and_a_kiwoom_account_on_one_domestic_strategy(
    client: Client,
    celery_worker: Any,
    make_strategy: Any,
    wait_orders: Any,
    kiwoom_sim: KiwoomSim,
    kiwoom_account: Any,
    kis_sim: KisSim,
    kis_account: Any,
) -> None:
    make_strategy(
        group_name="both",
        market_type="DOMESTIC_STOCK",
        token="tok",
        accounts=[kis_account(), kiwoom_account()],
    )
    body = {
        "group_name": "both",
        "token": "tok",
        "symbol": "005930",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 5,
    }
    orders = wait_orders(webhook_id=post(client, body), timeout=20)

    assert {o.account.exchange: o.status for o in orders} == {
        "KIS": OrderStatus.FILLED,
        "KIWOOM": OrderStatus.FILLED,
    }
    assert len(kis_sim.orders) == 1 and len(kiwoom_sim.orders) == 1


# --- faults: exactly one venue order per signal ----------------------------------------


@pytest.fixture
def signal(client: Client, make_strategy: Any, kiwoom_account: Any) -> Callable[..., str]:
    make_strategy(
        group_name="f",
        market_type="DOMESTIC_STOCK",
        token="tok",
        accounts=[kiwoom_account(timeout_seconds=0.5)],
    )

    def send(**fields: Any) -> str:
        body = {
            "group_name": "f",
            "token": "tok",
            "symbol": "005930",
            "order_type": "MARKET",
            "side": "buy",
            "qty_per": 2,
        }
        return post(client, {**body, **fields})

    return send


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_an_answer_lost_after_the_venue_accepted_ends_filled_with_one_order(
    celery_worker: Any, kiwoom_sim: KiwoomSim, signal: Any, wait_orders: Any, fault: str
) -> None:
    kiwoom_sim.inject(fault, ORDER_PATH, delay=1.0)
    [order] = wait_orders(webhook_id=signal(), timeout=20)
    [venue_order] = kiwoom_sim.orders
    assert (order.status, order.exchange_order_id) == (OrderStatus.FILLED, venue_order["ord_no"]), (
        order.message
    )
    assert len(kiwoom_sim.seen(ORDER_PATH)) == 1


def test_timeout_on_a_resting_order_ends_open_with_one_order(
    celery_worker: Any, kiwoom_sim: KiwoomSim, signal: Any, wait_orders: Any
) -> None:
    kiwoom_sim.inject("timeout", ORDER_PATH, delay=1.0)
    [order] = wait_orders(webhook_id=signal(order_type="LIMIT", price=60000), timeout=20)
    [venue_order] = kiwoom_sim.orders
    assert (order.status, order.exchange_order_id) == (OrderStatus.OPEN, venue_order["ord_no"]), order.message


@pytest.mark.parametrize("fault", ["lost", "5xx"])
def test_an_order_whose_fate_is_unknown_is_never_sent_again(
    celery_worker: Any,
    kiwoom_sim: KiwoomSim,
    kiwoom_account: Any,
    signal: Any,
    wait_orders: Any,
    fault: str,
    settings: Any,
) -> None:
    # From the client, a request lost before the venue (or answered 5xx) looks like one the
    # venue may still be processing. Kiwoom has no client order id that refuses a repeat
    # (client_id_refused_in_every_state is False), so the order is only looked up and ends
    # `failed` with "check the venue": never a second order for one signal.
    settings.ORDER_UNCERTAIN_LOOKUPS = 2
    settings.ORDER_UNCERTAIN_BACKOFF_SECONDS = 0.2
    kiwoom_sim.inject(fault, ORDER_PATH)

    [order] = wait_orders(webhook_id=signal(), timeout=20)

    assert kiwoom_sim.orders == []
    assert order.status == OrderStatus.FAILED
    assert order.message.startswith("주문 접수 여부를 확인할 수 없습니다. 거래소에서 직접 확인하세요.")


@pytest.mark.parametrize("fault", ["rate_limit", "token_expired"])
def test_rate_limit_and_token_expiry_mid_run_leave_one_order(
    celery_worker: Any,
    kiwoom_sim: KiwoomSim,
    kiwoom_account: Any,
    signal: Any,
    wait_orders: Any,
    fault: str,
) -> None:
    # The token was issued long ago (not within Kiwoom's one-a-minute window).
    client = KiwoomAdapter(Account.objects.get(exchange="KIWOOM")).client
    client.token()
    cache.delete(client.tokens.issued_key)
    kiwoom_sim.inject(fault, ORDER_PATH)
    [order] = wait_orders(webhook_id=signal(), timeout=20)
    assert len(kiwoom_sim.orders) == 1 and order.status == OrderStatus.FILLED, order.message
    assert kiwoom_sim.token_requests == (2 if fault == "token_expired" else 1)


@pytest.mark.django_db
def test_mock_trading_is_krx_only_and_uses_the_mock_domain(kiwoom_account: Any) -> None:
    account = kiwoom_account()
    account.is_testnet = True
    account.settings = {**account.settings, "api_base_url": ""}
    adapter = KiwoomAdapter(account)
    assert adapter.client.base_url == "https://mockapi.kiwoom.com"
    with pytest.raises(OrderRejected) as refused:
        adapter.place_order(request(order_type="LIMIT", price=Decimal(70000), params={"exchange_id": "SOR"}))
    assert refused.value.message == "키움 모의투자는 KRX만 지원합니다: SOR"


def test_a_resting_order_filled_later_is_read_by_the_live_refresh(
    celery_worker: Any, kiwoom_sim: KiwoomSim, signal: Any, wait_orders: Any
) -> None:
    [order] = wait_orders(webhook_id=signal(order_type="LIMIT", price=60000), timeout=20)
    assert order.status == OrderStatus.OPEN
    kiwoom_sim.fill_order(order.exchange_order_id, Decimal(60000))

    assert live_orders_refresh() == 1
    order.refresh_from_db()
    assert (order.status, order.filled_qty, order.avg_price) == (
        OrderStatus.FILLED,
        Decimal(2),
        Decimal(60000),
    )
    assert live_orders_refresh() == 0


@pytest.mark.django_db
def test_refusals_are_korean_by_default_and_english_on_request(kiwoom_account: Any) -> None:
    adapter = adapter_for(kiwoom_account())
    with pytest.raises(OrderRejected) as korean:
        adapter.place_order(request(order_type="STOP_MARKET", stop_price=Decimal(1)))
    with translation.override("en"), pytest.raises(OrderRejected) as english:
        adapter.place_order(request(order_type="STOP_MARKET", stop_price=Decimal(1)))
    assert korean.value.message == "키움에서는 STOP_MARKET 주문을 지원하지 않습니다"
    assert english.value.message == "STOP_MARKET orders are not supported on 키움"
