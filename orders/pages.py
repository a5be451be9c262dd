"""Order and webhook-log pages: filtered history with live status, detail views, replay."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from orders.approval import (
    ApprovalError,
    ApprovalGroup,
    approval_decide,
    approval_group,
    approval_queue,
    order_estimate,
)
from orders.connection import account_check
from orders.exchanges.base import VenueError
from orders.models import Order
from orders.selectors import IN_PROGRESS, LATENCY_MAX_HOURS, latency_summary, orders_in_progress_count
from orders.services import OrderNotOpenError, account_cancel_all, order_cancel
from orders.trail import trail_rows
from prices.pages import live_context
from quanttrade.auth import staff_required
from quanttrade.vocabulary import LIVE_STATUSES, OrderStatus, decimal_str
from strategies.models import Account, Strategy

ORDERS_PER_PAGE = 50
EVENTS_PER_PAGE = 25


def plain_decimal(value: Decimal | None) -> str:
    """A Decimal as every page shows numbers: without its storage padding (0.0100000000 ->
    0.01), never in exponent form, thousands grouped with commas (65,000.5; the pages' script
    formats live updates the same way)."""
    text = decimal_str(value, "–")
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, dot, fraction = digits.partition(".")
    if not whole.isdigit():
        return text
    return f"{sign}{int(whole):,}{dot}{fraction}"


def decorate(order: Order) -> Order:
    """Attach the display forms of the order's quantities (templates cannot normalize)."""
    order.quantity_display = plain_decimal(order.quantity)  # type: ignore[attr-defined]
    order.filled_display = plain_decimal(order.filled_qty)  # type: ignore[attr-defined]
    order.avg_price_display = plain_decimal(order.avg_price)  # type: ignore[attr-defined]
    order.qty_per_display = plain_decimal(order.qty_per)  # type: ignore[attr-defined]
    order.price_display = plain_decimal(order.price)  # type: ignore[attr-defined]
    order.stop_price_display = plain_decimal(order.stop_price)  # type: ignore[attr-defined]
    # Not final yet: the page carries the cancel button, shown while the order rests.
    order.may_rest = order.status in IN_PROGRESS  # type: ignore[attr-defined]
    return order


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def order_filters(params: QueryDict) -> dict[str, Any]:
    """The valid filters in a query string (invalid values are ignored, not errors)."""
    statuses = set(OrderStatus.values)
    return {
        "strategy": int_or_none(params.get("strategy")),
        "account": int_or_none(params.get("account")),
        "status": params.get("status") if params.get("status") in statuses else None,
        "date_from": _parse_date(params.get("from")),
        "date_to": _parse_date(params.get("to")),
    }


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def filtered_orders(filters: dict[str, Any]) -> QuerySet[Order]:
    """Orders matching ``filters``, newest first; the time range is inclusive, in local days."""
    orders = Order.objects.select_related("strategy", "account")
    if filters["strategy"]:
        orders = orders.filter(strategy_id=filters["strategy"])
    if filters["account"]:
        orders = orders.filter(account_id=filters["account"])
    if filters["status"]:
        orders = orders.filter(status=filters["status"])
    if filters["date_from"]:
        orders = orders.filter(created_at__gte=_day_start(filters["date_from"]))
    if filters["date_to"]:
        orders = orders.filter(created_at__lt=_day_start(filters["date_to"] + timedelta(days=1)))
    return orders.order_by("-created_at", "account__name", "sequence")


def paginate(request: HttpRequest, items: QuerySet[Any], per_page: int) -> tuple[Page, str]:
    """The requested page and the query string (without ``page``) for the pager links."""
    page = Paginator(items, per_page).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


@staff_required
def order_list(request: HttpRequest) -> HttpResponse:
    filters = order_filters(request.GET)
    page, query = paginate(request, filtered_orders(filters), ORDERS_PER_PAGE)
    page.object_list = [decorate(order) for order in page.object_list]
    context = {
        "page": page,
        "query": query,
        "filters": filters,
        "raw": request.GET,
        "strategies": Strategy.objects.order_by("group_name"),
        "accounts": Account.objects.order_by("name"),
        "statuses": OrderStatus.choices,
        "status_labels": dict(OrderStatus.choices),
        **live_context(),
    }
    return render(request, "pages/order_list.html", context)


@staff_required
def order_row(request: HttpRequest, pk: Any) -> HttpResponse:
    """One order as a table row, if it matches the list's filters (204 otherwise).

    The order list fetches this when the `orders` topic announces an order it does not show yet.
    """
    order = filtered_orders(order_filters(request.GET)).filter(pk=pk).first()
    if order is None:
        return HttpResponse(status=204)
    query = request.GET.urlencode()
    back = reverse("order-list") + (f"?{query}" if query else "")
    return render(request, "pages/_order_row.html", {"order": decorate(order), "next": back})


@staff_required
def order_count(request: HttpRequest) -> JsonResponse:
    """The header's count of orders in progress (re-read when the `orders` topic moves)."""
    return JsonResponse({"in_progress": orders_in_progress_count()})


@staff_required
def order_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    order = get_object_or_404(
        Order.objects.select_related("strategy", "account", "webhook", "approved_by"), pk=pk
    )
    siblings = (
        order.webhook.orders.select_related("account")
        .exclude(pk=order.pk)
        .order_by("account__name", "sequence")
    )
    return render(
        request,
        "pages/order_detail.html",
        {
            "order": decorate(order),
            "siblings": [decorate(o) for o in siblings],
            "params_json": json.dumps(order.params, ensure_ascii=False, indent=2),
            "trail": trail_rows(order.trail),
            "status_labels": dict(OrderStatus.choices),
            **live_context(),
        },
    )


@require_POST
@staff_required
def account_connection_check(request: HttpRequest, pk: int) -> HttpResponse:
    """The account page's "Test connection" button: run the test, then back to ``next`` (the
    page the button was on; the account's admin page by default) with the result as a message."""
    account = get_object_or_404(Account, pk=pk)
    result = account_check(account)
    text = _("Connection test of %(account)s: %(message)s") % {
        "account": account.name,
        "message": result.message,
    }
    if result.ok:
        messages.success(request, text)
    else:
        messages.error(request, text)
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:strategies_account_change", args=[account.pk])
    return redirect(target)


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to the page the action came from (``next``, same site only), else ``fallback``."""
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = fallback
    return HttpResponseRedirect(target)


@require_POST
@staff_required
def order_cancel_view(request: HttpRequest, pk: Any) -> HttpResponse:
    """Cancel one resting order at its venue, once confirmed in its dialog (confirm=1)."""
    order = get_object_or_404(Order.objects.select_related("account"), pk=pk)
    back = _back(request, reverse("order-detail", args=[order.pk]))
    if request.POST.get("confirm") != "1":
        messages.error(request, _("Nothing was cancelled: confirm the cancel in its dialog first."))
        return back
    try:
        order = order_cancel(order)
    except (OrderNotOpenError, VenueError) as error:
        messages.error(request, _("The order was not cancelled: %(error)s") % {"error": error.message})
        return back
    if order.status == OrderStatus.CANCELLED:
        messages.success(request, _("Order cancelled at %(venue)s.") % {"venue": order.account.exchange})
    elif order.status in LIVE_STATUSES:  # accepted, not yet applied: no second click needed
        messages.warning(
            request,
            _("Cancel requested at %(venue)s; the order is still live there and is followed until it ends.")
            % {"venue": order.account.exchange},
        )
    else:
        messages.warning(
            request,
            _("The order was not cancelled: it is %(status)s at the venue.")
            % {"status": order.get_status_display()},
        )
    return back


@require_POST
@staff_required
def account_cancel_all_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Cancel every open order of the account's symbols at its venue, once confirmed."""
    account = get_object_or_404(Account, pk=pk)
    back = _back(request, f"{reverse('order-list')}?account={account.pk}")
    if request.POST.get("confirm") != "1":
        messages.error(request, _("Nothing was cancelled: confirm the cancel in its dialog first."))
        return back
    try:
        report = account_cancel_all(account)
    except VenueError as error:
        messages.error(request, _("Nothing was cancelled: %(error)s") % {"error": error.message})
        return back
    if report.failures:
        messages.error(
            request,
            _("Cancelled %(count)d open orders; not cancelled: %(failures)s")
            % {"count": report.cancelled, "failures": "; ".join(report.failures)},
        )
    elif report.cancelled:
        messages.success(request, _("Cancelled %(count)d open orders") % {"count": report.cancelled})
    else:
        messages.info(request, _("No open orders to cancel"))
    return back


def account_open_orders(account: Account) -> list[Order]:
    """The account's resting Orders, newest first, ready for ``_account_open_orders.html``."""
    orders = (
        Order.objects.filter(account=account, status__in=LIVE_STATUSES)
        .select_related("strategy", "account")
        .order_by("-created_at")
    )
    return [decorate(order) for order in orders]


# --- the approval queue (semi-automatic mode) ---------------------------------------------


def _decorate_group(group: ApprovalGroup) -> ApprovalGroup:
    """Display forms of a group's orders: qty_per, the estimated quantity and value (stocks and
    futures/options only; crypto sizes from the venue balance at sending time)."""
    last = group.last_price.price if group.last_price else None
    for order in group.orders:
        decorate(order)
        quantity, value = order_estimate(order, last)
        order.estimate_qty_display = plain_decimal(quantity)  # type: ignore[attr-defined]
        order.estimate_value_display = plain_decimal(value)  # type: ignore[attr-defined]
    group.last_price_display = plain_decimal(last)  # type: ignore[attr-defined]
    group.payload_json = json.dumps(  # type: ignore[attr-defined]
        group.orders[0].webhook.payload, ensure_ascii=False, indent=2
    )
    return group


def _approval_context() -> dict[str, Any]:
    return {"status_labels": dict(OrderStatus.choices), **live_context()}


@staff_required
def approval_list(request: HttpRequest) -> HttpResponse:
    groups = [_decorate_group(group) for group in approval_queue()]
    return render(request, "pages/approval_list.html", {"groups": groups, **_approval_context()})


@staff_required
def approval_card(request: HttpRequest, webhook_id: UUID, account_id: int) -> HttpResponse:
    """One waiting group as the queue shows it (204 when nothing of it waits any more): the
    queue page fetches it when the `orders` topic announces a group it does not show yet."""
    group = approval_group(webhook_id, account_id)
    if group is None:
        return HttpResponse(status=204)
    return render(
        request, "pages/_approval_card.html", {"group": _decorate_group(group), **_approval_context()}
    )


@require_POST
@staff_required
def approval_decide_view(
    request: HttpRequest, webhook_id: UUID, account_id: int, decision: str
) -> HttpResponse:
    """Approve (send) or reject (drop) one webhook's waiting orders for one account. Approval
    needs the confirmation dialog (``confirm=1``): it is what sends the orders."""
    if decision not in ("approve", "reject"):
        raise Http404
    approve = decision == "approve"
    if approve and request.POST.get("confirm") != "1":
        messages.error(request, _("Nothing was sent: confirm the approval in its dialog first."))
        return redirect("approval-list")
    try:
        count = approval_decide(webhook_id, account_id, request.user, approve=approve)
    except ApprovalError as error:
        messages.error(request, error.message)
        return redirect("approval-list")
    if approve:
        messages.success(request, _("Approved: %(count)d order(s) sent to the venue.") % {"count": count})
    else:
        messages.success(request, _("Rejected: %(count)d order(s) dropped, nothing sent.") % {"count": count})
    return redirect("approval-list")


LATENCY_WINDOWS = (1, 6, 24, 72, 168)


@staff_required
def latency_page(request: HttpRequest) -> HttpResponse:
    """p50/p99 per venue and stage of the latency trail (received -> each stage)."""
    hours = int_or_none(request.GET.get("hours")) or 24
    hours = min(max(hours, 1), LATENCY_MAX_HOURS)
    summary = latency_summary(hours)
    return render(
        request,
        "pages/latency.html",
        {"summary": summary, "hours": hours, "windows": LATENCY_WINDOWS, **live_context()},
    )
