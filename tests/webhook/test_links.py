"""Linking an account to a strategy: the admin refuses links that could never trade."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from strategies.models import StrategyAccount


@pytest.mark.parametrize(
    ("exchange", "market_type", "message"),
    [
        ("KIS", "SPOT", "한투 계좌는 주식과 선물옵션만 거래합니다 (크립토 현물 불가)"),
        ("BINANCE", "DOMESTIC_STOCK", "암호화폐 거래소 계좌로는 국내주식을(를) 거래할 수 없습니다"),
        ("UPBIT", "FUTURES", "업비트에는 선물 시장이 없습니다"),
    ],
)
def test_a_link_that_cannot_trade_is_refused(
    make_strategy: Any, make_account: Any, exchange: str, market_type: str, message: str
) -> None:
    strategy = make_strategy("s", market_type=market_type, accounts=[])
    link = StrategyAccount(strategy=strategy, account=make_account(name="a", exchange=exchange))

    with pytest.raises(ValidationError) as caught:
        link.full_clean()

    assert caught.value.message_dict == {"account": [message]}


@pytest.mark.parametrize(
    ("exchange", "market_type"),
    [
        ("PAPER", "OVERSEAS_FUTUREOPTION"),
        ("PAPER", "SPOT"),
        ("KIS", "DOMESTIC_STOCK"),
        ("KIS", "OVERSEAS_FUTUREOPTION"),
        ("BINANCE", "FUTURES"),
        ("UPBIT", "SPOT"),
        ("kraken", "SPOT"),
    ],
)
def test_links_that_can_trade_pass(
    make_strategy: Any, make_account: Any, exchange: str, market_type: str
) -> None:
    strategy = make_strategy("s", market_type=market_type, accounts=[])
    StrategyAccount(strategy=strategy, account=make_account(name="a", exchange=exchange)).full_clean()


def test_the_admin_shows_the_refusal_on_the_strategy_form(
    admin_client: Client, make_strategy: Any, make_account: Any
) -> None:
    strategy = make_strategy("crypto", accounts=[])
    kis = make_account(name="kis", exchange="KIS")
    form = {
        "group_name": "crypto",
        "description": "",
        "market_type": "SPOT",
        "is_active": "on",
        "strategy_accounts-TOTAL_FORMS": "1",
        "strategy_accounts-INITIAL_FORMS": "0",
        "strategy_accounts-MIN_NUM_FORMS": "0",
        "strategy_accounts-MAX_NUM_FORMS": "1000",
        "strategy_accounts-0-account": str(kis.pk),
        "strategy_accounts-0-is_active": "on",
    }

    response = admin_client.post(f"/admin/strategies/strategy/{strategy.pk}/change/", form)

    assert response.status_code == 200  # the form again, with the error
    assert "한투 계좌는 주식과 선물옵션만 거래합니다" in response.content.decode()
    assert not StrategyAccount.objects.filter(strategy=strategy).exists()
