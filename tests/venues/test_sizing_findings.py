"""Sizing and placement findings of a review of the ccxt adapters (2026-12-03), each against the
venue's simulator: a unified wallet's snapshot, a cancel's released funds, a timestamp refusal,
and a holding larger than a float carries to its last step."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest, RetryableVenueError
from orders.exchanges.ccxt.base import float_down, holding
from prices.services import price_publish
from quanttrade.vocabulary import MarketType
from venuesim.bybit import BybitSim
from venuesim.okx import OkxSim

D = Decimal
CACHED = {"price_layer_for_base_url": True}


def _market(
    client_order_id: str, market_type: str, qty_per: str, side: str = "BUY", **kw: Any
) -> OrderRequest:
    return OrderRequest(
        client_order_id=client_order_id,
        market_type=market_type,
        symbol=kw.pop("symbol", "BTC/USDT"),
        side=side,
        order_type=kw.pop("order_type", "MARKET"),
        qty_per=D(qty_per),
        **kw,
    )


def _unified_sequence(sim: Any, make_account: Any, name: str, **settings: Any) -> dict[str, Any]:
    """Warm spot, a futures buy of half, then a spot buy of half; the spot order as the venue
    took it (its size fields, without ids)."""
    account = make_account(
        name=name,
        exchange=sim.name.upper(),
        api_key="sim-bybit-key" if sim.name == "bybit" else "sim-key",
        api_secret="sim-bybit-secret" if sim.name == "bybit" else "sim-secret",
        passphrase="sim-pass",
        settings={"api_base_url": sim.base_url, "timeout_seconds": 2, "enable_rate_limit": False, **settings},
    )
    spot, futures = adapter_for(account), adapter_for(account)
    spot.warm(MarketType.SPOT)  # the spot snapshot
    futures.place_order(_market("qt-futures", MarketType.FUTURES, "50"))
    futures.after_order(MarketType.FUTURES, placed=True)
    spot.place_order(_market("qt-spot", MarketType.SPOT, "50"))
    last = sim.orders[-1]
    return {
        k: v for k, v in last.items() if not any(w in k.lower() for w in ("id", "time", "created", "updated"))
    }


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_a_futures_order_on_a_unified_wallet_ends_the_spot_snapshot(
    make_account: Any, no_prices: None, venue: str
) -> None:
    """Bybit's and OKX's unified account: spot and futures draw on one wallet. After a futures
    order took half the USDT, the next spot buy of half is the same order as with the snapshot
    off (balance_max_age_seconds 0), not one sized from the spot snapshot before it."""
    sims = [BybitSim(), BybitSim()] if venue == "bybit" else [OkxSim(), OkxSim()]
    for sim in sims:
        sim.start()
    try:
        cached = _unified_sequence(sims[0], make_account, "cached", leverage=1, **CACHED)
        reads = _unified_sequence(
            sims[1], make_account, "reads", leverage=1, balance_max_age_seconds=0, price_max_age_seconds=0
        )
    finally:
        for sim in sims:
            sim.stop()
    assert cached == reads


def test_a_cancel_ends_the_snapshot_that_counted_its_funds_as_locked(
    binance_account: Any, binance_sim: Any, no_prices: None
) -> None:
    adapter = adapter_for(binance_account(**CACHED))
    adapter.warm(MarketType.SPOT)
    price_publish("BINANCE:BTC/USDT", D("50000"), feed="ccxt")
    resting = adapter.place_order(
        _market("qt-rest", MarketType.SPOT, "50", order_type="LIMIT", price=D("40000"))
    )  # 5,000 USDT locked
    adapter.after_order(MarketType.SPOT, placed=True)
    adapter.cancel_order(
        _market("qt-rest", MarketType.SPOT, "50", order_type="LIMIT", price=D("40000")),
        resting.exchange_order_id,
    )
    adapter.place_order(_market("qt-after", MarketType.SPOT, "100"))
    (order,) = binance_sim.orders_for("qt-after")
    # All 10,000 USDT (the cancel's 5,000 included) at about 50,000; from the snapshot taken
    # while the limit order rested, 0.1.
    assert D("0.199") <= order["qty"] <= D("0.2")


def test_a_timestamp_refusal_is_retried_not_taken_for_an_unknown_outcome(
    bybit_account: Any, bybit_sim: Any
) -> None:
    """Bybit 10002 (ccxt's InvalidNonce, a NetworkError): the venue refused the request for its
    timestamp, so nothing was placed; the order is retried, not looked up until it fails."""
    adapter = adapter_for(bybit_account())
    adapter.warm(MarketType.SPOT)
    client, _lock = adapter._client(MarketType.SPOT)  # type: ignore[attr-defined]
    client.options["timeDifference"] = 120_000  # this machine's clock two minutes off
    with pytest.raises(RetryableVenueError):
        adapter.place_order(_market("qt-skewed", MarketType.SPOT, "10"))
    assert bybit_sim.orders == []


@pytest.mark.parametrize(
    "held",
    [
        "848846059.15664847",
        "179938767.20759868",  # its float sits below its shortest form, which is above it
        "690577101.05581731",
        "98765432.12345679",
        "999999999.99999999",  # its float reads 1000000000.0: only the venue's figure tells
        "50000000",  # a float holds these exactly: nothing shaved off
        "40000000.5",
        "0.5",
    ],
)
def test_a_close_sells_the_whole_holding_as_the_venue_counts_it(
    upbit_account: Any, upbit_sim: Any, held: str
) -> None:
    """Upbit's accounts answer writes each balance as a string; a close sells that, never more,
    even beyond a float's digits (848,846,059.15664847 XRP: ccxt's float says …1566485, more
    than held, which Upbit refused)."""
    upbit_sim.balances["XRP"] = D(held)
    upbit_sim.prices["KRW-XRP"] = D("20000") if D(held) < 1000 else D("1")
    adapter = adapter_for(upbit_account())
    adapter.place_order(_market("qt-close", MarketType.SPOT, "-100", side="SELL", symbol="XRP/KRW"))
    (order,) = [o for o in upbit_sim.orders if o["side"] == "ask"]
    sold = D(str(order["volume"]))
    if len(D(held).as_tuple().digits) <= 15:
        assert sold == D(held)  # a float carries it: the whole holding, no dust
    else:
        # Beyond a float's digits ccxt cannot send it exactly: never more, and the dust left is
        # below a float's last place (1.2e-7 at hundreds of millions).
        assert D(held) - D("0.0000003") < sold <= D(held)


@pytest.mark.parametrize(
    ("reported", "held", "expected"),
    [
        (848846059.1566485, "848846059.15664847", "848846059.1566484"),  # rounded up: one place less
        (50000000.0, "50000000", "50000000"),  # exact: as it is
        (40000000.5, "40000000.5", "40000000.5"),
        (0.5, "0.5", "0.5"),
    ],
)
def test_without_the_venues_figure_a_holding_is_never_read_as_more(
    reported: float, held: str, expected: str
) -> None:
    """A venue whose answer ccxt keeps only as floats: the float is lowered one place only where
    it may have been rounded up past an amount step (1e-8), never when it reads exactly."""
    amount = holding(reported, D("0.00000001"))
    assert amount == D(expected)
    assert amount <= D(held)


@given(st.integers(min_value=1, max_value=10**18))
def test_a_size_handed_to_ccxt_never_reads_as_more_than_it_is(units: int) -> None:
    """float_down: ccxt writes a float size in its shortest form, then truncates it to the
    market's step; that form is never above the size (1e-8 steps, up to 10 billion units)."""
    size = Decimal(units).scaleb(-8)
    sent = float_down(size)
    assert Decimal(repr(sent)) <= size
    assert size - Decimal(repr(sent)) <= Decimal(math.ulp(float(size))) * 2
