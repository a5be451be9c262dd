"""Exchange adapters: one interface, one implementation per venue family.

The registry maps ``Account.exchange`` to a dotted path, imported on first use, so a venue's
dependencies load only when an account uses it. Anything not listed is treated as a ccxt id.
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
}
# Every other exchange code is a ccxt id (CcxtAdapter refuses ids ccxt does not know).
DEFAULT_ADAPTER = "orders.exchanges.ccxt_adapter.CcxtAdapter"


def adapter_class(exchange: str) -> type[ExchangeAdapter]:
    path = ADAPTERS.get(exchange.upper()) or DEFAULT_ADAPTER
    module_name, _, class_name = path.rpartition(".")
    return getattr(import_module(module_name), class_name)


def adapter_for(account: Account) -> ExchangeAdapter:
    """Return the adapter instance for ``account``."""
    return adapter_class(account.exchange)(account)
