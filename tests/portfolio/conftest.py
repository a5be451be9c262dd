"""The venue simulators' fixtures (tests/venues) reused for the portfolio reads."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.venues.conftest import (  # noqa: F401 - fixtures
    binance_account,
    binance_sim,
    bitget_account,
    bitget_sim,
    bybit_account,
    bybit_sim,
    kis_account,
    kis_sim,
    okx_account,
    okx_sim,
    upbit_account,
    upbit_sim,
)

_seconds = itertools.count()


@pytest.fixture
def make_fill(make_strategy: Callable[..., Any]) -> Callable[..., Any]:
    """make_fill(account, "BUY", "1", "100", fee="0.1", fee_currency="USDT") stores a filled
    Order (one webhook each), sent one second after the previous one."""
    from orders.models import Order
    from webhooks.models import WebhookEvent

    strategies: dict[str, Any] = {}
    start = datetime.fromisoformat("2026-11-30T00:00:00+00:00")

    def make(
        account: Any,
        side: str,
        qty: str,
        price: str,
        *,
        symbol: str = "BTC/USDT",
        market_type: str = "SPOT",
        fee: str | None = None,
        fee_currency: str = "",
        status: str = "filled",
        currency: str = "",
    ) -> Any:
        strategy = strategies.get(market_type)
        if strategy is None:
            strategy = strategies[market_type] = make_strategy(
                group_name=f"s-{market_type.lower()}", market_type=market_type, accounts=[account]
            )
        event = WebhookEvent.objects.create(strategy=strategy, outcome="accepted", http_status=202)
        return Order.objects.create(
            webhook=event,
            strategy=strategy,
            account=account,
            sequence=0,
            market_type=market_type,
            symbol=symbol,
            currency=currency,
            side=side,
            order_type="MARKET",
            client_order_id="qt" + uuid.uuid4().hex,
            status=status,
            quantity=Decimal(qty),
            filled_qty=Decimal(qty),
            avg_price=Decimal(price),
            fee=Decimal(fee) if fee is not None else None,
            fee_currency=fee_currency,
            submitted_at=start + timedelta(seconds=next(_seconds)),
        )

    return make
