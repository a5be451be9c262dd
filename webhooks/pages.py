"""Webhook pages: the webhook log, one event with its orders, replay, and a strategy's test
signal (all sent through the real intake)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from orders.models import Order
from orders.pages import EVENTS_PER_PAGE, decorate, int_or_none, paginate
from prices.pages import live_context
from quanttrade.auth import staff_required
from quanttrade.vocabulary import OrderStatus
from strategies.models import Account, Strategy, StrategyAccount
from strategies.pages import receiving_accounts
from webhooks.kill_switch import account_flatten, kill_switch_pause, kill_switch_resume, strategy_flatten
from webhooks.models import WebhookEvent, WebhookOutcome
from webhooks.services import webhook_replay, webhook_test_signal
from webhooks.validation import WebhookError

FAILED_STATUSES = frozenset({OrderStatus.FAILED, OrderStatus.REJECTED})


def _events_with_orders() -> QuerySet[WebhookEvent]:
    return WebhookEvent.objects.select_related("strategy", "replay_of").prefetch_related(
        Prefetch(
            "orders", queryset=Order.objects.select_related("account").order_by("account__name", "sequence")
        ),
        Prefetch(
            "strategy__strategy_accounts",
            queryset=StrategyAccount.objects.select_related("account").order_by("account__name"),
        ),
    )


def _decorate_event(event: WebhookEvent) -> WebhookEvent:
    event.order_rows = [decorate(order) for order in event.orders.all()]  # type: ignore[attr-defined]
    receivers = receiving_accounts(list(event.strategy.strategy_accounts.all())) if event.strategy else []
    event.receivers = receivers  # type: ignore[attr-defined]
    event.receivers_live = any(not account.is_paper for account in receivers)  # type: ignore[attr-defined]
    # An accepted webhook none of whose orders reached the venue is shown as failed.
    statuses = {order.status for order in event.order_rows}  # type: ignore[attr-defined]
    event.display_outcome = (  # type: ignore[attr-defined]
        "failed"
        if event.outcome == WebhookOutcome.ACCEPTED and statuses and statuses <= FAILED_STATUSES
        else event.outcome
    )
    event.payload_json = event_payload_json(event)  # type: ignore[attr-defined]
    return event


@staff_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    events = _events_with_orders().order_by("-received_at")
    errors_only = request.GET.get("errors") == "1"
    if errors_only:  # refused at the door, or an order that failed or was rejected at the venue
        events = events.filter(
            Q(outcome=WebhookOutcome.REJECTED) | Q(orders__status__in=FAILED_STATUSES)
        ).distinct()
    strategy = int_or_none(request.GET.get("strategy"))
    if strategy:
        events = events.filter(strategy_id=strategy)
    page, query = paginate(request, events, EVENTS_PER_PAGE)
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


@staff_required
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
    """Send a stored event again through the real intake as a new event (staff only), once
    confirmed in the dialog that shows what goes where; never for an inactive strategy."""
    event = get_object_or_404(WebhookEvent.objects.select_related("strategy"), pk=pk)
    if request.POST.get("confirm") != "1":
        messages.error(request, _("Nothing was sent: confirm the replay in its dialog first."))
        return redirect("webhook-detail", pk=event.pk)
    if event.strategy is not None and not event.strategy.is_active:
        messages.error(request, _("The strategy is inactive: a replay would be rejected."))
        return redirect("webhook-detail", pk=event.pk)
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


@require_POST
@staff_required
def strategy_test_signal(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the strategy's sample order through the real webhook path once confirmed in the
    dialog that shows what goes where; link to its log entry."""
    strategy = get_object_or_404(Strategy, pk=pk)
    if request.POST.get("confirm") != "1":
        messages.error(request, _("Nothing was sent: confirm the test signal in its dialog first."))
        return redirect("strategy-detail", pk=strategy.pk)
    result = webhook_test_signal(strategy)
    link = reverse("webhook-detail", args=[result.event_id]) if result.event_id else reverse("webhook-list")
    if result.status < 400:
        text = _("Test signal accepted (HTTP %(status)s).") % {"status": result.status}
        messages.success(request, format_html('{} <a href="{}">{}</a>', text, link, _("Open the log entry")))
    else:
        text = _("Test signal rejected (HTTP %(status)s): %(error)s") % {
            "status": result.status,
            "error": result.body.get("error", ""),
        }
        messages.error(request, format_html('{} <a href="{}">{}</a>', text, link, _("Open the log entry")))
    return redirect("strategy-detail", pk=strategy.pk)


# --- the kill switch on the pages (issue #14) ---------------------------------------------------


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect(fallback)


@require_POST
@staff_required
def kill_switch_action(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Pause (optionally cancelling the open orders), resume, or flatten a strategy or an
    account. Flatten and a cancelling pause place orders: they need confirm=1 (the dialog's)."""
    target: Account | Strategy
    if kind == "strategy":
        target = get_object_or_404(Strategy, pk=pk)
        fallback = reverse("strategy-detail", args=[pk])
    else:
        target = get_object_or_404(Account, pk=pk)
        fallback = reverse("order-list") + f"?account={pk}"
    action = request.POST.get("action", "")
    source = f"page:{request.user.get_username()}"
    cancel_open = request.POST.get("cancel_open") == "1"
    if (
        action in ("flatten", "pause")
        and (action == "flatten" or cancel_open)
        and request.POST.get("confirm") != "1"
    ):
        messages.error(request, _("Nothing was done: confirm it in its dialog first."))
        return _back(request, fallback)
    if action == "resume":
        kill_switch_resume(target, source=source)
        messages.success(request, _("Resumed: %(target)s") % {"target": target})
        return _back(request, fallback)
    if action == "pause":
        result = kill_switch_pause(
            target, reason=request.POST.get("reason", "")[:300], cancel_open=cancel_open, source=source
        )
        text = _("Paused: %(target)s") % {"target": target}
    elif action == "flatten":
        result = (
            strategy_flatten(target, source=source)
            if isinstance(target, Strategy)
            else account_flatten(target, source=source)
        )
        text = _("Flatten sent: %(count)d orders (cancel open orders, close positions)") % {
            "count": len(result.body["orders"])
        }
    else:
        messages.error(request, _("Unknown action"))
        return _back(request, fallback)
    if result is not None:
        link = reverse("webhook-detail", args=[result.event_id])
        messages.warning(request, format_html('{} <a href="{}">{}</a>', text, link, _("Open the log entry")))
    else:
        messages.warning(request, text)
    return _back(request, fallback)
