"""Account pages: every account with its venue, connection state, equity and day PnL
(``/accounts/``), and one account's balances, positions with live PnL, open orders, recent
fills and equity curve (``/accounts/<id>/``). Both follow the staff ``portfolio`` /ws topic;
positions are marked again on every ``price:<instrument>`` tick in the browser."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from orders.pages import account_open_orders
from orders.portfolio.selectors import (
    account_summary,
    connection_state,
    equity_curve_payload,
    fill_payload,
    recent_fills,
)
from orders.portfolio.services import portfolio_get
from prices.pages import live_context
from quanttrade.auth import staff_required
from strategies.models import Account
from strategies.pages import limit_rows, limits_form

RECENT_FILLS = 50


@staff_required
def account_list(request: HttpRequest) -> HttpResponse:
    """Accounts with their last portfolio read (no venue is called to draw the page)."""
    summaries = [account_summary(account) for account in Account.objects.order_by("name")]
    return render(request, "pages/account_list.html", {"summaries": summaries, **live_context()})


@staff_required
def account_detail(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=pk)
    portfolio = portfolio_get(account)  # the last read; read now when there is none
    open_orders = account_open_orders(account)
    return render(
        request,
        "pages/account_detail.html",
        {
            "account": account,
            "connection": connection_state(account),
            "portfolio": portfolio,
            "portfolio_data": portfolio.to_dict(),
            "equity_curve": equity_curve_payload(account.pk),
            "open_orders": open_orders,
            "limit_rows": limit_rows(account),
            "limits_form": limits_form(account),
            "fills": [fill_payload(order) for order in recent_fills(account.pk, RECENT_FILLS)],
            **live_context(),
        },
    )
