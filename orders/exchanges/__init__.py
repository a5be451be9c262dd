"""Exchange adapters: one interface, one implementation per venue family.

The registry maps ``Account.exchange`` to a dotted path, imported on first use, so a venue's
dependencies load only when an account uses it. Anything not listed is treated as a ccxt id and
goes through the generic ``CcxtAdapter``; a ccxt venue with quirks has its own subclass
(``orders/exchanges/ccxt/<venue>.py``) and one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from orders.exchanges.base import ExchangeAdapter

if TYPE_CHECKING:
    from strategies.models import Account

ADAPTERS: dict[str, str] = {
    "PAPER": "orders.exchanges.paper.PaperAdapter",
    "KIS": "orders.exchanges.kis.KisAdapter",
    "KIWOOM": "orders.exchanges.kiwoom.KiwoomAdapter",
    "BINANCE": "orders.exchanges.ccxt.binance.BinanceAdapter",
    "BYBIT": "orders.exchanges.ccxt.bybit.BybitAdapter",
    "OKX": "orders.exchanges.ccxt.okx.OkxAdapter",
    "BITGET": "orders.exchanges.ccxt.bitget.BitgetAdapter",
    "UPBIT": "orders.exchanges.ccxt.upbit.UpbitAdapter",
}
# Every other exchange code is a ccxt id (CcxtAdapter refuses ids ccxt does not know).
DEFAULT_ADAPTER = "orders.exchanges.ccxt.base.CcxtAdapter"


def adapter_class(exchange: str) -> type[ExchangeAdapter]:
    """The adapter class for an ``Account.exchange`` code (or a ccxt id, in any case)."""
    path = ADAPTERS.get(exchange.upper()) or DEFAULT_ADAPTER
    module_name, _, class_name = path.rpartition(".")
    return getattr(import_module(module_name), class_name)


def adapter_for(account: Account) -> ExchangeAdapter:
    """Return the adapter instance for ``account``."""
    return adapter_class(account.exchange)(account)
