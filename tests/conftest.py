"""Shared fixtures. Tests run on SQLite unless DATABASE_URL / REDIS_URL point at real servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache

from strategies.models import Account, Strategy, StrategyAccount


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_account(db: None) -> Callable[..., Account]:
    def make(name: str = "paper-1", exchange: str = "PAPER", balances: dict[str, Any] | None = None, **kw: Any) -> Account:
        from orders.models import PaperBalance

        account = Account.objects.create(name=name, exchange=exchange, **kw)
        for asset, amount in (balances or {}).items():
            PaperBalance.objects.create(account=account, asset=asset, free=Decimal(str(amount)))
        return account

    return make


@pytest.fixture
def make_strategy(db: None, make_account: Callable[..., Account]) -> Callable[..., Strategy]:
    def make(
        group_name: str = "my_strategy",
        market_type: str = "SPOT",
        token: str = "test-token",
        accounts: list[Account] | None = None,
        **kw: Any,
    ) -> Strategy:
        strategy = Strategy.objects.create(group_name=group_name, market_type=market_type, token=token, **kw)
        if accounts is None:
            accounts = [make_account(name=f"{group_name}-paper")]
        for account in accounts:
            StrategyAccount.objects.create(strategy=strategy, account=account)
        return strategy

    return make
