"""The one Decimal parse/format pair every layer uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quanttrade.vocabulary import ZERO, decimal_str, to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.50", Decimal("1.50")),
        (" 7 ", Decimal("7")),
        (3, Decimal("3")),
        (0.1, Decimal("0.1")),  # through the float's printed form, not its binary value
        (1e-05, Decimal("0.00001")),
        (Decimal("2.5"), Decimal("2.5")),
    ],
)
def test_to_decimal_reads_numbers_through_their_text(value: object, expected: Decimal) -> None:
    assert to_decimal(value) == expected


@pytest.mark.parametrize("value", [None, "", "  ", "abc", "1,000", "NaN", "inf", "-Infinity", True, [1], {}])
def test_to_decimal_gives_the_default_for_anything_else(value: object) -> None:
    assert to_decimal(value) is None
    assert to_decimal(value, ZERO) == ZERO


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("0.0010000000"), "0.001"),
        (Decimal("1E+2"), "100"),
        (Decimal("0E-10"), "0"),
        (Decimal("-3.50"), "-3.5"),
        (Decimal("12345.6789"), "12345.6789"),
    ],
)
def test_decimal_str_is_plain_without_trailing_zeros(value: Decimal, expected: str) -> None:
    assert decimal_str(value) == expected


def test_decimal_str_of_none_is_the_default() -> None:
    assert decimal_str(None) is None
    assert decimal_str(None, "0") == "0"
