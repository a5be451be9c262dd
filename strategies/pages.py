"""Strategy pages: list, detail (accounts, webhook URL, samples), token and test-signal actions."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from prices.pages import live_context
from quanttrade.auth import staff_required
from quanttrade.vocabulary import MarketType, decimal_str
from strategies.addressing import sample_payload, tradingview_template, webhook_url
from strategies.models import Account, Strategy, StrategyAccount, link_problem

TOKEN_PLACEHOLDER = "<token>"
# Plausible limit prices for the LIMIT sample of each market (the sender edits them anyway).
SAMPLE_LIMIT_PRICES: dict[str, Decimal] = {
    MarketType.SPOT: Decimal("60000"),
    MarketType.FUTURES: Decimal("60000"),
    MarketType.DOMESTIC_STOCK: Decimal("70000"),
    MarketType.OVERSEAS_STOCK: Decimal("190.50"),
    MarketType.DOMESTIC_FUTUREOPTION: Decimal("350.25"),
    MarketType.OVERSEAS_FUTUREOPTION: Decimal("5000.25"),
}


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, indent=2, default=str)


def strategy_samples(strategy: Strategy, *, token: str = TOKEN_PLACEHOLDER) -> list[dict[str, str]]:
    """Copyable webhook bodies for the strategy's market: market, limit, cancel-all, TradingView."""
    market = sample_payload(strategy, token=token)
    limit = {
        **market,
        "order_type": "LIMIT",
        "price": str(SAMPLE_LIMIT_PRICES[MarketType(strategy.market_type)]),
    }
    cancel = {
        k: v
        for k, v in market.items()
        if k in ("group_name", "token", "symbol", "currency", "params", "timestamp")
    }
    cancel["order_type"] = "CANCEL_ALL_ORDER"
    tradingview = tradingview_template(strategy, token=token)
    # The same alert as a limit order at the bar's close ({{close}} is filled in by TradingView).
    tradingview_limit = {**json.loads(tradingview), "order_type": "LIMIT", "price": "{{close}}"}
    return [
        {"key": "market", "title": _("Market order"), "body": _dumps(market)},
        {"key": "limit", "title": _("Limit order"), "body": _dumps(limit)},
        {"key": "cancel", "title": _("Cancel all open orders"), "body": _dumps(cancel)},
        {"key": "tradingview", "title": _("TradingView alert message"), "body": tradingview},
        {
            "key": "tradingview-limit",
            "title": _("TradingView alert message (limit at the close)"),
            "body": _dumps(tradingview_limit),
        },
    ]


LIMIT_FIELDS = (
    "max_order_notional",
    "max_position_notional",
    "max_open_orders",
    "max_orders_per_minute",
    "max_daily_loss",
    "allowed_symbols",
    "trading_hours",
)


class StrategyLimitsForm(forms.ModelForm):
    class Meta:
        model = Strategy
        fields = [*LIMIT_FIELDS, "max_signal_age_seconds"]


class AccountLimitsForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = [*LIMIT_FIELDS, "market_timezone", "loss_reset_time"]


def limits_form(holder: Strategy | Account, data: Any = None) -> forms.ModelForm:
    form_class = StrategyLimitsForm if isinstance(holder, Strategy) else AccountLimitsForm
    return form_class(data, instance=holder, prefix=f"{type(holder).__name__.lower()}-{holder.pk}")


def limit_rows(holder: Strategy | Account) -> list[dict[str, Any]]:
    """The risk limits a strategy or an account sets (label, value), for the pages."""
    rows = []
    for name in LIMIT_FIELDS:
        value = getattr(holder, name)
        if value in (None, ""):
            continue
        if isinstance(value, Decimal):
            value = decimal_str(value)
        field = holder._meta.get_field(name)
        rows.append({"label": getattr(field, "verbose_name", name), "value": value})
    if isinstance(holder, Strategy) and holder.max_signal_age_seconds is not None:
        rows.append({"label": _("max signal age (seconds)"), "value": holder.max_signal_age_seconds})
    if isinstance(holder, Account) and holder.max_daily_loss is not None:
        rows.append({"label": _("daily loss reset time"), "value": holder.loss_reset_time.strftime("%H:%M")})
    return rows


def receiving_accounts(links: list[StrategyAccount]) -> list[Account]:
    """The accounts a signal to the strategy places orders on (active link, active account)."""
    return [link.account for link in links if link.is_active and link.account.is_active]


@staff_required
def strategy_list(request: HttpRequest) -> HttpResponse:
    strategies = Strategy.objects.annotate(
        account_count=Count("strategy_accounts", distinct=True),
        active_account_count=Count(
            "strategy_accounts",
            filter=Q(strategy_accounts__is_active=True, strategy_accounts__account__is_active=True),
            distinct=True,
        ),
    )
    return render(
        request,
        "pages/strategy_list.html",
        {"strategies": strategies, "webhook_url": webhook_url(request), **live_context()},
    )


def _detail_response(request: HttpRequest, strategy: Strategy, *, revealed_token: str | None) -> HttpResponse:
    links = list(strategy.strategy_accounts.select_related("account").order_by("account__name"))
    receivers = receiving_accounts(links)
    context = {
        "strategy": strategy,
        "links": links,
        "receivers": receivers,
        "receivers_live": any(not account.is_paper for account in receivers),
        "test_payload": _dumps(sample_payload(strategy, token=TOKEN_PLACEHOLDER)),
        "webhook_url": webhook_url(request),
        "samples": strategy_samples(strategy, token=revealed_token or TOKEN_PLACEHOLDER),
        "revealed_token": revealed_token,
        "recent_events": strategy.webhook_events.order_by("-received_at")[:10],
        "linkable_accounts": [
            (account, link_problem(account.exchange, strategy.market_type))
            for account in Account.objects.exclude(strategy_accounts__strategy=strategy).order_by("name")
        ],
        "strategy_limits": limit_rows(strategy),
        "strategy_limits_form": limits_form(strategy),
        "account_limits": [
            (link.account, limit_rows(link.account), limits_form(link.account)) for link in links
        ],
        **live_context(),
    }
    response = render(request, "pages/strategy_detail.html", context)
    if revealed_token:
        response["Cache-Control"] = "no-store"
    return response


@staff_required
def strategy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_response(request, get_object_or_404(Strategy, pk=pk), revealed_token=None)


@require_POST
@staff_required
def limits_edit(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Save a strategy's or an account's risk limits from the strategy page's form."""
    holder: Strategy | Account = (
        get_object_or_404(Strategy, pk=pk) if kind == "strategy" else get_object_or_404(Account, pk=pk)
    )
    form = limits_form(holder, request.POST)
    if form.is_valid():
        form.save()
        messages.success(request, _("Risk limits saved: %(target)s") % {"target": holder})
    else:
        problems = "; ".join(
            f"{form.fields[name].label if name in form.fields else name}: {' '.join(str(error) for error in errors)}"
            for name, errors in form.errors.items()
        )
        messages.error(request, _("Risk limits not saved: %(problems)s") % {"problems": problems})
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("strategy-list")


@never_cache
@require_POST
@staff_required
def strategy_token(request: HttpRequest, pk: int) -> HttpResponse:
    """Reveal (action=reveal) or regenerate (action=regenerate) the webhook token; staff only.

    A POST keeps the token out of URLs, browser history and access logs.
    """
    strategy = get_object_or_404(Strategy, pk=pk)
    if request.POST.get("action") == "regenerate":
        strategy.regenerate_token()
        messages.warning(
            request, _("A new token was generated. Update every alert that sends to this strategy.")
        )
    return _detail_response(request, strategy, revealed_token=strategy.token)


@require_POST
@staff_required
def strategy_link_account(request: HttpRequest, pk: int) -> HttpResponse:
    """Link an existing account to the strategy, with the admin's checks (StrategyAccount.clean:
    an account that cannot trade the strategy's market is refused, and so is a second link)."""
    strategy = get_object_or_404(Strategy, pk=pk)
    account_id = request.POST.get("account", "")
    account = Account.objects.filter(pk=int(account_id)).first() if account_id.isdigit() else None
    if account is None:
        messages.error(request, _("Choose an account to link."))
        return redirect("strategy-detail", pk=strategy.pk)
    link = StrategyAccount(strategy=strategy, account=account)
    try:
        link.full_clean()
    except ValidationError as e:
        for problem in e.messages:
            messages.error(
                request,
                _("%(account)s was not linked: %(problem)s") % {"account": account.name, "problem": problem},
            )
        return redirect("strategy-detail", pk=strategy.pk)
    link.save()
    messages.success(
        request,
        _("%(account)s is linked: its orders follow this strategy's signals.") % {"account": account.name},
    )
    return redirect("strategy-detail", pk=strategy.pk)
