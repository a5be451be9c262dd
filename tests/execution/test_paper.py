"""The paper venue as an exchange: sizing (SPEC §2.1 qty_per), fills, resting orders, cancels."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.exchanges.base import OrderRejected, OrderRequest
from orders.exchanges.paper import PaperAdapter, paper_match
from orders.models import PaperBalance, PaperOrder, PaperPosition

pytestmark = pytest.mark.django_db

D = Decimal


def request(market_type: str = "SPOT", symbol: str = "BTC/USDT", **fields: Any) -> OrderRequest:
    fields.setdefault("side", "BUY")
    fields.setdefault("order_type", "MARKET")
    for key in ("qty_per", "price", "stop_price"):
        if fields.get(key) is not None:
            fields[key] = D(str(fields[key]))
    return OrderRequest(
        client_order_id="qt" + uuid.uuid4().hex, market_type=market_type, symbol=symbol, **fields
    )


def free(account: Any, asset: str) -> Decimal:
    bal = PaperBalance.objects.filter(account=account, asset=asset).first()
    return bal.free if bal else D(0)


def locked(account: Any, asset: str) -> Decimal:
    return PaperBalance.objects.get(account=account, asset=asset).locked


def position(account: Any, symbol: str, market_type: str = "FUTURES") -> Decimal:
    pos = PaperPosition.objects.filter(account=account, symbol=symbol, market_type=market_type).first()
    return pos.quantity if pos else D(0)


@pytest.fixture
def spot(make_account: Any) -> PaperAdapter:
    return PaperAdapter(make_account("spot", balances={"USDT": "10000", "BTC": "1"}))


@pytest.fixture
def futures(make_account: Any) -> PaperAdapter:
    return PaperAdapter(make_account("fut", balances={"USDT": "10000"}, settings={"leverage": 5}))


# --- qty_per: crypto percent ---------------------------------------------------------------


def test_spot_market_buy_spends_percent_of_free_quote_at_latest_price(
    spot: PaperAdapter, publish_price: Any
) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    result = spot.place_order(request(qty_per=10))
    assert (result.status, result.quantity, result.avg_price) == ("filled", D("0.02"), D("50000"))
    assert free(spot.account, "USDT") == D("9000") and free(spot.account, "BTC") == D("1.02")


def test_a_market_buy_sizes_and_fills_at_one_price_even_when_a_tick_comes_between(
    spot: PaperAdapter, publish_price: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick that lands just after the placement reads the price does not split sizing from
    the fill: 100 % of the quote sized at one price and filled at a higher one would lack the
    funds. The placement reads the price layer once."""
    import orders.exchanges.paper as paper_module

    publish_price("BINANCE:BTC/USDT", "50000")
    reads: list[str] = []
    real = paper_module.price_latest

    def read_then_tick(instrument: str) -> Any:
        record = real(instrument)
        reads.append(instrument)
        publish_price("BINANCE:BTC/USDT", "50100")  # the next tick, right after this read
        return record

    monkeypatch.setattr(paper_module, "price_latest", read_then_tick)
    result = spot.place_order(request(qty_per=100))
    assert (result.status, result.quantity, result.avg_price) == ("filled", D("0.2"), D("50000"))
    assert free(spot.account, "USDT") == D("0") and free(spot.account, "BTC") == D("1.2")
    assert reads == ["BINANCE:BTC/USDT"]


def test_a_spot_fill_writes_its_two_balances_in_one_statement(spot: PaperAdapter, publish_price: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    publish_price("BINANCE:BTC/USDT", "50000")
    with CaptureQueriesContext(connection) as queries:
        spot.place_order(request(side="SELL", qty_per=50))
    balance_writes = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "orders_paperbalance"')]
    assert len(balance_writes) == 1
    assert free(spot.account, "BTC") == D("0.5") and free(spot.account, "USDT") == D("35000")


def test_spot_market_sell_sells_percent_of_free_base(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "40000")
    result = spot.place_order(request(side="SELL", qty_per=25))
    assert result.status == "filled" and result.quantity == D("0.25")
    assert free(spot.account, "BTC") == D("0.75") and free(spot.account, "USDT") == D("20000")


def test_crypto_amount_is_rounded_down_to_8_decimals(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "30000")
    result = spot.place_order(request(qty_per=10))  # 1000 / 30000 = 0.0333…
    assert result.quantity == D("0.03333333")


def test_futures_buy_sizes_on_equity_times_leverage_and_locks_margin(
    futures: PaperAdapter, publish_price: Any
) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    result = futures.place_order(request("FUTURES", qty_per=10))  # 10000 * 10% * 5 / 20000
    assert result.status == "filled" and result.quantity == D("0.25")
    assert position(futures.account, "BTC/USDT") == D("0.25")
    assert free(futures.account, "USDT") == D("9000") and locked(futures.account, "USDT") == D("1000")


def test_futures_equity_includes_unrealised_pnl(futures: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    futures.place_order(request("FUTURES", qty_per=10))  # long 0.25 @ 20000
    publish_price("BINANCE:BTC/USDT", "24000")  # +1000 unrealised: equity 11000
    result = futures.place_order(request("FUTURES", qty_per=10))  # 11000 * 10% * 5 / 24000
    assert result.quantity == (D("11000") * D("0.1") * 5 / D("24000")).quantize(D("0.00000001"), "ROUND_DOWN")


def test_default_leverage_is_one(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("fut1", balances={"USDT": "10000"}))
    publish_price("BINANCE:ETH/USDT", "2000")
    assert adapter.place_order(request("FUTURES", "ETH/USDT", qty_per=20)).quantity == D("1")


def test_close_100_closes_the_whole_long_and_realises_pnl(futures: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    futures.place_order(request("FUTURES", qty_per=10))
    publish_price("BINANCE:BTC/USDT", "22000")
    result = futures.place_order(request("FUTURES", side="SELL", qty_per=-100))
    assert result.status == "filled" and result.quantity == D("0.25")
    assert position(futures.account, "BTC/USDT") == 0
    assert free(futures.account, "USDT") == D("10500") and locked(futures.account, "USDT") == 0


def test_close_minus_n_closes_n_percent_of_a_short(futures: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    futures.place_order(request("FUTURES", side="SELL", qty_per=10))  # short 0.25
    result = futures.place_order(request("FUTURES", side="BUY", qty_per=-40))
    assert result.quantity == D("0.1") and position(futures.account, "BTC/USDT") == D("-0.15")


def test_sell_close_without_a_long_is_rejected(futures: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    with pytest.raises(OrderRejected) as error:
        futures.place_order(request("FUTURES", side="SELL", qty_per=-100))
    assert error.value.message == "청산할 롱 포지션이 없습니다"
    assert not PaperOrder.objects.exists()


def test_buy_close_without_a_short_is_rejected(futures: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    futures.place_order(request("FUTURES", qty_per=10))  # a long is not a short
    with pytest.raises(OrderRejected) as error:
        futures.place_order(request("FUTURES", side="BUY", qty_per=-100))
    assert error.value.message == "청산할 숏 포지션이 없습니다"


def test_spot_close_sells_the_base_holding(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    result = spot.place_order(request(side="SELL", qty_per=-100))
    assert (
        result.quantity == D("1")
        and free(spot.account, "BTC") == 0
        and free(spot.account, "USDT") == D("60000")
    )


# --- qty_per: securities absolute quantity -------------------------------------------------


def test_domestic_stock_buys_an_absolute_quantity_in_krw(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "10000000"}))
    publish_price("005930", "70000")
    result = adapter.place_order(request("DOMESTIC_STOCK", "005930", qty_per=10))
    assert (result.status, result.quantity, result.avg_price) == ("filled", D("10"), D("70000"))
    assert free(adapter.account, "KRW") == D("9300000")
    assert position(adapter.account, "005930", "DOMESTIC_STOCK") == 10


def test_stock_negative_qty_per_sells_that_percent_of_the_holding(
    make_account: Any, publish_price: Any
) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "10000000"}))
    publish_price("005930", "70000")
    adapter.place_order(request("DOMESTIC_STOCK", "005930", qty_per=9))
    result = adapter.place_order(request("DOMESTIC_STOCK", "005930", side="SELL", qty_per=-50))
    assert result.quantity == D("4")  # 4.5 shares rounds down to whole shares
    assert position(adapter.account, "005930", "DOMESTIC_STOCK") == 5


def test_overseas_stock_pays_in_the_params_currency(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("us", balances={"USD": "10000"}))
    publish_price("NASD:AAPL", "200")
    adapter.place_order(
        request("OVERSEAS_STOCK", "AAPL", qty_per=3, params={"exchange_code": "NASD", "currency": "USD"})
    )
    assert free(adapter.account, "USD") == D("9400")


def test_domestic_futures_open_and_close_contracts(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kfo", balances={"KRW": "10000000"}))
    publish_price("101TC000", "350")
    adapter.place_order(request("DOMESTIC_FUTUREOPTION", "101TC000", side="SELL", qty_per=2))
    assert position(adapter.account, "101TC000", "DOMESTIC_FUTUREOPTION") == -2
    publish_price("101TC000", "340")
    adapter.place_order(request("DOMESTIC_FUTUREOPTION", "101TC000", side="BUY", qty_per=-100))
    assert position(adapter.account, "101TC000", "DOMESTIC_FUTUREOPTION") == 0
    assert free(adapter.account, "KRW") == D("10000020")  # 2 × (350 − 340)


# --- rejections -----------------------------------------------------------------------------


def test_market_order_without_a_price_is_rejected_with_the_instrument(
    spot: PaperAdapter, no_prices: None
) -> None:
    with pytest.raises(OrderRejected) as error:
        spot.place_order(request(qty_per=10))
    assert error.value.message == "시세 정보가 없습니다: BINANCE:BTC/USDT"


def test_stock_buy_beyond_the_cash_balance_is_rejected(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "100000"}))
    publish_price("005930", "70000")
    with pytest.raises(OrderRejected) as error:
        adapter.place_order(request("DOMESTIC_STOCK", "005930", qty_per=2))
    assert error.value.message == "KRW 잔고가 부족합니다: 필요 140000, 가용 100000"
    assert free(adapter.account, "KRW") == D("100000")


def test_stock_sell_beyond_the_holding_is_rejected(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "100000"}))
    publish_price("005930", "70000")
    with pytest.raises(OrderRejected) as error:
        adapter.place_order(request("DOMESTIC_STOCK", "005930", side="SELL", qty_per=1))
    assert "보유 수량이 부족합니다" in error.value.message


# --- resting orders ----------------------------------------------------------------------------


def test_limit_buy_rests_with_funds_reserved_and_fills_when_price_drops_to_it(
    spot: PaperAdapter, publish_price: Any
) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    result = spot.place_order(request(order_type="LIMIT", price="40000", qty_per=10))
    assert result.status == "open" and result.quantity == D("0.025")
    assert free(spot.account, "USDT") == D("9000") and locked(spot.account, "USDT") == D("1000")
    publish_price("BINANCE:BTC/USDT", "40001")
    assert paper_match() == []
    publish_price("BINANCE:BTC/USDT", "39000")
    [filled] = paper_match()
    assert (filled.status, filled.filled, filled.avg_price) == ("filled", D("0.025"), D("39000"))
    assert free(spot.account, "USDT") == D("9025") and locked(spot.account, "USDT") == 0


def test_limit_sell_fills_when_price_rises_to_it(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    spot.place_order(request(side="SELL", order_type="LIMIT", price="60000", qty_per=50))
    assert locked(spot.account, "BTC") == D("0.5")
    publish_price("BINANCE:BTC/USDT", "60000")
    [filled] = paper_match()
    assert filled.status == "filled" and free(spot.account, "USDT") == D("40000")


def test_marketable_limit_fills_at_once(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    result = spot.place_order(request(order_type="LIMIT", price="55000", qty_per=10))
    assert result.status == "filled" and result.avg_price == D("50000")


def test_stop_market_triggers_when_price_crosses_the_stop(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    result = spot.place_order(request(side="SELL", order_type="STOP_MARKET", stop_price="45000", qty_per=100))
    assert result.status == "open"
    publish_price("BINANCE:BTC/USDT", "46000")
    assert paper_match() == []
    publish_price("BINANCE:BTC/USDT", "44000")
    [filled] = paper_match()
    assert (filled.status, filled.avg_price) == ("filled", D("44000"))
    assert free(spot.account, "BTC") == 0 and free(spot.account, "USDT") == D("54000")


def test_stop_limit_triggers_then_rests_as_a_limit(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    spot.place_order(request(order_type="STOP_LIMIT", stop_price="52000", price="51000", qty_per=10))
    publish_price("BINANCE:BTC/USDT", "52500")
    [triggered] = paper_match()
    assert (triggered.status, triggered.triggered) == ("open", True)
    publish_price("BINANCE:BTC/USDT", "51000")
    [filled] = paper_match()
    assert (filled.status, filled.avg_price) == ("filled", D("51000"))


def test_best_limit_without_price_fills_like_market(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "1000000"}))
    publish_price("005930", "70000")
    result = adapter.place_order(request("DOMESTIC_STOCK", "005930", order_type="BEST_LIMIT", qty_per=1))
    assert result.status == "filled" and result.avg_price == D("70000")


def test_pre_market_with_price_rests_like_limit(make_account: Any, publish_price: Any) -> None:
    adapter = PaperAdapter(make_account("kr", balances={"KRW": "1000000"}))
    publish_price("005930", "70000")
    result = adapter.place_order(
        request("DOMESTIC_STOCK", "005930", order_type="PRE_MARKET", price="69000", qty_per=1)
    )
    assert result.status == "open" and locked(adapter.account, "KRW") == D("69000")


def test_cancel_all_cancels_the_symbols_resting_orders_and_releases_funds(
    spot: PaperAdapter, publish_price: Any
) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    publish_price("BINANCE:ETH/USDT", "3000")
    spot.place_order(request(order_type="LIMIT", price="40000", qty_per=10))
    spot.place_order(request(order_type="LIMIT", price="41000", qty_per=10))
    spot.place_order(request(symbol="ETH/USDT", order_type="LIMIT", price="2000", qty_per=10))
    assert spot.cancel_all("SPOT", "BTC/USDT") == 2
    assert list(PaperOrder.objects.filter(status="open").values_list("symbol", flat=True)) == ["ETH/USDT"]
    assert spot.cancel_all("SPOT", None) == 1
    assert locked(spot.account, "USDT") == 0 and free(spot.account, "USDT") == D("10000")


def test_cancel_all_with_nothing_open_returns_zero(spot: PaperAdapter) -> None:
    assert spot.cancel_all("SPOT", "BTC/USDT") == 0


def test_same_client_order_id_is_never_placed_twice(spot: PaperAdapter, publish_price: Any) -> None:
    publish_price("BINANCE:BTC/USDT", "50000")
    req = request(qty_per=10)
    first, second = spot.place_order(req), spot.place_order(req)
    assert first.exchange_order_id == second.exchange_order_id
    assert PaperOrder.objects.count() == 1 and free(spot.account, "USDT") == D("9000")
    assert spot.fetch_order_by_client_id(req).status == "filled"


def test_a_repeated_client_order_id_is_found_with_the_balances_or_without_any(
    spot: PaperAdapter, publish_price: Any
) -> None:
    """The placement reads the book's balances and the client id's earlier order in one
    statement; an account without any balance row left still finds its earlier order."""
    publish_price("BINANCE:BTC/USDT", "50000")
    req = request(qty_per=10)
    first = spot.place_order(req)
    with CaptureQueriesContext(connection) as queries:
        again = spot.place_order(req)
    assert again.exchange_order_id == first.exchange_order_id
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert sum('"orders_paperbalance"' in sql and '"orders_paperorder"' in sql for sql in reads) == 1
    PaperBalance.objects.filter(account=spot.account).delete()
    assert spot.place_order(req).exchange_order_id == first.exchange_order_id
    assert PaperOrder.objects.count() == 1


def test_an_account_without_balance_rows_is_refused_after_one_read_of_its_book(
    spot: PaperAdapter, publish_price: Any
) -> None:
    """No balance row is an answer: the placement is refused for lack of funds, and the book's
    balances are not read a second time to find that out."""
    publish_price("BINANCE:BTC/USDT", "50000")
    PaperBalance.objects.filter(account=spot.account).delete()
    with CaptureQueriesContext(connection) as queries, pytest.raises(OrderRejected) as error:
        spot.place_order(request(qty_per=10))
    assert error.value.message == "사용 가능한 USDT 잔고가 없습니다"
    assert not PaperOrder.objects.exists()
    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert sum('FROM "orders_paperbalance"' in sql for sql in reads) == 1


def test_account_price_exchange_setting_chooses_the_price_source(
    make_account: Any, publish_price: Any
) -> None:
    adapter = PaperAdapter(
        make_account("bybit", balances={"USDT": "1000"}, settings={"price_exchange": "BYBIT"})
    )
    publish_price("BYBIT:BTC/USDT", "25000")
    assert adapter.place_order(request(qty_per=50)).avg_price == D("25000")


def test_percent_order_with_no_quote_balance_is_rejected_naming_the_asset(
    make_account: Any, publish_price: Any
) -> None:
    adapter = PaperAdapter(make_account("empty", balances={"USDT": "0"}))
    publish_price("BINANCE:BTC/USDT", "50000")
    with pytest.raises(OrderRejected) as error:
        adapter.place_order(request(qty_per=10))
    assert error.value.message == "사용 가능한 USDT 잔고가 없습니다"


def test_a_resting_close_never_flips_a_position_that_shrank(
    futures: PaperAdapter, publish_price: Any
) -> None:
    publish_price("BINANCE:BTC/USDT", "20000")
    futures.place_order(request("FUTURES", qty_per=10))  # long 0.25
    futures.place_order(request("FUTURES", side="SELL", order_type="LIMIT", price="25000", qty_per=-100))
    futures.place_order(request("FUTURES", side="SELL", qty_per=-40))  # long now 0.15
    publish_price("BINANCE:BTC/USDT", "25000")
    [filled] = paper_match()
    assert filled.status == "filled" and filled.filled == D("0.15")
    assert position(futures.account, "BTC/USDT") == 0


def test_a_stop_that_can_no_longer_be_funded_is_cancelled_with_its_funds_released_once(
    spot: PaperAdapter, publish_price: Any
) -> None:
    """The fill is tried in a savepoint: when it fails, the rows the book read during the try
    (with the reservation already released) must not be reused, or the funds come back twice."""
    publish_price("BINANCE:BTC/USDT", "49000")
    result = spot.place_order(request(order_type="STOP_MARKET", stop_price="50000", qty_per=100))
    assert result.status == "open"
    assert free(spot.account, "USDT") == 0 and locked(spot.account, "USDT") == D("10000")
    publish_price("BINANCE:BTC/USDT", "60000")  # triggers; 0.2 BTC now costs 12,000 USDT
    [cancelled] = paper_match()
    assert cancelled.status == "cancelled" and "USDT" in cancelled.message
    assert free(spot.account, "USDT") == D("10000") and locked(spot.account, "USDT") == 0
    assert free(spot.account, "BTC") == D("1")
