"""What the portfolio service returns: one account's balances, positions and totals, as plain
dataclasses that travel through the cache and to the pages, the API and ``/ws`` as JSON
(``to_dict``: every Decimal a string, so no digit is lost)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from quanttrade.vocabulary import decimal_str

ZERO = Decimal("0")


@dataclass
class BalanceLine:
    market_type: str
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass
class PositionLine:
    """One open position (a futures or F&O position, a stock holding, a spot coin).

    ``margin`` positions (futures, F&O) add only their unrealised PnL to equity; the others
    (stocks, spot coins) add their whole marked value. Prices and PnL are in ``currency``; a
    None is unknown (no price, no entry price), never zero."""

    market_type: str
    symbol: str
    instrument: str
    quantity: Decimal
    currency: str
    margin: bool
    entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    mark_source: str = ""  # "price" (the price layer) | "venue" | ""
    unrealised_pnl: Decimal | None = None
    realised_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    leverage: Decimal | None = None
    liquidation_price: Decimal | None = None

    @property
    def value(self) -> Decimal | None:
        """The marked value (quantity × mark), or None without a mark."""
        return None if self.mark_price is None else self.quantity * self.mark_price


@dataclass
class CurrencyTotal:
    """An account's money in one currency: cash, the marked value of holdings (stocks, coins),
    the unrealised PnL of margin positions (``margin_pnl``), equity (their sum); the unrealised
    PnL of every position, realised PnL and fees from the stored fills."""

    currency: str
    cash: Decimal = ZERO
    holdings_value: Decimal = ZERO
    margin_pnl: Decimal = ZERO
    unrealised_pnl: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    day_pnl: Decimal | None = None  # equity now less the last snapshot before today

    @property
    def equity(self) -> Decimal:
        return self.cash + self.holdings_value + self.margin_pnl


@dataclass
class Portfolio:
    account_id: int
    account_name: str
    exchange: str
    refreshed_at: datetime
    balances: list[BalanceLine] = field(default_factory=list)
    positions: list[PositionLine] = field(default_factory=list)
    totals: dict[str, CurrencyTotal] = field(default_factory=dict)
    # Equity of every currency in KRW where a rate exists; ``unconverted`` names the rest.
    total_krw: Decimal | None = None
    unconverted: list[str] = field(default_factory=list)
    #: One message per market whose venue read failed (shown, never hidden). The lines read
    #: before the failure (other markets) are still there.
    errors: list[str] = field(default_factory=list)

    @property
    def error(self) -> str:
        return "; ".join(self.errors)

    @property
    def complete(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        data = _plain(asdict(self))
        data["error"] = self.error
        for line, raw in zip(self.positions, data["positions"], strict=True):
            raw["value"] = decimal_str(line.value)
        for currency, total in self.totals.items():
            data["totals"][currency]["equity"] = decimal_str(total.equity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Portfolio:
        return cls(
            account_id=data["account_id"],
            account_name=data["account_name"],
            exchange=data["exchange"],
            refreshed_at=datetime.fromisoformat(data["refreshed_at"]),
            balances=[_load(BalanceLine, raw) for raw in data["balances"]],
            positions=[_load(PositionLine, raw) for raw in data["positions"]],
            totals={key: _load(CurrencyTotal, raw) for key, raw in data["totals"].items()},
            total_krw=_dec(data.get("total_krw")),
            unconverted=list(data.get("unconverted") or []),
            errors=list(data.get("errors") or []),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


_Line = TypeVar("_Line", BalanceLine, PositionLine, CurrencyTotal)

_DECIMAL_FIELDS = {
    "free",
    "locked",
    "quantity",
    "entry_price",
    "mark_price",
    "unrealised_pnl",
    "realised_pnl",
    "fees",
    "leverage",
    "liquidation_price",
    "cash",
    "holdings_value",
    "margin_pnl",
    "day_pnl",
}


def _load(kind: type[_Line], raw: dict[str, Any]) -> _Line:
    names = {f.name for f in fields(kind)}
    values: dict[str, Any] = {
        key: (_dec(value) if key in _DECIMAL_FIELDS else value) for key, value in raw.items() if key in names
    }
    return kind(**values)
