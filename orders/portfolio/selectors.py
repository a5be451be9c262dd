"""Reads for the account pages and the API: account summaries, recent fills, the equity curve
as JSON. Nothing here calls a venue: summaries come from the cached portfolio."""

from __future__ import annotations

from typing import Any

from orders.models import Order
from orders.portfolio.fills import filled_orders
from orders.portfolio.records import Portfolio
from orders.portfolio.services import equity_curve, portfolio_cached
from prices.records import instrument_for
from quanttrade.vocabulary import CRYPTO_MARKETS, decimal_str
from strategies.models import Account


def connection_state(account: Account) -> dict[str, Any] | None:
    """The account's last connection test (orders.connection: ok, message, when), or None
    when never tested."""
    if account.connection_checked_at is None:
        return None
    return {
        "ok": bool(account.connection_ok),
        "message": account.connection_message,
        "checked_at": account.connection_checked_at.isoformat(),
    }


def account_summary(account: Account, portfolio: Portfolio | None = None) -> dict[str, Any]:
    """One account for ``GET /api/accounts/`` and the accounts page: venue, connection state
    and the cached portfolio's totals (None before the first read)."""
    portfolio = portfolio if portfolio is not None else portfolio_cached(account.pk)
    summary: dict[str, Any] = {
        "id": account.pk,
        "name": account.name,
        "exchange": account.exchange,
        "is_testnet": account.is_testnet,
        "is_active": account.is_active,
        "connection": connection_state(account),
        "portfolio": None,
    }
    if portfolio is not None:
        data = portfolio.to_dict()
        summary["portfolio"] = {
            "refreshed_at": data["refreshed_at"],
            "totals": data["totals"],
            "total_krw": data["total_krw"],
            "unconverted": data["unconverted"],
            "error": data["error"],
            "positions": len(portfolio.positions),
        }
    return summary


def fill_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": str(order.pk),
        "market_type": order.market_type,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "status": order.status,
        "quantity": decimal_str(order.filled_qty),
        "price": decimal_str(order.avg_price),
        "fee": decimal_str(order.fee),
        "fee_currency": order.fee_currency,
        "at": (order.submitted_at or order.created_at).isoformat(),
    }


def recent_fills(account_id: int, limit: int = 100, symbol: str = "") -> list[Order]:
    """The account's newest fills first (at most ``limit``), optionally of one symbol."""
    orders = filled_orders(account_id)
    if symbol:
        orders = orders.filter(symbol__iexact=symbol)
    return list(orders.reverse()[:limit])


def instrument_fills(instrument: str, limit: int = 500) -> list[Order]:
    """Every account's fills of the price-layer ``instrument`` (newest first, at most
    ``limit``): the orders whose own instrument id is that one."""
    symbol = instrument.rpartition(":")[2]  # "BINANCE:BTC/USDT" -> "BTC/USDT"; "005930" stays
    candidates = (
        Order.objects.filter(filled_qty__gt=0, avg_price__isnull=False, symbol__iexact=symbol)
        .select_related("account")
        .order_by("-submitted_at", "-created_at")
    )
    found = []
    for order in candidates[: limit * 4]:
        exchange = order.account.exchange if order.market_type in CRYPTO_MARKETS else ""
        if (
            instrument_for(order.market_type, order.symbol, exchange=exchange, params=order.params)
            == instrument
        ):
            found.append(order)
            if len(found) >= limit:
                break
    return found


def equity_curve_payload(account_id: int) -> dict[str, list[dict[str, str]]]:
    """The daily equity per currency as ``{"USDT": [{"day": "2026-11-30", "equity": "1000"}]}``."""
    return {
        currency: [{"day": day.isoformat(), "equity": decimal_str(equity, "0")} for day, equity in points]
        for currency, points in equity_curve(account_id).items()
    }
