"""FIFO realised PnL against tables computed by hand (the comment beside each case shows it)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.portfolio.pnl import Fill, fifo_pnl


def fill(side: str, qty: str, price: str, fee: str = "0", fee_currency: str = "") -> Fill:
    return Fill(
        symbol="BTC/USDT",
        side=side,
        quantity=Decimal(qty),
        price=Decimal(price),
        fee=Decimal(fee),
        fee_currency=fee_currency,
    )


CASES = [
    # (fills, realised, fees, open quantity, entry price)
    pytest.param([fill("BUY", "1", "100")], "0", "0", "1", "100", id="open-long"),
    # 1@100 + 1@110 long; sell 1.5@120 closes 1@100 (+20) and 0.5@110 (+5) = 25; 0.5 left @110.
    pytest.param(
        [fill("BUY", "1", "100"), fill("BUY", "1", "110"), fill("SELL", "1.5", "120")],
        "25",
        "0",
        "0.5",
        "110",
        id="fifo-partial-close",
    ),
    # Long 2@100, sell 3@90: closes 2 (-20), opens short 1@90; buy 1@80 closes short (+10): -10.
    pytest.param(
        [fill("BUY", "2", "100"), fill("SELL", "3", "90"), fill("BUY", "1", "80")],
        "-10",
        "0",
        "0",
        None,
        id="flip-long-to-short-and-close",
    ),
    # Flip left open: long 1@100, sell 2@105 → +5 realised, short 1@105 open.
    pytest.param(
        [fill("BUY", "1", "100"), fill("SELL", "2", "105")], "5", "0", "-1", "105", id="flip-stays-short"
    ),
    # Short 2@50 in two partial fills (1@50, 1@52 → avg 51); buy 1@48: closes 1@50 → +2.
    pytest.param(
        [fill("SELL", "1", "50"), fill("SELL", "1", "52"), fill("BUY", "1", "48")],
        "2",
        "0",
        "-1",
        "52",
        id="short-partial-fills",
    ),
    # Fees in quote 0.1 + 0.12; fee in base 0.001 BTC at 110 = 0.11 → 0.33 total.
    pytest.param(
        [
            fill("BUY", "1", "100", "0.1", "USDT"),
            fill("SELL", "1", "120", "0.12", "USDT"),
            fill("BUY", "1", "110", "0.001", "BTC"),
        ],
        "20",
        "0.33",
        "1",
        "110",
        id="fees-quote-and-base",
    ),
]


@pytest.mark.parametrize(("fills", "realised", "fees", "quantity", "entry"), CASES)
def test_fifo_table(fills: list[Fill], realised: str, fees: str, quantity: str, entry: str | None) -> None:
    result = fifo_pnl(fills, "USDT")
    assert result.realised == Decimal(realised)
    assert result.fees == Decimal(fees)
    assert result.quantity == Decimal(quantity)
    assert result.entry_price == (Decimal(entry) if entry is not None else None)


def test_net_is_realised_less_quote_fees() -> None:
    result = fifo_pnl([fill("BUY", "2", "10", "0.02", "USDT"), fill("SELL", "2", "12", "0.024")], "USDT")
    assert result.realised == Decimal("4")
    assert result.net == Decimal("3.956")


def test_fee_in_a_third_currency_is_kept_apart() -> None:
    result = fifo_pnl([fill("BUY", "1", "100", "0.01", "BNB")], "USDT")
    assert result.fees == 0
    assert result.other_fees == {"BNB": Decimal("0.01")}


def test_unrealised_marks_every_open_lot() -> None:
    # Long 1@100 and 1@110 at mark 120: 20 + 10 = 30; a short 1@90 at 120 loses 30.
    assert fifo_pnl([fill("BUY", "1", "100"), fill("BUY", "1", "110")]).unrealised(Decimal("120")) == Decimal(
        "30"
    )
    assert fifo_pnl([fill("SELL", "1", "90")]).unrealised(Decimal("120")) == Decimal("-30")


def test_zero_quantity_fill_changes_nothing() -> None:
    result = fifo_pnl([fill("BUY", "0", "100", "1", "USDT")])
    assert result.lots == [] and result.fees == 0
