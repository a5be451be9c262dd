"""Upbit spot (KRW, BTC and USDT markets)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from orders.exchanges.base import OrderResult
from orders.exchanges.ccxt.base import CcxtAdapter, order_result


class UpbitAdapter(CcxtAdapter):
    """Upbit: a published minimum order value, orders looked up by ``identifier``."""

    display_name = "Upbit"
    # Upbit's markets carry no minimum in ccxt: its published rule per quote currency.
    min_cost = {"KRW": Decimal("5000"), "BTC": Decimal("0.00005"), "USDT": Decimal("0.5")}

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """GET /v1/order by ``identifier`` (our client order id), which ccxt has no param for."""
        raw = client.privateGetOrder({"identifier": cid})
        return order_result(client.parse_order(raw, market))
