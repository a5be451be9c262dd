"""Realised PnL by FIFO over one account's fills of one symbol: pure functions, no I/O.

Each fill closes the oldest open lots of the opposite sign first; what is left of it opens a
new lot, so a sell bigger than the long position closes the long and opens a short at the same
price (a flip). Realised PnL is gross (price difference × closed quantity); fees are summed
apart, in the quote currency: a fee charged in the base asset is valued at its fill's price, a
fee in any other currency (BNB, say) is kept per currency in ``other_fees``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class Fill:
    """One execution (or one order's filled part at its average price). ``quantity`` > 0."""

    symbol: str
    side: str  # BUY | SELL
    quantity: Decimal
    price: Decimal
    fee: Decimal = ZERO
    fee_currency: str = ""
    at: datetime | None = None

    @property
    def signed(self) -> Decimal:
        return self.quantity if self.side.upper() == "BUY" else -self.quantity


@dataclass
class Lot:
    """An open lot: signed quantity at the price it was opened."""

    quantity: Decimal
    price: Decimal


@dataclass
class PnlResult:
    realised: Decimal = ZERO
    fees: Decimal = ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    lots: list[Lot] = field(default_factory=list)

    @property
    def quantity(self) -> Decimal:
        """The signed open position the fills leave."""
        return sum((lot.quantity for lot in self.lots), ZERO)

    @property
    def entry_price(self) -> Decimal | None:
        """The quantity-weighted price of the open lots, or None when flat."""
        quantity = self.quantity
        if quantity == 0:
            return None
        return sum((lot.quantity * lot.price for lot in self.lots), ZERO) / quantity

    @property
    def net(self) -> Decimal:
        """Realised PnL after the fees paid in the quote currency."""
        return self.realised - self.fees

    def unrealised(self, mark: Decimal) -> Decimal:
        """PnL of the open lots at price ``mark``."""
        return sum((lot.quantity * (mark - lot.price) for lot in self.lots), ZERO)


def _base_of(symbol: str) -> str:
    return symbol.split("/", 1)[0].split(":", 1)[0].upper()


def fifo_pnl(fills: Iterable[Fill], quote_currency: str = "") -> PnlResult:
    """Realised PnL, fees and open lots after ``fills`` (in the order given: oldest first)."""
    result = PnlResult()
    lots: deque[Lot] = deque()
    quote = quote_currency.upper()
    for fill in fills:
        if fill.quantity <= 0:
            continue
        _add_fee(result, fill, quote)
        remaining = fill.signed
        while remaining and lots and (lots[0].quantity > 0) != (remaining > 0):
            lot = lots[0]
            closed = min(abs(remaining), abs(lot.quantity))
            direction = 1 if lot.quantity > 0 else -1
            result.realised += closed * (fill.price - lot.price) * direction
            lot.quantity -= closed * direction
            remaining += closed * direction
            if lot.quantity == 0:
                lots.popleft()
        if remaining:
            lots.append(Lot(quantity=remaining, price=fill.price))
    result.lots = list(lots)
    return result


def _add_fee(result: PnlResult, fill: Fill, quote: str) -> None:
    if not fill.fee:
        return
    currency = fill.fee_currency.upper()
    if not currency or currency == quote:
        result.fees += fill.fee
    elif currency == _base_of(fill.symbol):
        result.fees += fill.fee * fill.price
    else:
        result.other_fees[currency] = result.other_fees.get(currency, ZERO) + fill.fee
