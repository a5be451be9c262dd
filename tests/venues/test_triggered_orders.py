"""Conditional orders that place an order of their own when they trigger (Binance USD-M algo
orders, OKX algo orders, Bitget spot and futures plan orders), against the simulators over real
HTTP.

The venues' word for a fired trigger (Binance ``TRIGGERED`` / ``FINISHED``, OKX ``effective``),
which ccxt reads as closed, says nothing about a fill: a triggered STOP_LIMIT rests in the
regular book under a new id. The product follows that order: its state is the Order's, and a
cancel goes to it (a cancel sent to the algo book would be refused and leave it live)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, OrderResult, RetryableVenueError, VenueError
from orders.exchanges.ccxt.base import CcxtAdapter, Fired, venue_client_order_id
from orders.models import Order
from orders.services import account_orders_execute, live_orders_refresh, order_cancel
from quanttrade.vocabulary import MarketType, OrderStatus
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim
from venuesim.bitget import BitgetSim
from venuesim.okx import OkxSim

D = Decimal


def stop(cid: str, order_type: str, market: str = "FUTURES", **kw: Any) -> OrderRequest:
    price = D("44000") if order_type == "STOP_LIMIT" else None
    fields: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "side": "SELL",
        "order_type": order_type,
        "qty_per": D("10"),
        "price": price,
        "stop_price": D("45000"),
    }
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def resting_stop_limit(make_strategy: Any, account: Any, price: int, stop_price: int) -> Order:
    """A futures STOP_LIMIT sell placed through the real execution path, waiting to trigger."""
    strategy = make_strategy(market_type="FUTURES", accounts=[account])
    spec = {
        "order_type": "STOP_LIMIT",
        "side": "SELL",
        "qty_per": 10,
        "price": price,
        "stop_price": stop_price,
    }
    event = make_orders(strategy, [account], [spec])
    account_orders_execute(event.id, account.pk)
    order = Order.objects.select_related("account").get(webhook=event)
    assert order.status == OrderStatus.OPEN
    return order


# --- Binance USD-M ---------------------------------------------------------------------------


def binance_algo_order(adapter: Any, client_algo_id: str) -> dict[str, Any]:
    """The conditional order as Binance answers ``GET /fapi/v1/algoOrder`` to the account's own
    signed client: the venue's answer, not the simulator's memory."""
    client, _lock = adapter._client(MarketType.FUTURES)
    return dict(client.fapiPrivateGetAlgoOrder({"clientAlgoId": client_algo_id}))


def binance_stop_limit(account: Any) -> tuple[Any, OrderRequest, OrderResult]:
    """(adapter, request, placement answer) of a USD-M STOP_LIMIT waiting in the algo book."""
    adapter = adapter_for(account)
    request = stop("qt-stop", "STOP_LIMIT")
    return adapter, request, adapter.place_order(request)


@pytest.mark.parametrize(
    ("order_type", "status", "filled", "avg_price"),
    [
        ("STOP_MARKET", OrderStatus.FILLED, D("0.022"), D("50000")),  # the placed MARKET order filled
        ("STOP_LIMIT", OrderStatus.OPEN, D("0"), None),  # the placed LIMIT order rests
    ],
)
def test_binance_a_triggered_conditional_order_reads_the_order_it_placed(
    binance_account: Any,
    binance_sim: BinanceSim,
    order_type: str,
    status: str,
    filled: Decimal,
    avg_price: Decimal | None,
) -> None:
    adapter = adapter_for(binance_account())
    request = stop("qt-stop", order_type)
    placed = adapter.place_order(request)
    child = binance_sim.trigger("qt-stop")

    found = adapter.fetch_order_by_client_id(request)

    assert found is not None
    assert (found.status, found.filled_qty, found.avg_price, found.quantity) == (
        status,
        filled,
        avg_price,
        D("0.022"),
    )
    # the Order keeps the algo order's id; the placed order has one of its own
    assert found.exchange_order_id == placed.exchange_order_id != str(child["id"])


def test_binance_a_finished_conditional_order_reads_cancelled_when_its_placed_order_was(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter, request, _placed = binance_stop_limit(binance_account())
    child = binance_sim.trigger("qt-stop")
    child["status"] = "CANCELED"  # cancelled at the venue (its site, another client)

    found = adapter.fetch_order_by_client_id(request)

    assert binance_algo_order(adapter, "qt-stop")["algoStatus"] == "FINISHED"
    assert found is not None and (found.status, found.filled_qty) == (OrderStatus.CANCELLED, D("0"))


def test_binance_a_placed_order_the_venue_cannot_show_is_never_read_as_no_order(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    # "No such order" would let a retry of an uncertain placement send the stop a second time.
    adapter, request, _placed = binance_stop_limit(binance_account())
    child = binance_sim.trigger("qt-stop")
    binance_sim.orders.remove(child)  # GET /fapi/v1/order?orderId=… answers -2013

    with pytest.raises(RetryableVenueError, match="아직 보이지 않습니다"):
        adapter.fetch_order_by_client_id(request)


def test_binance_a_triggering_algo_order_reads_open_and_is_not_cancelled_blind(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    # TRIGGERING: "met the triggering condition and forwarded to the matching engine", its
    # order not placed yet (the simulator does not reach this state by itself).
    adapter, request, placed = binance_stop_limit(binance_account())
    (algo,) = binance_sim.orders_for("qt-stop")
    algo["status"] = "TRIGGERING"

    found = adapter.fetch_order_by_client_id(request)
    with pytest.raises(RetryableVenueError, match="아직 보이지 않습니다"):
        adapter.cancel_order(request, placed.exchange_order_id)

    assert found is not None and found.status == OrderStatus.OPEN
    assert binance_sim.seen("/fapi/v1/algoOrder", method="DELETE") == []


def test_a_bad_request_reading_the_placed_order_is_an_error_not_no_order(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    # ccxt's BadRequest otherwise sends the lookup scanning the regular book by client id,
    # which never holds a plan: "no such order" could let a retry send the stop again.
    adapter = adapter_for(bitget_account())
    request = stop("qt-plan", "STOP_LIMIT", price=D("89000"), stop_price=D("90000"))
    adapter.place_order(request)
    bitget_sim.trigger("qt-plan")
    bitget_sim.inject("reject", "/api/v2/mix/order/detail", message="40020")

    with pytest.raises(VenueError, match="Parameter orderId error"):
        adapter.fetch_order_by_client_id(request)


def test_a_refused_cancel_of_a_plan_that_ended_reads_how_it_ended(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    # The plan's order was refused (fail_execute) before the product heard; Bitget refuses the
    # plan's cancel with 43025 (ccxt: InvalidOrder): the read-back says rejected.
    adapter = adapter_for(bitget_account())
    request = stop("qt-spot-plan", "STOP_MARKET", market="SPOT", stop_price=D("90000"))
    placed = adapter.place_order(request)
    bitget_sim.trigger("qt-spot-plan", outcome="fail")
    bitget_sim.inject("reject", "/api/v2/spot/trade/cancel-plan-order", message="43025")

    result = adapter.cancel_order(request, placed.exchange_order_id)

    assert (result.status, result.filled_qty) == (OrderStatus.REJECTED, D("0"))


def test_binance_a_waiting_conditional_order_reads_open_and_names_no_placed_order(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter, request, _placed = binance_stop_limit(binance_account())

    found = adapter.fetch_order_by_client_id(request)

    assert found is not None and found.status == OrderStatus.OPEN
    assert binance_algo_order(adapter, "qt-stop")["actualOrderId"] == ""


def test_binance_cancelling_a_waiting_stop_cancels_it_in_the_algo_book(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter, request, placed = binance_stop_limit(binance_account())

    result = adapter.cancel_order(request, placed.exchange_order_id)

    assert [o["status"] for o in binance_sim.orders] == ["CANCELED"]
    assert result.status == OrderStatus.CANCELLED
    assert binance_sim.seen("/fapi/v1/order", method="DELETE") == []


# A stop-limit waiting to trigger at each venue whose triggers place a new order: the request,
# the id the simulator's ``trigger`` takes, the placed order's key for its state and its
# cancelled state, and the trigger book's cancel request.
STOP_LIMITS: dict[str, tuple[OrderRequest, str, str, str, str]] = {
    "binance": (stop("qt-stop", "STOP_LIMIT"), "qt-stop", "status", "CANCELED", "DELETE /fapi/v1/algoOrder"),
    "okx": (
        stop("qt" + "6" * 32, "STOP_LIMIT", market="SPOT", price=D("89000"), stop_price=D("90000")),
        venue_client_order_id("okx", "qt" + "6" * 32),
        "state",
        "canceled",
        "POST /api/v5/trade/cancel-algos",
    ),
    "bitget": (
        stop("qt-plan", "STOP_LIMIT", price=D("89000"), stop_price=D("90000")),
        "qt-plan",
        "status",
        "canceled",
        "POST /api/v2/mix/order/cancel-plan-order",
    ),
    "bitget-spot": (
        stop("qt-spot-plan", "STOP_LIMIT", market="SPOT", price=D("89000"), stop_price=D("90000")),
        "qt-spot-plan",
        "status",
        "cancelled",
        "POST /api/v2/spot/trade/cancel-plan-order",
    ),
}


@pytest.mark.parametrize("venue", sorted(STOP_LIMITS))
def test_cancelling_a_triggered_stop_limit_cancels_the_order_it_placed(
    request: pytest.FixtureRequest, venue: str
) -> None:
    sim = request.getfixturevalue(f"{venue.split('-')[0]}_sim")
    adapter = adapter_for(request.getfixturevalue(f"{venue.split('-')[0]}_account")())
    order_request, trigger_id, state_key, cancelled, trigger_book = STOP_LIMITS[venue]
    placed = adapter.place_order(order_request)
    child = sim.trigger(trigger_id)

    result = adapter.cancel_order(order_request, placed.exchange_order_id)

    assert child[state_key] == cancelled  # nothing left live at the venue
    assert (result.status, result.exchange_order_id) == (OrderStatus.CANCELLED, placed.exchange_order_id)
    method, path = trigger_book.split()
    assert sim.seen(path, method=method) == []  # not sent to the trigger book, which would refuse it


@pytest.mark.parametrize("venue", sorted(STOP_LIMITS))
def test_a_trigger_firing_between_the_lookup_and_the_cancel_is_followed(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, venue: str
) -> None:
    # Binance and OKX then refuse the algo cancel; Bitget answers it with the plan in its
    # failureList and no error: either way the order the trigger placed must not stay live.
    sim = request.getfixturevalue(f"{venue.split('-')[0]}_sim")
    adapter = adapter_for(request.getfixturevalue(f"{venue.split('-')[0]}_account")())
    order_request, trigger_id, state_key, cancelled, _trigger_book = STOP_LIMITS[venue]
    placed = adapter.place_order(order_request)
    looked_up: list[str | None] = []
    children: list[dict[str, Any]] = []
    real: Callable[..., str | None] = CcxtAdapter._triggered_order_id

    def lookup_then_fire(self: CcxtAdapter, *args: Any) -> str | None:
        found = real(self, *args)
        looked_up.append(found)
        if len(looked_up) == 1:
            children.append(sim.trigger(trigger_id))  # fires after the lookup, before the cancel arrives
        return found

    monkeypatch.setattr(CcxtAdapter, "_triggered_order_id", lookup_then_fire)

    result = adapter.cancel_order(order_request, placed.exchange_order_id)

    (child,) = children
    assert looked_up[0] is None and looked_up[1]  # found on the second look
    assert child[state_key] == cancelled  # nothing left live at the venue
    assert result.status == OrderStatus.CANCELLED


@pytest.mark.parametrize("market", ["SPOT", "FUTURES"])
def test_bitget_a_fired_plan_whose_order_is_not_named_yet_reads_open_and_is_not_cancelled_blind(
    bitget_account: Any, bitget_sim: BitgetSim, market: str
) -> None:
    # Futures: executeOrderId still empty; spot: the plan "executing", its sub-order in_progress.
    # A cancel now could reach neither the plan nor its order: it fails, to be tried again.
    adapter = adapter_for(bitget_account())
    request = stop("qt-plan", "STOP_LIMIT", market=market, price=D("89000"), stop_price=D("90000"))
    placed = adapter.place_order(request)
    bitget_sim.trigger("qt-plan", outcome="in_progress")
    (plan,) = bitget_sim.orders_for("qt-plan")

    found = adapter.fetch_order_by_client_id(request)
    with pytest.raises(RetryableVenueError, match="아직 보이지 않습니다"):
        adapter.cancel_order(request, placed.exchange_order_id)

    assert found is not None and (found.status, found.filled_qty) == (OrderStatus.OPEN, D("0"))
    assert plan["status"] in ("executing", "executed")
    book = "spot/trade" if market == "SPOT" else "mix/order"
    assert bitget_sim.seen(f"/api/v2/{book}/cancel-plan-order", method="POST") == []  # none sent blind


def test_bitget_a_spot_plan_whose_order_was_refused_reads_rejected(
    bitget_account: Any, bitget_sim: BitgetSim
) -> None:
    adapter = adapter_for(bitget_account())
    request = bitget_spot_stop("STOP_MARKET")
    adapter.place_order(request)
    bitget_sim.trigger("qt-spot-plan", outcome="fail")

    found = adapter.fetch_order_by_client_id(request)

    assert found is not None and (found.status, found.filled_qty) == (OrderStatus.REJECTED, D("0"))


class SubOrders:
    """The internet for one plan-sub-order request: the answer Bitget's docs show, or another."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def request(self, path: str, api: list[str], method: str, params: dict[str, str]) -> Any:
        assert (path, api, method, params) == (
            "v2/spot/trade/plan-sub-order",
            ["private", "spot"],
            "GET",
            {"planOrderId": "77"},
        )
        return self.answer


def test_bitget_an_executed_spot_plan_whose_sub_order_failed_placed_nothing(bitget_account: Any) -> None:
    adapter = adapter_for(bitget_account())
    answer = {
        "code": "00000",
        "msg": "success",
        "data": [{"orderId": "", "price": "0", "type": "market", "status": "fail"}],
    }
    executed = {"id": "77", "info": {"status": "executed"}}

    assert adapter._fired(SubOrders(answer), executed) == Fired(refused=True)
    # as ccxt reads the plan ("executed": closed, filled what it was asked): nothing was
    conditional = {**executed, "status": "closed", "amount": 0.05, "filled": 0.05, "average": 90000.0}
    result = adapter._follow_trigger(SubOrders(answer), {"symbol": "BTC/USDT"}, conditional, D("1"))
    assert (result.status, result.filled_qty, result.exchange_order_id) == (
        OrderStatus.REJECTED,
        D("0"),
        "77",
    )


@pytest.mark.parametrize(
    "answer", [[], "<html>", {"code": "00000", "data": {"orderId": "1"}}, {"data": ["1"]}]
)
def test_bitget_a_sub_order_answer_of_another_shape_is_a_venue_error(
    bitget_account: Any, answer: Any
) -> None:
    adapter = adapter_for(bitget_account())

    with pytest.raises(ccxt.ExchangeError, match="unexpected answer"):
        adapter._fired(SubOrders(answer), {"id": "77", "info": {"status": "executed"}})


@pytest.mark.parametrize(
    ("venue", "price", "stop_price"),
    [("binance", 44000, 45000), ("bitget", 89000, 90000)],
)
def test_a_triggered_stop_limit_stays_open_then_fills_through_the_live_refresh(
    request: pytest.FixtureRequest, make_strategy: Any, venue: str, price: int, stop_price: int
) -> None:
    sim = request.getfixturevalue(f"{venue}_sim")
    order = resting_stop_limit(
        make_strategy, request.getfixturevalue(f"{venue}_account")(), price, stop_price
    )
    child = sim.trigger(order.client_order_id)

    live_orders_refresh()
    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.OPEN, D("0"))  # not "filled" on the trigger

    sim.fill_order(child["id" if venue == "binance" else "orderId"])
    live_orders_refresh()
    order.refresh_from_db()
    assert (order.status, order.avg_price) == (OrderStatus.FILLED, D(price))
    assert order.filled_qty == order.quantity > 0


def test_binance_the_order_page_cancel_of_a_triggered_stop_limit_leaves_nothing_live(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any
) -> None:
    order = resting_stop_limit(make_strategy, binance_account(), 44000, 45000)
    child = binance_sim.trigger(order.client_order_id)

    recorded = order_cancel(order)

    assert child["status"] == "CANCELED"
    assert recorded.status == OrderStatus.CANCELLED
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


# --- OKX ------------------------------------------------------------------------------------


def test_okx_cancelling_a_waiting_stop_cancels_it_in_the_algo_book(okx_account: Any, okx_sim: OkxSim) -> None:
    adapter = adapter_for(okx_account())
    request = stop("qt" + "5" * 32, "STOP_LIMIT", market="SPOT", price=D("89000"), stop_price=D("90000"))
    placed = adapter.place_order(request)

    result = adapter.cancel_order(request, placed.exchange_order_id)

    assert [o["state"] for o in okx_sim.orders] == ["canceled"]
    assert result.status == OrderStatus.CANCELLED
    assert len(okx_sim.seen("/api/v5/trade/cancel-algos")) == 1


# --- Bitget USDT-M futures ------------------------------------------------------------------


def bitget_stop(order_type: str) -> OrderRequest:
    price = D("89000") if order_type == "STOP_LIMIT" else None
    return stop("qt-plan", order_type, price=price, stop_price=D("90000"))


@pytest.mark.parametrize(
    ("order_type", "status", "filled", "avg_price"),
    [
        ("STOP_MARKET", OrderStatus.FILLED, D("0.011"), D("100000")),
        ("STOP_LIMIT", OrderStatus.OPEN, D("0"), None),
    ],
)
def test_bitget_an_executed_futures_plan_reads_the_order_it_placed(
    bitget_account: Any,
    bitget_sim: BitgetSim,
    order_type: str,
    status: str,
    filled: Decimal,
    avg_price: Decimal | None,
) -> None:
    adapter = adapter_for(bitget_account())
    request = bitget_stop(order_type)
    placed = adapter.place_order(request)
    child = bitget_sim.trigger("qt-plan")

    found = adapter.fetch_order_by_client_id(request)

    assert found is not None
    assert (found.status, found.filled_qty, found.avg_price) == (status, filled, avg_price)
    assert found.exchange_order_id == placed.exchange_order_id != child["orderId"]


# --- Bitget spot: the placed order named by plan-sub-order -------------------------------------


def bitget_spot_stop(order_type: str) -> OrderRequest:
    price = D("89000") if order_type == "STOP_LIMIT" else None
    return stop("qt-spot-plan", order_type, market="SPOT", price=price, stop_price=D("90000"))


@pytest.mark.parametrize(
    ("order_type", "status", "filled"),
    [("STOP_MARKET", OrderStatus.FILLED, D("0.05")), ("STOP_LIMIT", OrderStatus.OPEN, D("0"))],
)
def test_bitget_a_fired_spot_plan_reads_the_order_it_placed(
    bitget_account: Any, bitget_sim: BitgetSim, order_type: str, status: str, filled: Decimal
) -> None:
    adapter = adapter_for(bitget_account())
    request = bitget_spot_stop(order_type)
    placed = adapter.place_order(request)
    before = adapter.fetch_order_by_client_id(request)
    child = bitget_sim.trigger("qt-spot-plan")

    found = adapter.fetch_order_by_client_id(request)

    assert before is not None and before.status == OrderStatus.OPEN  # waiting: no sub-order yet
    assert found is not None and (found.status, found.filled_qty) == (status, filled)
    assert found.exchange_order_id == placed.exchange_order_id != child["orderId"]
    assert len(bitget_sim.seen("/api/v2/spot/trade/plan-sub-order")) == 1


def test_bitget_a_spot_plan_firing_before_its_cancel_is_followed_whatever_the_refusal(
    bitget_account: Any, bitget_sim: BitgetSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plan fires after the lookup; Bitget then refuses the plan's cancel with 43025 "Plan
    # order does not exist" (ccxt: InvalidOrder, not OrderNotFound): the order it placed is
    # still found and cancelled.
    adapter = adapter_for(bitget_account())
    request = bitget_spot_stop("STOP_LIMIT")
    placed = adapter.place_order(request)
    children: list[dict[str, Any]] = []
    real: Callable[..., str | None] = CcxtAdapter._triggered_order_id

    def lookup_then_fire(self: CcxtAdapter, *args: Any) -> str | None:
        found = real(self, *args)
        if not children:
            children.append(bitget_sim.trigger("qt-spot-plan"))
        return found

    monkeypatch.setattr(CcxtAdapter, "_triggered_order_id", lookup_then_fire)
    bitget_sim.inject("reject", "/api/v2/spot/trade/cancel-plan-order", message="43025")

    result = adapter.cancel_order(request, placed.exchange_order_id)

    assert children[0]["status"] == "cancelled"
    assert result.status == OrderStatus.CANCELLED
