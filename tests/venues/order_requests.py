"""One builder for the OrderRequests the venue tests send straight to an adapter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orders.exchanges.base import OrderRequest


def order_request(client_order_id: str, market_type: str = "SPOT", **fields: Any) -> OrderRequest:
    """A BTC/USDT request of ``market_type``: a LIMIT buy of 10 % unless ``fields`` say otherwise
    (Decimal fields may be given as int or str)."""
    values: dict[str, Any] = {"symbol": "BTC/USDT", "side": "BUY", "order_type": "LIMIT", "qty_per": 10}
    values.update(fields)
    for name in ("qty_per", "price", "stop_price"):
        if values.get(name) is not None:
            values[name] = Decimal(str(values[name]))
    return OrderRequest(client_order_id=client_order_id, market_type=market_type, **values)
