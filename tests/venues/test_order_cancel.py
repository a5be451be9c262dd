"""Cancelling one order, and every open order of an account, from the product: the adapters'
``cancel_order`` against the simulators over real HTTP (Binance, the four KIS markets) and the
paper venue, and the services the pages call (``order_cancel``, ``account_cancel_all``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderNotFound, OrderRequest, PermanentVenueError, RetryableVenueError
from orders.exchanges.kis.sessions import KST
from orders.models import Order, PaperBalance, PaperOrder
from orders.services import OrderNotOpenError, account_cancel_all, account_orders_execute, order_cancel
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim
from venuesim.kiwoom import ORDER_PATH as KIWOOM_ORDER_PATH
from venuesim.kiwoom import KiwoomSim

D = Decimal
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)


def binance_request(cid: str, market: str = "SPOT", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "BTC/USDT", "side": "SELL", "order_type": "LIMIT", "qty_per": D("10")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def placed(strategy: Any, account: Any, specs: list[dict[str, Any]], symbol: str = "BTC/USDT") -> list[Order]:
    """Orders placed through the real execution path, in sequence order."""
    event = make_orders(strategy, [account], specs, symbol=symbol)
    account_orders_execute(event.id, account.pk)
    return list(Order.objects.filter(webhook=event).select_related("account").order_by("sequence"))


# --- ccxt (Binance) -------------------------------------------------------------------------


def test_binance_cancel_order_cancels_it_at_the_venue(binance_account: Any, binance_sim: BinanceSim) -> None:
    adapter = adapter_for(binance_account())
    opened = adapter.place_order(binance_request("qt1", price=D("70000")))
    adapter.place_order(binance_request("qt2", price=D("71000")))

    result = adapter.cancel_order(binance_request("qt1", price=D("70000")), opened.exchange_order_id)

    assert (result.status, result.exchange_order_id) == (OrderStatus.CANCELLED, opened.exchange_order_id)
    assert [o["status"] for o in binance_sim.orders] == ["CANCELED", "NEW"]


def test_binance_cancel_order_without_the_venue_id_finds_it_by_client_id(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.place_order(binance_request("qt1", price=D("70000")))

    result = adapter.cancel_order(binance_request("qt1", price=D("70000")), "")

    assert result.status == OrderStatus.CANCELLED
    assert binance_sim.orders_for("qt1")[0]["status"] == "CANCELED"


def test_binance_futures_stop_is_cancelled_in_the_algo_book(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    stop = binance_request("qt1", market="FUTURES", order_type="STOP_MARKET", stop_price=D("40000"))
    opened = adapter.place_order(stop)

    result = adapter.cancel_order(stop, opened.exchange_order_id)

    assert result.status == OrderStatus.CANCELLED
    (algo,) = binance_sim.orders
    assert (algo["algo"], algo["status"]) == (True, "CANCELED")
    assert binance_sim.seen("/fapi/v1/algoOrder", method="DELETE")


def test_binance_cancel_of_a_filled_order_returns_the_fill(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    market = binance_request("qt1", side="BUY", order_type="MARKET")
    filled = adapter.place_order(market)
    assert filled.status == OrderStatus.FILLED

    result = adapter.cancel_order(market, filled.exchange_order_id)

    assert (result.status, result.filled_qty) == (OrderStatus.FILLED, filled.filled_qty)


def test_binance_cancel_of_an_unknown_order_is_not_found(binance_account: Any) -> None:
    with pytest.raises(OrderNotFound):
        adapter_for(binance_account()).cancel_order(binance_request("qt-never"), "")


# --- KIS, every market ----------------------------------------------------------------------

KIS_RESTING = {
    "DOMESTIC_STOCK": (
        "01",
        {"symbol": "005930", "price": D("60000")},
        "/uapi/domestic-stock/v1/trading/order-rvsecncl",
    ),
    "OVERSEAS_STOCK": (
        "01",
        {"symbol": "AAPL", "price": D("150"), "params": {"exchange_code": "NASD"}},
        "/uapi/overseas-stock/v1/trading/order-rvsecncl",
    ),
    "DOMESTIC_FUTUREOPTION": (
        "03",
        {"symbol": "101TC000", "price": D("300")},
        "/uapi/domestic-futureoption/v1/trading/order-rvsecncl",
    ),
    "OVERSEAS_FUTUREOPTION": (
        "08",
        {"symbol": "NQH5", "price": D("15000"), "params": {"exchange_code": "CME", "contract_month": "H5"}},
        "/uapi/overseas-futureoption/v1/trading/order-rvsecncl",
    ),
}


def kis_request(market: str, cid: str, **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "side": "BUY",
        "order_type": "LIMIT",
        "qty_per": D("1"),
        **KIS_RESTING[market][1],
    }
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


@pytest.mark.parametrize("market", sorted(KIS_RESTING))
def test_kis_cancel_order_sends_the_markets_cancel_tr(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any, market: str
) -> None:
    kst_clock(DAYTIME)
    product_code, _fields, path = KIS_RESTING[market]
    adapter = adapter_for(kis_account(product_code=product_code, session="day"))
    first = adapter.place_order(kis_request(market, "a"))
    adapter.place_order(kis_request(market, "b"))
    assert first.status == OrderStatus.OPEN

    result = adapter.cancel_order(kis_request(market, "a"), first.exchange_order_id)

    assert (result.status, result.exchange_order_id) == (OrderStatus.CANCELLED, first.exchange_order_id)
    assert [o["cancelled"] for o in kis_sim.orders] == [True, False]
    (cancel,) = kis_sim.seen(path)
    assert cancel.json()["ORGN_ODNO"] == first.exchange_order_id


def test_kis_cancel_order_without_the_venue_id_uses_the_recorded_order_number(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any
) -> None:
    kst_clock(DAYTIME)
    adapter = adapter_for(kis_account())
    adapter.place_order(kis_request("DOMESTIC_STOCK", "a"))

    assert adapter.cancel_order(kis_request("DOMESTIC_STOCK", "a"), "").status == OrderStatus.CANCELLED
    assert kis_sim.orders[0]["cancelled"] is True


def test_kis_cancel_of_a_filled_order_returns_the_fill_and_sends_no_cancel(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any
) -> None:
    kst_clock(DAYTIME)
    adapter = adapter_for(kis_account())
    market = kis_request("DOMESTIC_STOCK", "a", order_type="MARKET", price=None)
    filled = adapter.place_order(market)
    assert filled.status == OrderStatus.FILLED

    result = adapter.cancel_order(market, filled.exchange_order_id)

    assert result.status == OrderStatus.FILLED
    assert kis_sim.seen("/uapi/domestic-stock/v1/trading/order-rvsecncl") == []


def test_kis_simulator_refuses_a_domestic_modify(kis_account: Any, kis_sim: KisSim, kst_clock: Any) -> None:
    """The simulator models cancels only: a modify (RVSE_CNCL_DVSN_CD 01) is refused, not
    taken as a cancel."""
    kst_clock(DAYTIME)
    adapter = adapter_for(kis_account())
    opened = adapter.place_order(kis_request("DOMESTIC_STOCK", "a"))
    body = {
        **adapter.kis.fields(),
        "KRX_FWDG_ORD_ORGNO": kis_sim.orders[0]["branch"],
        "ORGN_ODNO": opened.exchange_order_id,
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "0",
        "ORD_UNPR": "61000",
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    with pytest.raises(PermanentVenueError, match="정정취소구분코드"):
        adapter.client.request(
            "POST", "/uapi/domestic-stock/v1/trading/order-rvsecncl", "TTTC0013U", body=body
        )
    assert kis_sim.orders[0]["cancelled"] is False


# --- paper ----------------------------------------------------------------------------------


def test_paper_cancel_releases_the_reserved_funds(make_account: Any, make_strategy: Any) -> None:
    account = make_account(balances={"USDT": "1000"})
    strategy = make_strategy(accounts=[account])
    (order,) = placed(
        strategy, account, [{"side": "BUY", "order_type": "LIMIT", "qty_per": 50, "price": 100}]
    )
    assert order.status == OrderStatus.OPEN
    assert PaperBalance.objects.get(account=account, asset="USDT").locked == D("500")

    cancelled = order_cancel(order)

    assert cancelled.status == OrderStatus.CANCELLED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert PaperOrder.objects.get(client_order_id=order.client_order_id).status == OrderStatus.CANCELLED
    usdt = PaperBalance.objects.get(account=account, asset="USDT")
    assert (usdt.free, usdt.locked) == (D("1000"), D("0"))


# --- the services ---------------------------------------------------------------------------


def test_order_cancel_records_the_venues_answer(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    account = binance_account()
    (order,) = placed(
        make_strategy(accounts=[account]),
        account,
        [{"side": "SELL", "order_type": "LIMIT", "qty_per": 10, "price": 70000}],
    )
    assert order.status == OrderStatus.OPEN

    order_cancel(order)

    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.message) == (OrderStatus.CANCELLED, "요청에 따라 취소됨")
    assert binance_sim.orders_for(order.client_order_id)[0]["status"] == "CANCELED"


def test_order_cancel_of_a_finished_order_is_refused_without_asking_the_venue(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    account = binance_account()
    (order,) = placed(make_strategy(accounts=[account]), account, [{"side": "BUY", "qty_per": 10}])
    assert order.status == OrderStatus.FILLED

    with pytest.raises(OrderNotOpenError):
        order_cancel(order)
    assert binance_sim.seen("/api/v3/order", method="DELETE") == []


def test_a_failed_cancel_keeps_the_order_open_and_says_so(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    account = binance_account()
    (order,) = placed(
        make_strategy(accounts=[account]),
        account,
        [{"side": "SELL", "order_type": "LIMIT", "qty_per": 10, "price": 70000}],
    )
    binance_sim.inject("5xx", "/api/v3/order", method="DELETE")

    with pytest.raises(RetryableVenueError):
        order_cancel(order)

    stored = Order.objects.get(pk=order.pk)
    assert stored.status == OrderStatus.OPEN
    assert stored.message.startswith("취소 실패: ")
    assert binance_sim.orders_for(order.client_order_id)[0]["status"] == "NEW"


def test_account_cancel_all_cancels_every_symbol_with_open_orders(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    account = binance_account()
    strategy = make_strategy(accounts=[account])
    btc = placed(strategy, account, [{"side": "SELL", "order_type": "LIMIT", "qty_per": 10, "price": 70000}])
    eth = placed(
        strategy,
        account,
        [{"side": "SELL", "order_type": "LIMIT", "qty_per": 10, "price": 4000, "symbol": "ETH/USDT"}],
        symbol="ETH/USDT",
    )

    report = account_cancel_all(account)

    assert (report.cancelled, report.failures) == (2, [])
    assert {Order.objects.get(pk=o.pk).status for o in btc + eth} == {OrderStatus.CANCELLED}
    assert {o["status"] for o in binance_sim.orders} == {"CANCELED"}


def test_account_cancel_all_with_nothing_open_asks_no_venue(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    account = binance_account()
    assert account_cancel_all(account).cancelled == 0
    assert binance_sim.seen("/api/v3/openOrders", method="DELETE") == []


# --- Kiwoom ---------------------------------------------------------------------------------


@pytest.fixture
def kiwoom_sim() -> Iterator[KiwoomSim]:
    sim = KiwoomSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def kiwoom_account(make_account: Any, kiwoom_sim: KiwoomSim) -> Account:
    return make_account(
        name="kiwoom-1",
        exchange="KIWOOM",
        api_key="sim-appkey",
        api_secret="sim-secretkey",
        settings={"api_base_url": kiwoom_sim.base_url, "account_number": "1234567890", "timeout_seconds": 2},
    )


def test_kiwoom_cancel_order_sends_kt10003_for_that_order_only(
    kiwoom_sim: KiwoomSim, kiwoom_account: Account
) -> None:
    adapter = adapter_for(kiwoom_account)
    first = adapter.place_order(kiwoom_request("k-1"))
    adapter.place_order(kiwoom_request("k-2"))

    result = adapter.cancel_order(kiwoom_request("k-1"), first.exchange_order_id)

    assert (result.status, result.exchange_order_id) == (OrderStatus.CANCELLED, first.exchange_order_id)
    (cancel,) = [r for r in kiwoom_sim.seen(KIWOOM_ORDER_PATH) if r.header("api-id") == "kt10003"]
    assert cancel.json()["orig_ord_no"] == first.exchange_order_id


def test_kiwoom_cancel_of_a_filled_order_returns_the_fill(
    kiwoom_sim: KiwoomSim, kiwoom_account: Account
) -> None:
    adapter = adapter_for(kiwoom_account)
    market = kiwoom_request("k-1", order_type="MARKET", price=None)
    filled = adapter.place_order(market)

    assert adapter.cancel_order(market, filled.exchange_order_id).status == OrderStatus.FILLED
    assert [r for r in kiwoom_sim.seen(KIWOOM_ORDER_PATH) if r.header("api-id") == "kt10003"] == []


def kiwoom_request(cid: str, **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {
        "symbol": "005930",
        "side": "BUY",
        "order_type": "LIMIT",
        "qty_per": D(1),
        "price": D(60000),
    }
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type="DOMESTIC_STOCK", **fields)


# --- the other ccxt venues: regular and trigger books ---------------------------------------

CANCELLED_STATES = {"canceled", "cancelled", "Cancelled", "Deactivated", "cancel", "CANCELED"}


def sim_state(order: dict[str, Any]) -> str:
    return str(order.get("state") or order.get("status"))


@pytest.mark.parametrize(
    ("venue", "symbol", "with_stop"),
    [
        ("okx", "BTC/USDT", True),
        ("bybit", "BTC/USDT", True),
        ("bitget", "BTC/USDT", True),
        ("upbit", "BTC/KRW", False),
    ],
)
def test_ccxt_venues_cancel_one_order_in_its_own_book(
    db: None, request: pytest.FixtureRequest, venue: str, symbol: str, with_stop: bool
) -> None:
    account = request.getfixturevalue(f"{venue}_account")()
    sim = request.getfixturevalue(f"{venue}_sim")
    adapter = adapter_for(account)
    high = D("120000") if symbol.endswith("USDT") else D("200000000")
    limit = binance_request("qa1", symbol=symbol, price=high)
    kept = binance_request("qa2", symbol=symbol, price=high + high / 10)
    placed_limit = adapter.place_order(limit)
    adapter.place_order(kept)
    requests_ = [(limit, placed_limit)]
    if with_stop:
        stop = binance_request("qa3", symbol=symbol, order_type="STOP_MARKET", stop_price=D("90000"))
        requests_.append((stop, adapter.place_order(stop)))

    for req, placed_order in requests_:
        assert adapter.cancel_order(req, placed_order.exchange_order_id).status == OrderStatus.CANCELLED

    states = [sim_state(o) for o in sim.orders]
    assert states[1] not in CANCELLED_STATES  # the other order still rests
    assert [s in CANCELLED_STATES for i, s in enumerate(states) if i != 1] == [True] * (len(states) - 1)
