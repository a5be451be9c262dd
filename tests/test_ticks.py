"""Moving prices onto a venue's step, toward the passive side."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.exchanges.ticks import StepTable, to_step

D = Decimal
BANDS = StepTable(((D(0), D(1)), (D(2000), D(5)), (D(5000), D(10))))


@pytest.mark.parametrize(
    ("price", "side", "expected"),
    [
        ("1999.5", "BUY", "1999"),
        ("1999.5", "SELL", "2000"),
        ("2003", "BUY", "2000"),
        ("2003", "SELL", "2005"),
        ("4997", "SELL", "5000"),
        ("5001", "SELL", "5010"),
        ("5000", "BUY", "5000"),
    ],
)
def test_a_price_moves_onto_its_band_step_toward_the_passive_side(
    price: str, side: str, expected: str
) -> None:
    assert BANDS.to_step(D(price), side) == D(expected)
    assert BANDS.on_step(D(expected))


def test_to_step_works_on_fractional_steps() -> None:
    assert to_step(D("0.123456"), D("0.0001"), "BUY") == D("0.1234")
    assert to_step(D("0.123456"), D("0.0001"), "SELL") == D("0.1235")
