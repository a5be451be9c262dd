"""``{% dashboard_positions %}``: every account's open positions from the last portfolio reads,
for the dashboard (a template tag, so the price layer's page needs no import of orders)."""

from __future__ import annotations

from typing import Any

from django import template

from orders.portfolio.services import portfolio_cached
from strategies.models import Account

register = template.Library()


@register.inclusion_tag("pages/_dashboard_positions.html")
def dashboard_positions() -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for account in Account.objects.filter(is_active=True).order_by("name"):
        portfolio = portfolio_cached(account.pk)
        if portfolio is None:
            continue
        if portfolio.errors:
            errors.append({"account": account, "error": portfolio.error})
        data = portfolio.to_dict()
        rows.extend({"account": account, **position} for position in data["positions"])
    return {"rows": rows, "errors": errors}


@register.filter
def grouped(value: Any) -> str:
    """A decimal string (or Decimal) with thousands separators and every digit kept:
    "1234567.891" -> "1,234,567.891"; None or "" -> "–"."""
    if value is None or value == "":
        return "–"
    text = str(value)
    negative = text.startswith("-")
    whole, dot, fraction = text.lstrip("-").partition(".")
    if not whole.isdigit():
        return text
    return f"{'-' if negative else ''}{int(whole):,}{dot}{fraction}"
