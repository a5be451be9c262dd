"""Issue #10 findings on KIS, each against the simulator made as strict as KIS: overseas
cancel-all (NASD lists all of the US), a failing cancel that must not stop a cancel-all, the
NXT/SOR order lookup, night-session balances and price steps."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import CancelAllIncomplete, OrderRejected, OrderRequest, OrderUncertain
from orders.exchanges.kis.sessions import KST
from orders.exchanges.kis.ticks import KRX_ETF, KRX_STOCK, SEHK, TSE
from quanttrade.vocabulary import OrderStatus
from venuesim.kis import KisSim

D = Decimal
DAYTIME = datetime(2026, 12, 1, 10, 0, tzinfo=KST)
NIGHT = datetime(2026, 12, 1, 20, 0, tzinfo=KST)


@pytest.fixture(autouse=True)
def _day_session(kst_clock: Any) -> None:
    kst_clock(DAYTIME)


def req(market: str = "DOMESTIC_STOCK", cid: str = "qt1", **kw: Any) -> OrderRequest:
    fields: dict[str, Any] = {"symbol": "005930", "side": "BUY", "order_type": "LIMIT", "qty_per": D("1")}
    fields.update(kw)
    return OrderRequest(client_order_id=cid, market_type=market, **fields)


def overseas_limit(cid: str, exchange: str, symbol: str, price: str) -> OrderRequest:
    return req("OVERSEAS_STOCK", cid, symbol=symbol, price=D(price), params={"exchange_code": exchange})


# --- #1 overseas cancel-all ------------------------------------------------------------------


def test_overseas_cancel_all_cancels_each_us_order_once(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.overseas_prices[("AMEX", "SPY")] = D("500.00")
    adapter = adapter_for(kis_account())
    adapter.place_order(overseas_limit("a", "NASD", "AAPL", "150.00"))
    adapter.place_order(overseas_limit("b", "NYSE", "TSLA", "200.00"))
    adapter.place_order(overseas_limit("c", "AMEX", "SPY", "400.00"))
    adapter.place_order(overseas_limit("d", "SEHK", "9988", "70.000"))

    assert adapter.cancel_all("OVERSEAS_STOCK", None) == 4

    cancels = kis_sim.seen("/uapi/overseas-stock/v1/trading/order-rvsecncl")
    assert sorted(r.json()["ORGN_ODNO"] for r in cancels) == sorted(o["odno"] for o in kis_sim.orders)
    assert all(o["cancelled"] for o in kis_sim.orders)
    asked = [r.query["OVRS_EXCG_CD"] for r in kis_sim.seen("/uapi/overseas-stock/v1/trading/inquire-nccs")]
    assert asked == ["NASD", "SEHK", "SHAA", "SZAA", "TKSE", "HASE", "VNSE"]


def test_the_simulator_lists_every_us_exchange_for_nasd_and_refuses_a_second_cancel(
    kis_account: Any, kis_sim: KisSim
) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(overseas_limit("b", "NYSE", "TSLA", "200.00"))
    market = adapter._markets["OVERSEAS_STOCK"]

    (order,) = market.open_orders()
    assert order.row["ovrs_excg_cd"] == "NYSE"
    market.cancel(order)
    with pytest.raises(Exception, match="정정/취소할 수량이 없습니다"):
        market.cancel(order)


@pytest.mark.parametrize("market", ["DOMESTIC_STOCK", "OVERSEAS_STOCK"])
def test_one_failing_cancel_does_not_stop_the_cancel_all(
    kis_account: Any, kis_sim: KisSim, market: str
) -> None:
    adapter = adapter_for(kis_account())
    if market == "DOMESTIC_STOCK":
        for cid in ("a", "b", "c"):
            adapter.place_order(req(cid=cid, price=D("60000")))
        path = "/uapi/domestic-stock/v1/trading/order-rvsecncl"
    else:
        for cid, symbol in (("a", "AAPL"), ("b", "MSFT"), ("c", "NVDA")):
            adapter.place_order(overseas_limit(cid, "NASD", symbol, "100.00"))
        path = "/uapi/overseas-stock/v1/trading/order-rvsecncl"
    kis_sim.inject("reject", path, message="주문처리 불가")  # the first cancel fails

    with pytest.raises(CancelAllIncomplete) as raised:
        adapter.cancel_all(market, None)

    assert len(kis_sim.seen(path)) == 3  # every order tried once
    assert raised.value.cancelled == 2
    (failure,) = raised.value.failures
    odno, _, message = failure.partition(": ")
    assert "주문처리 불가" in message
    assert sum(o["cancelled"] for o in kis_sim.orders) == 2
    assert "2" in raised.value.message and odno in raised.value.message


# --- #5 the domestic lookup sees NXT and SOR orders ------------------------------------------


@pytest.mark.parametrize("venue", ["NXT", "SOR"])
def test_an_unanswered_nxt_or_sor_order_is_found_not_sent_again(
    kis_account: Any, kis_sim: KisSim, venue: str
) -> None:
    adapter = adapter_for(kis_account(timeout_seconds=0.5))
    adapter.client.token()
    kis_sim.inject("timeout", "/uapi/domestic-stock/v1/trading/order-cash", delay=1.0)
    order = req(price=D("60000"), params={"exchange_id": venue})

    with pytest.raises(OrderUncertain):
        adapter.place_order(order)
    found = adapter.fetch_order_by_client_id(order)

    assert found is not None and found.exchange_order_id == kis_sim.orders[0]["odno"]
    lookups = kis_sim.seen("/uapi/domestic-stock/v1/trading/inquire-daily-ccld")
    assert lookups and all(r.query["EXCG_ID_DVSN_CD"] == "ALL" for r in lookups)


def test_the_simulator_lists_krx_orders_only_unless_asked(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(req("DOMESTIC_STOCK", "a", price=D("60000"), params={"exchange_id": "NXT"}))
    market = adapter._markets["DOMESTIC_STOCK"]
    params = {**adapter.kis.fields(), "INQR_STRT_DT": "20261201", "INQR_END_DT": "20261201"}
    params |= {"SLL_BUY_DVSN_CD": "00", "CCLD_DVSN": "00", "INQR_DVSN": "00", "INQR_DVSN_3": "00"}
    path, tr = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld", "TTTC0081R"

    assert market.client.request("GET", path, tr, params=params)["output1"] == []
    assert (
        len(market.client.request("GET", path, tr, params={**params, "EXCG_ID_DVSN_CD": "NXT"})["output1"])
        == 1
    )
    assert (
        len(market.client.request("GET", path, tr, params={**params, "EXCG_ID_DVSN_CD": "ALL"})["output1"])
        == 1
    )


# --- #6 the night session closes from the night balance -------------------------------------


def test_a_night_close_sells_what_the_night_session_bought(
    kis_account: Any, kis_sim: KisSim, kst_clock: Any
) -> None:
    kst_clock(NIGHT)
    adapter = adapter_for(kis_account(product_code="03"))
    fo = "DOMESTIC_FUTUREOPTION"
    adapter.place_order(req(fo, "open", symbol="101TC000", order_type="MARKET", qty_per=D("2")))
    assert kis_sim.fo_night_positions["101TC000"] == D("2")

    result = adapter.place_order(
        req(fo, "close", symbol="101TC000", side="SELL", order_type="MARKET", qty_per=D("-100"))
    )

    assert result.filled_qty == D("2")
    assert kis_sim.fo_night_positions["101TC000"] == 0
    sent = kis_sim.order_requests()
    assert [r.header("tr_id") for r in sent] == ["STTN1101U", "STTN1101U"]
    assert [r.json()["SLL_BUY_DVSN_CD"] for r in sent] == ["02", "01"]
    (balance,) = kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-ngt-balance")
    assert balance.header("tr_id") == "CTFN6118R"
    assert not kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-balance")


def test_a_day_close_reads_the_day_balance(kis_account: Any, kis_sim: KisSim) -> None:
    kis_sim.fo_positions["101TC000"] = D("3")
    adapter = adapter_for(kis_account(product_code="03"))

    adapter.place_order(
        req("DOMESTIC_FUTUREOPTION", symbol="101TC000", side="SELL", order_type="MARKET", qty_per=D("-100"))
    )

    assert kis_sim.fo_positions["101TC000"] == 0
    assert (
        kis_sim.seen("/uapi/domestic-futureoption/v1/trading/inquire-balance")[0].header("tr_id")
        == "CTFO6118R"
    )


# --- #4 price steps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "price", "step"),
    [
        (KRX_STOCK, "1999", "1"),
        (KRX_STOCK, "2000", "5"),
        (KRX_STOCK, "4995", "5"),
        (KRX_STOCK, "5000", "10"),
        (KRX_STOCK, "19990", "10"),
        (KRX_STOCK, "20000", "50"),
        (KRX_STOCK, "49950", "50"),
        (KRX_STOCK, "50000", "100"),
        (KRX_STOCK, "199900", "100"),
        (KRX_STOCK, "200000", "500"),
        (KRX_STOCK, "499500", "500"),
        (KRX_STOCK, "500000", "1000"),
        (KRX_ETF, "1500", "5"),
        (KRX_ETF, "35000", "5"),
        (SEHK, "0.25", "0.005"),
        (SEHK, "0.2", "0.001"),
        (SEHK, "9.99", "0.01"),
        (SEHK, "15", "0.02"),
        (SEHK, "80", "0.05"),
        (SEHK, "150", "0.10"),
        (SEHK, "300", "0.20"),
        (SEHK, "600", "0.50"),
        (SEHK, "1500", "1"),
        (SEHK, "3000", "2"),
        (SEHK, "6000", "5"),
        (TSE, "2999", "1"),
        (TSE, "3000", "5"),
        (TSE, "5000", "10"),
        (TSE, "30000", "50"),
        (TSE, "50000", "100"),
        (TSE, "300000", "500"),
        (TSE, "500000", "1000"),
        (TSE, "3000000", "5000"),
    ],
)
def test_step_tables(table: Any, price: str, step: str) -> None:
    assert table.step_for(D(price)) == D(step)


@pytest.mark.parametrize(
    ("side", "price", "sent"),
    [("BUY", "70050", "70000"), ("SELL", "70050", "70100"), ("BUY", "1999.5", "1999")],
)
def test_a_domestic_price_off_the_krx_step_is_moved_toward_the_passive_side(
    kis_account: Any, kis_sim: KisSim, side: str, price: str, sent: str
) -> None:
    result = adapter_for(kis_account()).place_order(req(side=side, price=D(price)))

    assert kis_sim.last_body()["ORD_UNPR"] == sent
    assert result.status == OrderStatus.OPEN
    assert f"가격 {price} → {sent} (거래소 호가단위로 조정)" in result.message


def test_an_etf_marked_by_the_signal_takes_the_etf_step(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    adapter.place_order(req(symbol="069500", price=D("1502"), params={"product_kind": "ETF"}))
    assert kis_sim.last_body()["ORD_UNPR"] == "1500"


def test_the_simulator_refuses_an_off_step_price_as_kis(kis_account: Any, kis_sim: KisSim) -> None:
    adapter = adapter_for(kis_account())
    market = adapter._markets["DOMESTIC_STOCK"]
    body = {
        **adapter.kis.fields(),
        "PDNO": "005930",
        "ORD_DVSN": "00",
        "ORD_QTY": "1",
        "ORD_UNPR": "70050",
        "EXCG_ID_DVSN_CD": "KRX",
    }
    with pytest.raises(OrderRejected, match="호가단위 오류입니다"):
        market.client.request(
            "POST", "/uapi/domestic-stock/v1/trading/order-cash", "TTTC0012U", body=body, place=True
        )
    with pytest.raises(OrderRejected, match="호가단위 오류입니다"):  # an ETF at a stock step below 2,000
        market.client.request(
            "POST",
            "/uapi/domestic-stock/v1/trading/order-cash",
            "TTTC0012U",
            body={**body, "PDNO": "069500", "ORD_UNPR": "1501"},
            place=True,
        )
    assert kis_sim.orders == []


@pytest.mark.parametrize(
    ("exchange", "symbol", "side", "price", "sent"),
    [
        ("SEHK", "9988", "BUY", "80.03", "80.00"),
        ("SEHK", "9988", "SELL", "80.03", "80.05"),
        ("TKSE", "7203", "BUY", "3003", "3000"),
    ],
)
def test_an_overseas_price_off_the_exchange_step_is_moved(
    kis_account: Any, kis_sim: KisSim, exchange: str, symbol: str, side: str, price: str, sent: str
) -> None:
    kis_sim.overseas_holdings[(exchange, symbol)] = D("10")
    result = adapter_for(kis_account()).place_order(
        req("OVERSEAS_STOCK", symbol=symbol, side=side, price=D(price), params={"exchange_code": exchange})
    )

    assert D(kis_sim.last_body()["OVRS_ORD_UNPR"]) == D(sent)
    assert f"가격 {price} → {format(D(sent).normalize(), 'f')} (거래소 호가단위로 조정)" in result.message
