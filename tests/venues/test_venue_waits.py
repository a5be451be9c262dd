"""Order threads with one turn (orders/handoff.py) against venue simulators over HTTP: while an
order waits for its venue's answer another account's order runs, so the accounts' requests are
at the venue at the same time although one order runs at a time.

Embedded mode's pool: no Celery worker and a broker that fails every publish, so the orders can
only run on the pool. Distributed mode's: the real Celery worker with order threads of its own
(orders.tasks)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from orders import handoff
from orders import services as order_services
from orders.models import Order
from tests.execution.test_worker_order_threads import order_threads_of_the_worker
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim

pytestmark = pytest.mark.django_db(transaction=True)

LATENCY = 0.3  # seconds each simulator request takes to answer: far beyond an order's own CPU
LOAD_BOUND = 30.0  # seconds a held markets load or the test waits at most


@pytest.fixture
def one_turn(monkeypatch: pytest.MonkeyPatch) -> Iterator[handoff.LocalPool]:
    def no_broker(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an execution went to the broker instead of the pool")

    monkeypatch.setattr(order_services.celery_app, "send_task", no_broker)
    pool = handoff.LocalPool(4, running=1)
    handoff.install(pool)
    yield pool
    handoff.uninstall(pool)
    pool.shutdown(wait=True)


def post(client: Client, body: dict[str, Any]) -> str:
    response = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    return str(response.json()["webhook_id"])


def at_venue_together(orders: list[Order]) -> None:
    """Every order's request left before any order's answer came back (each took LATENCY at
    the venue): one after the other, the last would have left after the first was answered."""
    sent = [order.trail["t0"] + order.trail["sent"] for order in orders]
    answered = [order.trail["t0"] + order.trail["answered"] for order in orders]
    assert max(sent) < min(answered), (sent, answered)


@pytest.fixture
def worker_one_turn(celery_worker: Any, settings: Any) -> Iterator[handoff.LocalPool]:
    """The session's Celery worker with order threads of its own running one order at a time,
    as a worker started with WORKER_ORDER_TURNS=1 does; a fan-out in one task (one chunk)."""
    settings.ORDER_FANOUT_TASKS = 1
    with order_threads_of_the_worker(running=1) as pool:
        yield pool


@pytest.mark.parametrize("order_threads", ["one_turn", "worker_one_turn"], ids=["embedded", "worker-chunk"])
def test_three_binance_accounts_orders_are_at_the_venue_together_with_one_turn(
    order_threads: str,
    request: pytest.FixtureRequest,
    client: Client,
    make_strategy: Any,
    binance_sim: BinanceSim,
    binance_account: Any,
    wait_orders: Any,
) -> None:
    """A market buy to three Binance accounts, the simulator LATENCY away: all three filled, and
    at the venue together, on embedded mode's pool and in one task of a distributed worker
    (which, without order threads, would place its chunk's accounts one after another)."""
    request.getfixturevalue(order_threads)
    binance_sim.latency = LATENCY
    accounts = [binance_account(f"binance-{i}") for i in range(3)]
    make_strategy(group_name="waits", token="tok", accounts=accounts)
    body = {"group_name": "waits", "token": "tok", "symbol": "BTC/USDT", "currency": "USDT"}
    webhook_id = post(client, {**body, "order_type": "MARKET", "side": "buy", "qty_per": 10})
    orders = wait_orders(webhook_id=webhook_id, timeout=30)
    assert [order.status for order in orders] == ["filled"] * 3, [order.message for order in orders]
    assert len(binance_sim.seen("/api/v3/order", "POST")) == 3
    at_venue_together(orders)


def test_three_kis_accounts_share_one_token_and_are_at_the_venue_together_with_one_turn(
    one_turn: handoff.LocalPool,
    client: Client,
    make_strategy: Any,
    kis_sim: KisSim,
    kis_account: Any,
    wait_orders: Any,
) -> None:
    """KIS: the first order issues the app key's token while the others wait for it on the
    process's lock (giving their turn), then all three place their orders."""
    kis_sim.latency = LATENCY
    accounts = [kis_account(f"kis-{i}") for i in range(3)]
    make_strategy(group_name="waits", market_type="DOMESTIC_STOCK", token="tok", accounts=accounts)
    body = {"group_name": "waits", "token": "tok", "symbol": "005930"}
    webhook_id = post(client, {**body, "order_type": "MARKET", "side": "buy", "qty_per": 1})
    orders = wait_orders(webhook_id=webhook_id, timeout=30)
    assert [order.status for order in orders] == ["filled"] * 3, [order.message for order in orders]
    assert len(kis_sim.orders) == 3
    assert kis_sim.token_requests == 1
    at_venue_together(orders)


def test_a_venue_markets_load_gives_the_turn_to_another_accounts_order(
    one_turn: handoff.LocalPool,
    client: Client,
    make_strategy: Any,
    make_account: Any,
    binance_account: Any,
    publish_price: Any,
    wait_orders: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ccxt's load of a venue's markets (the request and its parse of the answer: a large
    venue's takes the interpreter for a long while, once an hour) is a wait for the venue: with
    one turn, another account's order is placed while it lasts."""
    import ccxt

    loading, release = threading.Event(), threading.Event()
    load_markets = ccxt.binance.load_markets

    def slow_load(self: Any, *args: Any, **kwargs: Any) -> Any:
        loading.set()
        release.wait(LOAD_BOUND)  # the parse of a large venue's markets, held as long as the test wants
        return load_markets(self, *args, **kwargs)

    monkeypatch.setattr(ccxt.binance, "load_markets", slow_load)
    publish_price("BINANCE:BTC/USDT", "50000")
    make_strategy(group_name="far", token="tok-far", accounts=[binance_account()])
    paper = make_account("paper-near", balances={"USDT": "10000"})
    make_strategy(group_name="near", token="tok-near", accounts=[paper])
    body = {"symbol": "BTC/USDT", "currency": "USDT", "order_type": "MARKET", "side": "buy", "qty_per": 10}
    try:
        far = post(client, {**body, "group_name": "far", "token": "tok-far"})
        assert loading.wait(LOAD_BOUND)
        near = post(client, {**body, "group_name": "near", "token": "tok-near"})
        placed = wait_orders(webhook_id=near, timeout=10)
        assert [order.status for order in placed] == ["filled"], [order.message for order in placed]
        assert not release.is_set()  # placed while the Binance account's markets were loading
        assert Order.objects.get(webhook_id=far).status in ("queued", "submitted")
    finally:
        release.set()
    orders = wait_orders(webhook_id=far, timeout=30)
    assert [order.status for order in orders] == ["filled"], [order.message for order in orders]


def test_ccxts_own_throttle_gives_the_turn_while_it_pauses(
    one_turn: handoff.LocalPool, binance_account: Any
) -> None:
    """An account with ``rate_limit_ms`` keeps ccxt's per-client throttle, which pauses in
    ``time.sleep`` before a request; on the order threads that pause is a venue wait: with one
    turn, another order runs while it lasts. A request that needs no pause gives nothing."""
    from orders.exchanges import adapter_for
    from orders.models import MarketType

    client, _lock = adapter_for(binance_account(enable_rate_limit=True, rate_limit_ms=1000))._client(
        MarketType.SPOT
    )
    assert client.enableRateLimit is True
    pausing, other_ran = threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def paused_request() -> None:
        client.lastRestRequestTimestamp = client.milliseconds()  # a request just went out
        pausing.set()
        client.throttle(2)  # 2 s before the next one
        seen["other ran during the pause"] = other_ran.is_set()
        client.lastRestRequestTimestamp = client.milliseconds() - 10_000  # long ago: no pause
        freed = one_turn._freed  # turns given back so far
        client.throttle(2)
        seen["turns given without a pause"] = one_turn._freed - freed

    done = threading.Semaphore(0)
    one_turn.submit(lambda: (paused_request(), done.release()))
    assert pausing.wait(LOAD_BOUND)
    one_turn.submit(lambda: (other_ran.set(), done.release()))
    assert done.acquire(timeout=LOAD_BOUND) and done.acquire(timeout=LOAD_BOUND)
    assert seen == {"other ran during the pause": True, "turns given without a pause": 0}
