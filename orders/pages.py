"""Order and webhook-log pages: filtered history with live status, detail views, replay."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from orders.models import Order, WebhookEvent, WebhookOutcome
from prices.pages import live_context
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account, Strategy
from strategies.pages import staff_required
from strategies.services import webhook_replay
from strategies.validation import WebhookError

ORDERS_PER_PAGE = 50
EVENTS_PER_PAGE = 25


def plain_decimal(value: Decimal | None) -> str:
    """A Decimal without its storage padding (0.0100000000 -> 0.01), never in exponent form."""
    if value is None:
        return "–"
    return format(value.normalize(), "f")


def decorate(order: Order) -> Order:
    """Attach the display forms of the order's quantities (templates cannot normalize)."""
    order.quantity_display = plain_decimal(order.quantity)  # type: ignore[attr-defined]
    order.filled_display = plain_decimal(order.filled_qty)  # type: ignore[attr-defined]
    order.avg_price_display = plain_decimal(order.avg_price)  # type: ignore[attr-defined]
    order.qty_per_display = plain_decimal(order.qty_per)  # type: ignore[attr-defined]
    order.price_display = plain_decimal(order.price)  # type: ignore[attr-defined]
    order.stop_price_display = plain_decimal(order.stop_price)  # type: ignore[attr-defined]
    return order


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def order_filters(params: QueryDict) -> dict[str, Any]:
    """The valid filters in a query string (invalid values are ignored, not errors)."""
    statuses = set(OrderStatus.values)
    return {
        "strategy": _int_or_none(params.get("strategy")),
        "account": _int_or_none(params.get("account")),
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


def _page(request: HttpRequest, items: QuerySet[Any], per_page: int) -> tuple[Page, str]:
    """The requested page and the query string (without ``page``) for the pager links."""
    page = Paginator(items, per_page).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    filters = order_filters(request.GET)
    page, query = _page(request, filtered_orders(filters), ORDERS_PER_PAGE)
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


@login_required
def order_row(request: HttpRequest, pk: Any) -> HttpResponse:
    """One order as a table row, if it matches the list's filters (204 otherwise).

    The order list fetches this when the `orders` topic announces an order it does not show yet.
    """
    order = filtered_orders(order_filters(request.GET)).filter(pk=pk).first()
    if order is None:
        return HttpResponse(status=204)
    return render(request, "pages/_order_row.html", {"order": decorate(order)})


@login_required
def order_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("strategy", "account", "webhook"), pk=pk)
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
            "status_labels": dict(OrderStatus.choices),
            **live_context(),
        },
    )


def _events_with_orders() -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.select_related("strategy", "replay_of").prefetch_related(
        Prefetch(
            "orders", queryset=Order.objects.select_related("account").order_by("account__name", "sequence")
        )
    )


def _decorate_event(event: WebhookEvent) -> WebhookEvent:
    event.order_rows = [decorate(order) for order in event.orders.all()]  # type: ignore[attr-defined]
    event.payload_json = event_payload_json(event)  # type: ignore[attr-defined]
    return event


@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    events = _events_with_orders().order_by("-received_at")
    errors_only = request.GET.get("errors") == "1"
    if errors_only:
        events = events.filter(outcome=WebhookOutcome.REJECTED)
    strategy = _int_or_none(request.GET.get("strategy"))
    if strategy:
        events = events.filter(strategy_id=strategy)
    page, query = _page(request, events, EVENTS_PER_PAGE)
    page.object_list = [_decorate_event(event) for event in page.object_list]
    context = {
        "page": page,
        "query": query,
        "errors_only": errors_only,
        "strategy": strategy,
        "strategies": Strategy.objects.order_by("group_name"),
        "status_labels": dict(OrderStatus.choices),
        **live_context(),
    }
    return render(request, "pages/webhook_list.html", context)


def event_payload_json(event: WebhookEvent) -> str:
    """The stored (token-redacted) payload, pretty-printed; the raw body when it was not JSON."""
    if event.payload is not None:
        return json.dumps(event.payload, ensure_ascii=False, indent=2)
    return event.raw_body


@login_required
def webhook_detail(request: HttpRequest, pk: Any) -> HttpResponse:
    event = _decorate_event(get_object_or_404(_events_with_orders(), pk=pk))
    context = {
        "event": event,
        "response_json": json.dumps(event.response, ensure_ascii=False, indent=2) if event.response else "",
        "replays": event.replays.order_by("-received_at"),
        "status_labels": dict(OrderStatus.choices),
        **live_context(),
    }
    return render(request, "pages/webhook_detail.html", context)


@require_POST
@staff_required
def webhook_replay_view(request: HttpRequest, pk: Any) -> HttpResponse:
    """Send a stored event again through the real intake as a new event (staff only)."""
    event = get_object_or_404(WebhookEvent.objects.select_related("strategy"), pk=pk)
    try:
        result = webhook_replay(event)
    except WebhookError as error:
        messages.error(request, error.message)
        return redirect("webhook-detail", pk=event.pk)
    if result.event_id is None:
        messages.error(
            request, _("The replay was not recorded (HTTP %(status)s).") % {"status": result.status}
        )
        return redirect("webhook-detail", pk=event.pk)
    if result.status < 400:
        messages.success(request, _("Replayed as a new event (HTTP %(status)s).") % {"status": result.status})
    else:
        messages.error(
            request,
            _("The replay was rejected (HTTP %(status)s): %(error)s")
            % {"status": result.status, "error": result.body.get("error", "")},
        )
    return redirect("webhook-detail", pk=result.event_id)
