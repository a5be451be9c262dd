"""Price steps: where a venue lets a limit or stop price sit, and moving a price onto it.

A venue refuses a price off its step (KRX ticks by price band, Upbit's KRW price units, the
SEHK spread table...). The adapters move a price onto the step before sending, toward the
passive side: a buy rounds down, a sell rounds up, so the order never becomes more aggressive
than the sender asked. Each venue's table lives with its adapter (built from the venue's
official table, with its source); this module holds the shape and the rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from quanttrade.vocabulary import Side


@dataclass(frozen=True)
class StepTable:
    """Price bands, each ``(lower bound inclusive, step)``, lowest first; the first bound is 0."""

    bands: tuple[tuple[Decimal, Decimal], ...]

    def step_for(self, price: Decimal) -> Decimal:
        step = self.bands[0][1]
        for lower, band_step in self.bands:
            if price >= lower:
                step = band_step
        return step

    def on_step(self, price: Decimal) -> bool:
        return price % self.step_for(price) == 0

    def to_step(self, price: Decimal, side: str) -> Decimal:
        """``price`` moved onto the step toward the passive side (buy down, sell up). A sell
        rounded up into a band with a larger step is rounded again there (still upward)."""
        rounded = to_step(price, self.step_for(price), side)
        while not self.on_step(rounded):
            rounded = to_step(rounded, self.step_for(rounded), side)
        return rounded


def to_step(price: Decimal, step: Decimal, side: str) -> Decimal:
    """``price`` on a multiple of ``step``: down for a buy, up for a sell."""
    rounding = ROUND_FLOOR if side == Side.BUY else ROUND_CEILING
    return (price / step).quantize(Decimal(1), rounding=rounding) * step
