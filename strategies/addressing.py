"""How a strategy is addressed by a signal source: the webhook URL, a sample body per market
type and the TradingView alert template (shown in the admin, the pages and seed_demo)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from quanttrade.vocabulary import MarketType
from strategies.models import Strategy

_CRYPTO_SAMPLE: dict[str, Any] = {
    "symbol": "BTC/USDT",
    "currency": "USDT",
    "order_type": "MARKET",
    "side": "buy",
    "qty_per": 10,
}
SAMPLE_ORDERS: dict[str, dict[str, Any]] = {
    MarketType.SPOT: _CRYPTO_SAMPLE,
    MarketType.FUTURES: _CRYPTO_SAMPLE,
    MarketType.DOMESTIC_STOCK: {"symbol": "005930", "order_type": "MARKET", "side": "buy", "qty_per": 1},
    MarketType.OVERSEAS_STOCK: {
        "symbol": "AAPL",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 1,
        "params": {"exchange_code": "NASD", "currency": "USD"},
    },
    MarketType.DOMESTIC_FUTUREOPTION: {
        "symbol": "101TC000",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 1,
        "params": {"position_action": "OPEN"},
    },
    MarketType.OVERSEAS_FUTUREOPTION: {
        "symbol": "ESZ4",
        "order_type": "MARKET",
        "side": "buy",
        "qty_per": 1,
        "params": {"exchange_code": "CME", "contract_month": "Z4", "currency": "USD"},
    },
}


def signal_timestamp(moment: datetime | None = None) -> str:
    """A webhook ``timestamp`` (ISO 8601, UTC, whole seconds) for ``moment`` (default: now)."""
    moment = (moment or timezone.now()).astimezone(UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def sample_payload(
    strategy: Strategy, *, token: str = "<token>", now: datetime | None = None
) -> dict[str, Any]:
    """A ready-to-send webhook body for the strategy's market type, stamped with ``now`` (the
    optional ``timestamp`` the stale-signal guard reads; default: the current time)."""
    body: dict[str, Any] = {"group_name": strategy.group_name, "token": token}
    body.update(copy.deepcopy(SAMPLE_ORDERS[MarketType(strategy.market_type)]))
    body["timestamp"] = signal_timestamp(now)
    return body


def tradingview_template(strategy: Strategy, *, token: str = "<token>") -> str:
    """The alert message for TradingView, using its placeholders for side, ticker and size."""
    body = sample_payload(strategy, token=token)
    body["side"] = "{{strategy.order.action}}"
    if strategy.market_type not in (MarketType.SPOT, MarketType.FUTURES):
        # Securities: qty_per is a quantity, so the strategy's order size maps onto it, and
        # TradingView's ticker is the broker's code. Crypto keeps a fixed percentage of capital
        # and the COIN/CURRENCY symbol (TradingView's {{ticker}} would be BTCUSDT).
        body["qty_per"] = "{{strategy.order.contracts}}"
        body["symbol"] = "{{ticker}}"
    body["timestamp"] = "{{timenow}}"  # when the alert fired: a late delivery can be refused
    return json.dumps(body, ensure_ascii=False, indent=2)


def public_base_url(override: str = "") -> str:
    """Where senders reach this server: ``override``, else PUBLIC_BASE_URL, else the local default."""
    return (override or settings.PUBLIC_BASE_URL or "http://127.0.0.1:8000").rstrip("/")


def webhook_url(request: HttpRequest | None = None) -> str:
    path = reverse("webhook")
    if request is not None:
        return request.build_absolute_uri(path)
    return public_base_url() + path
