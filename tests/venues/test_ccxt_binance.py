"""CcxtAdapter against the Binance simulator over real HTTP: sizing, order types, precision,
minimums, cancels and lookups by client order id."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import CancelAllIncomplete, OrderRejected, OrderRequest
from orders.exchanges.ccxt import base as ccxt_base
from orders.exchanges.ccxt.base import CcxtAdapter
from orders.models import Order
from orders.services import account_orders_execute
from quanttrade.vocabulary import OrderStatus
from tests.execution.test_execution import make_orders
from venuesim.binance import BinanceSim

D = Decimal


def request(cid: str = "qt1", market: str = "SPOT", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "BTC/USDT", "side": "BUY", "order_type": "MARKET", "qty_per": D("10")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def test_registry_maps_binance_to_its_ccxt_class(binance_account: Any) -> None:
    adapter = adapter_for(binance_account())
    assert isinstance(adapter, CcxtAdapter)
    assert adapter.display_name == "Binance"


def test_spot_market_buy_spends_percent_of_free_quote(binance_account: Any, binance_sim: BinanceSim) -> None:
    result = adapter_for(binance_account()).place_order(request(qty_per=D("10")))

    (order,) = binance_sim.orders_for("qt1")
    # 10% of 10,000 USDT at 50,000 = 0.02 BTC
    assert (order["type"], order["side"], order["qty"]) == ("MARKET", "BUY", D("0.02"))
    assert result.status == OrderStatus.FILLED
    assert result.filled_qty == D("0.02")
    assert result.avg_price == D("50000")
    assert result.exchange_order_id == str(order["id"])


def test_spot_limit_sell_uses_percent_of_free_base_and_rounds_to_tick(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    result = adapter_for(binance_account()).place_order(
        request(side="SELL", order_type="LIMIT", qty_per=D("50"), price=D("60000.129"))
    )

    (order,) = binance_sim.orders_for("qt1")
    assert (order["type"], order["qty"], order["price"]) == ("LIMIT", D("0.25"), D("60000.13"))
    assert result.status == OrderStatus.OPEN


@pytest.mark.parametrize(
    ("order_type", "venue_type", "price"),
    [("STOP_MARKET", "STOP_LOSS", None), ("STOP_LIMIT", "STOP_LOSS_LIMIT", D("40000"))],
)
def test_spot_stop_orders_carry_the_trigger_price(
    binance_account: Any, binance_sim: BinanceSim, order_type: str, venue_type: str, price: Decimal | None
) -> None:
    adapter_for(binance_account()).place_order(
        request(side="SELL", order_type=order_type, qty_per=D("10"), price=price, stop_price=D("41000"))
    )

    (order,) = binance_sim.orders_for("qt1")
    assert (order["type"], order["stop_price"], order["price"]) == (venue_type, D("41000"), price)


def test_futures_market_order_sizes_by_equity_times_leverage(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    result = adapter_for(binance_account(leverage=5)).place_order(request(market="FUTURES", qty_per=D("10")))

    (order,) = binance_sim.orders_for("qt1")
    # 10% of 10,000 USDT equity x 5 / 50,000 = 0.1 BTC
    assert (order["market"], order["qty"], order["reduce_only"]) == ("futures", D("0.1"), False)
    assert binance_sim.leverage["BTCUSDT"] == 5
    assert binance_sim.positions["BTCUSDT"] == D("0.1")
    assert result.status == OrderStatus.FILLED


def test_futures_stop_market_goes_to_the_algo_api(binance_account: Any, binance_sim: BinanceSim) -> None:
    adapter_for(binance_account()).place_order(
        request(market="FUTURES", side="SELL", order_type="STOP_MARKET", stop_price=D("45000.07"))
    )

    (order,) = binance_sim.orders_for("qt1")
    assert (order["algo"], order["type"], order["stop_price"]) == (True, "STOP_MARKET", D("45000.1"))


def test_futures_close_half_of_the_long_is_reduce_only(binance_account: Any, binance_sim: BinanceSim) -> None:
    binance_sim.positions["BTCUSDT"] = D("0.3")

    adapter_for(binance_account()).place_order(request(market="FUTURES", side="SELL", qty_per=D("-50")))

    (order,) = binance_sim.orders_for("qt1")
    assert (order["side"], order["qty"], order["reduce_only"]) == ("SELL", D("0.15"), True)
    assert binance_sim.positions["BTCUSDT"] == D("0.15")


def test_futures_close_all_detects_a_short(binance_account: Any, binance_sim: BinanceSim) -> None:
    binance_sim.positions["BTCUSDT"] = D("-0.2")

    adapter_for(binance_account()).place_order(request(market="FUTURES", side="BUY", qty_per=D("-100")))

    assert binance_sim.positions["BTCUSDT"] == 0


@pytest.mark.parametrize(
    ("side", "message"), [("SELL", "청산할 롱 포지션이 없습니다"), ("BUY", "청산할 숏 포지션이 없습니다")]
)
def test_futures_close_without_position_is_rejected(
    binance_account: Any, binance_sim: BinanceSim, side: str, message: str
) -> None:
    with pytest.raises(OrderRejected) as caught:
        adapter_for(binance_account()).place_order(request(market="FUTURES", side=side, qty_per=D("-100")))

    assert caught.value.message == message
    assert binance_sim.seen("/fapi/v1/order", "POST") == []


def test_spot_sell_close_sells_percent_of_the_base_holding(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter_for(binance_account()).place_order(request(side="SELL", qty_per=D("-20")))

    (order,) = binance_sim.orders_for("qt1")
    assert (order["side"], order["qty"]) == ("SELL", D("0.1"))


@pytest.mark.parametrize(
    ("qty_per", "expected"),
    [(D("33.333"), D("0.06666")), (D("1"), D("0.002")), (D("0.123456"), D("0.00024"))],
)
def test_amounts_are_truncated_to_the_lot_step(
    binance_account: Any, binance_sim: BinanceSim, qty_per: Decimal, expected: Decimal
) -> None:
    adapter_for(binance_account()).place_order(request(qty_per=qty_per))

    assert binance_sim.orders_for("qt1")[0]["qty"] == expected


def test_amount_below_the_lot_minimum_is_rejected_before_sending(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    with pytest.raises(OrderRejected) as caught:
        adapter_for(binance_account()).place_order(request(qty_per=D("0.0001")))

    assert "최소 주문 수량" in caught.value.message
    assert binance_sim.seen("/api/v3/order", "POST") == []


def test_notional_below_the_minimum_is_rejected_before_sending(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    # 0.04% of 10,000 USDT = 4 USDT < NOTIONAL 5
    with pytest.raises(OrderRejected) as caught:
        adapter_for(binance_account()).place_order(request(qty_per=D("0.04")))

    assert caught.value.message == "주문 금액 4이(가) BTC/USDT의 최소 주문 금액 5.0보다 작습니다"
    assert binance_sim.seen("/api/v3/order", "POST") == []


def test_futures_min_notional_applies_to_opens(binance_account: Any, binance_sim: BinanceSim) -> None:
    # 0.5% of 10,000 x 1 = 50 USDT < 100 USDT minimum for BTCUSDT perpetual
    with pytest.raises(OrderRejected, match="최소 주문 금액"):
        adapter_for(binance_account()).place_order(request(market="FUTURES", qty_per=D("0.5")))


def test_cancel_all_for_one_symbol_counts_what_it_cancelled(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.place_order(request("qt1", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("70000")))
    adapter.place_order(request("qt2", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("71000")))
    adapter.place_order(
        request("qt3", symbol="ETH/USDT", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("4000"))
    )

    assert adapter.cancel_all("SPOT", "BTC/USDT") == 2
    assert [o["status"] for o in binance_sim.orders] == ["CANCELED", "CANCELED", "NEW"]


def test_cancel_all_symbols_includes_futures_conditional_orders(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.place_order(request("qt1", market="FUTURES", side="SELL", order_type="LIMIT", price=D("70000")))
    adapter.place_order(
        request("qt2", market="FUTURES", side="SELL", order_type="STOP_MARKET", stop_price=D("40000"))
    )
    adapter.place_order(
        request("qt3", market="FUTURES", symbol="ETH/USDT", side="BUY", order_type="LIMIT", price=D("2000"))
    )

    assert adapter.cancel_all("FUTURES", None) == 3
    assert {o["status"] for o in binance_sim.orders} == {"CANCELED"}


def _three_resting_orders(adapter: Any) -> None:
    adapter.place_order(request("qt1", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("70000")))
    adapter.place_order(request("qt2", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("71000")))
    adapter.place_order(
        request("qt3", symbol="ETH/USDT", side="SELL", order_type="LIMIT", qty_per=D("10"), price=D("4000"))
    )


def test_one_failing_cancel_does_not_stop_a_cancel_all(binance_account: Any, binance_sim: BinanceSim) -> None:
    adapter = adapter_for(binance_account())
    _three_resting_orders(adapter)
    # The first symbol's cancel (BTC/USDT) fails; ETH/USDT must still be cancelled.
    binance_sim.inject("5xx", "/api/v3/openOrders", method="DELETE")

    with pytest.raises(CancelAllIncomplete) as caught:
        adapter.cancel_all("SPOT", None)

    assert [o["status"] for o in binance_sim.orders] == ["NEW", "NEW", "CANCELED"]
    btc_ids = ", ".join(str(o["id"]) for o in binance_sim.orders[:2])
    failure = f"BTC/USDT {btc_ids}: Internal error; unable to process your request. Please try again."
    assert (caught.value.cancelled, caught.value.failures) == (1, [failure])
    assert caught.value.message == f"Binance API 오류: {failure}"


@pytest.mark.parametrize("failing", [1, 2])
def test_a_cancel_order_records_what_was_cancelled_and_what_was_not(
    binance_account: Any, binance_sim: BinanceSim, make_strategy: Any, failing: int
) -> None:
    account = binance_account()
    _three_resting_orders(adapter_for(account))
    binance_sim.inject("5xx", "/api/v3/openOrders", method="DELETE", count=failing)
    event = make_orders(
        make_strategy(accounts=[account]), [account], [{"order_type": "CANCEL_ALL_ORDER", "symbol": ""}]
    )

    account_orders_execute(event.id, account.pk)

    order = Order.objects.get(webhook=event)
    if failing == 1:
        assert (order.status, order.cancelled_orders) == (OrderStatus.CANCELLED, 1)
        assert order.message.startswith("미체결 주문 1건을 취소했습니다. 취소하지 못한 주문: BTC/USDT ")
    else:
        assert (order.status, order.cancelled_orders) == (OrderStatus.FAILED, 0)
        assert order.message.startswith("미체결 주문을 취소하지 못했습니다: BTC/USDT ")
        assert "; ETH/USDT " in order.message
    assert "Internal error" in order.message


def test_cancel_all_with_nothing_open_returns_zero(binance_account: Any) -> None:
    assert adapter_for(binance_account()).cancel_all("SPOT", "BTC/USDT") == 0


def test_fetch_order_by_client_id_finds_the_order_or_none(binance_account: Any) -> None:
    adapter = adapter_for(binance_account())
    limit = request("qt-limit", side="SELL", order_type="LIMIT", price=D("70000"))
    adapter.place_order(limit)

    found = adapter.fetch_order_by_client_id(limit)

    assert found is not None and found.status == OrderStatus.OPEN and found.quantity == D("0.05")
    assert adapter.fetch_order_by_client_id(request("qt-unknown")) is None


def test_fetch_order_by_client_id_finds_futures_conditional_orders(binance_account: Any) -> None:
    adapter = adapter_for(binance_account())
    stop = request("qt-stop", market="FUTURES", side="SELL", order_type="STOP_MARKET", stop_price=D("40000"))
    adapter.place_order(stop)

    found = adapter.fetch_order_by_client_id(stop)

    assert found is not None and found.status == OrderStatus.OPEN


def test_unknown_symbol_is_rejected(binance_account: Any) -> None:
    with pytest.raises(OrderRejected, match="Binance API 오류: 알 수 없는 심볼입니다: DOGE/USDT"):
        adapter_for(binance_account()).place_order(request(symbol="DOGE/USDT"))


def test_a_market_order_reads_the_balance_then_one_ticker_then_places(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    adapter = adapter_for(binance_account())
    adapter.market("SPOT", "BTC/USDT")
    binance_sim.requests.clear()

    adapter.place_order(request())

    assert [(r.method, r.path) for r in binance_sim.requests] == [
        ("GET", "/api/v3/account"),
        ("GET", "/api/v3/ticker/24hr"),
        ("POST", "/api/v3/order"),
    ]


def test_a_reduce_only_close_needs_no_ticker(binance_account: Any, binance_sim: BinanceSim) -> None:
    binance_sim.positions["BTCUSDT"] = D("0.3")
    adapter = adapter_for(binance_account())
    adapter.market("FUTURES", "BTC/USDT")

    adapter.place_order(request(market="FUTURES", side="SELL", qty_per=D("-100")))

    assert binance_sim.seen("/fapi/v1/ticker") == []


@pytest.mark.parametrize(
    ("exchange", "name"), [("BYBIT", "Bybit"), ("OKX", "OKX"), ("BITGET", "Bitget"), ("KRAKEN", "Kraken")]
)
def test_other_ccxt_venues_get_their_name_and_the_overridden_urls(
    make_account: Any, exchange: str, name: str
) -> None:
    account = make_account(
        name=f"{exchange}-1", exchange=exchange, settings={"api_base_url": "http://127.0.0.1:1"}
    )
    adapter = adapter_for(account)

    client, _lock = adapter._client("SPOT")

    assert adapter.display_name == name
    urls: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, str):
            urls.append(value)

    collect(client.urls["api"])
    assert urls and all(url.startswith("http://127.0.0.1:1") for url in urls)


def test_an_exchange_ccxt_does_not_know_is_permanent(make_account: Any) -> None:
    from orders.exchanges.base import PermanentVenueError

    with pytest.raises(PermanentVenueError, match="지원하지 않는 거래소입니다: NOPE"):
        adapter_for(make_account(name="x", exchange="NOPE"))


def test_accounts_on_one_venue_share_one_market_load(binance_account: Any, binance_sim: BinanceSim) -> None:
    first, second = binance_account("binance-a"), binance_account("binance-b")

    adapter_for(first).place_order(request(cid="qtA"))
    adapter_for(second).place_order(request(cid="qtB"))

    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 1
    assert [o["client_id"] for o in binance_sim.orders] == ["qtA", "qtB"]


def test_concurrent_cold_accounts_load_the_markets_once(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    import threading

    adapters = [adapter_for(binance_account(f"binance-{i}")) for i in range(5)]
    errors: list[BaseException] = []

    def place(i: int) -> None:
        try:
            adapters[i].place_order(request(cid=f"qt{i}", qty_per=D("1")))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 1
    assert sorted(o["client_id"] for o in binance_sim.orders) == [f"qt{i}" for i in range(5)]


def test_markets_are_loaded_again_after_their_ttl(binance_account: Any, binance_sim: BinanceSim) -> None:
    account = binance_account()
    adapter_for(account).place_order(request(cid="qt1"))
    for shared in ccxt_base._shared_markets.values():  # an hour and a second later
        shared.loaded_at -= ccxt_base.MARKETS_TTL_SECONDS + 1
    adapter_for(account).place_order(request(cid="qt2"))

    assert len(binance_sim.seen("/api/v3/exchangeInfo", "GET")) == 2


def test_the_sending_mark_is_made_only_once_the_shared_client_is_ours(
    binance_account: Any, binance_sim: BinanceSim
) -> None:
    """A worker killed while its order waits for the account's client has sent nothing: the
    mark that makes an order 'maybe sent' is made after the wait, right before the request."""
    import threading
    import time

    adapter = adapter_for(binance_account())
    adapter.warm("SPOT")
    _client, lock = adapter._client("SPOT")
    marks: list[str] = []
    adapter.before_send = lambda: marks.append("sending") or True
    held, release = threading.Event(), threading.Event()

    def another_order() -> None:  # another order of the account holds the client
        with lock:
            held.set()
            release.wait(10)

    threading.Thread(target=another_order, daemon=True).start()
    assert held.wait(10)
    placing = threading.Thread(target=adapter.place_order, args=(request(),))
    placing.start()
    time.sleep(0.3)
    assert marks == [] and binance_sim.orders == []
    release.set()
    placing.join(10)

    assert marks == ["sending"] and len(binance_sim.orders) == 1
