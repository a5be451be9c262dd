"""The kill switch (issue #14): pause a strategy or an account, and flatten an account or a
strategy's accounts — cancel every open order and close every position.

Flatten writes Orders like a webhook does (one WebhookEvent, its Orders, one task per account
on commit), so the actions run through the normal execution path and show on the order pages,
the webhook log and the results API (``GET /api/webhooks/<id>``): one order per action, a
CANCEL_ALL_ORDER per market the account trades, then a MARKET close (``qty_per`` -100, the
webhook's close) per symbol it holds. Flatten orders (``Order.origin`` flatten) pass the pause
and the risk limits.

Where the positions come from: the paper venue's own book for PAPER accounts (positions and
base-asset balances); for venue accounts, the net of the account's filled orders in this
product (a position opened outside QuantTrade is not known here and is not closed).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils.translation import gettext as _

from notify.events import emit
from notify.models import EventKind
from orders.models import Order, OrderOrigin, PaperBalance, PaperPosition
from orders.selectors import order_summary
from orders.services import orders_dispatch
from quanttrade.vocabulary import CRYPTO_MARKETS, LIVE_STATUSES, MarketType, OrderStatus, OrderType, Side
from strategies.models import Account, Strategy, StrategyAccount
from webhooks.models import WebhookEvent, WebhookOutcome
from webhooks.services import broadcast_webhook

log = logging.getLogger("quanttrade.webhook")

ZERO = Decimal(0)
CLOSE_ALL = Decimal(-100)


@dataclass
class FlattenPlan:
    """What flattening one account takes: markets to cancel, (market, symbol) → signed size."""

    account: Account
    markets: list[str] = field(default_factory=list)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class KillSwitchResult:
    event_id: UUID | None
    body: dict[str, Any]


def _net_positions(account: Account) -> dict[tuple[str, str], Decimal]:
    """Signed position per (market, symbol) from the account's filled quantities here."""
    net: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    rows = (
        Order.objects.filter(account=account, filled_qty__gt=0)
        .exclude(side="")
        .values_list("market_type", "symbol", "side", "filled_qty")
    )
    for market_type, symbol, side, qty in rows:
        net[(market_type, symbol)] += Decimal(qty) if side == Side.BUY else -Decimal(qty)
    return {key: size for key, size in net.items() if size != 0}


def _paper_positions(account: Account) -> dict[tuple[str, str], Decimal]:
    """Signed positions from the paper book: its positions, and base assets held on spot (the
    spot symbol is the one the account traded that asset as)."""
    found = {
        (pos.market_type, pos.symbol): pos.quantity
        for pos in PaperPosition.objects.filter(account=account).exclude(quantity=0)
    }
    held = {
        bal.asset: bal.free + bal.locked
        for bal in PaperBalance.objects.filter(account=account)
        if bal.free + bal.locked > 0
    }
    spot_symbols = (
        Order.objects.filter(account=account, market_type=MarketType.SPOT)
        .exclude(symbol="")
        .values_list("symbol", flat=True)
        .distinct()
    )
    for symbol in spot_symbols:
        base = symbol.split("/")[0]
        if base in held:
            found[(MarketType.SPOT, symbol)] = held[base]
    return found


def flatten_plan(account: Account) -> FlattenPlan:
    plan = FlattenPlan(account=account)
    plan.positions = _paper_positions(account) if account.is_paper else _net_positions(account)
    markets = set(
        StrategyAccount.objects.filter(account=account).values_list("strategy__market_type", flat=True)
    )
    markets.update(
        Order.objects.filter(account=account, status__in=LIVE_STATUSES).values_list("market_type", flat=True)
    )
    markets.update(market for market, _symbol in plan.positions)
    plan.markets = sorted(markets)
    return plan


def _strategy_for(account: Account, market_type: str, symbol: str = "") -> Strategy | None:
    """The strategy a flatten order is filed under: the one that last traded the symbol on the
    account, else a linked strategy of that market."""
    last = Order.objects.filter(account=account, market_type=market_type)
    if symbol:
        last = last.filter(symbol=symbol)
    order = last.order_by("-created_at").select_related("strategy").first()
    if order is not None:
        return order.strategy
    link = (
        StrategyAccount.objects.filter(account=account, strategy__market_type=market_type)
        .select_related("strategy")
        .order_by("strategy__group_name")
        .first()
    )
    return link.strategy if link else None


def _last_params(account: Account, market_type: str, symbol: str) -> tuple[str, dict[str, Any]]:
    order = (
        Order.objects.filter(account=account, market_type=market_type, symbol=symbol)
        .exclude(order_type=OrderType.CANCEL_ALL_ORDER)
        .order_by("-created_at")
        .first()
    )
    if order is None:
        return (symbol.split("/")[1] if market_type in CRYPTO_MARKETS and "/" in symbol else ""), {}
    return order.currency, dict(order.params or {})


def _plan_orders(event: WebhookEvent, plan: FlattenPlan, *, close: bool) -> list[Order]:
    account = plan.account
    orders: list[Order] = []

    def add(strategy: Strategy, **fields: Any) -> None:
        order = Order(
            webhook=event,
            strategy=strategy,
            account=account,
            sequence=len(orders),
            batch_index=len(orders) + 1,
            status=OrderStatus.QUEUED,
            origin=OrderOrigin.FLATTEN,
            **fields,
        )
        order.client_order_id = "qt" + order.id.hex
        orders.append(order)

    for market_type in plan.markets:
        strategy = _strategy_for(account, market_type)
        if strategy is None:
            plan.skipped.append(market_type)
            continue
        add(strategy, market_type=market_type, symbol="", side="", order_type=OrderType.CANCEL_ALL_ORDER)
    if close:
        for (market_type, symbol), size in sorted(plan.positions.items()):
            strategy = _strategy_for(account, market_type, symbol)
            if strategy is None:
                plan.skipped.append(f"{market_type} {symbol}")
                continue
            currency, params = _last_params(account, market_type, symbol)
            add(
                strategy,
                market_type=market_type,
                symbol=symbol,
                currency=currency,
                params=params,
                side=Side.SELL if size > 0 else Side.BUY,
                order_type=OrderType.MARKET,
                qty_per=CLOSE_ALL,
            )
    return orders


def _submit(
    accounts: list[Account], *, action: str, label: str, source: str, close: bool
) -> KillSwitchResult:
    """Write one event with every account's cancel (and close) orders, dispatch on commit."""
    event = WebhookEvent(
        group_name=f"{action}:{label}"[:200],
        payload={"action": action, "target": label, "source": source},
        outcome=WebhookOutcome.ACCEPTED,
        http_status=202,
    )
    plans = [flatten_plan(account) for account in accounts]
    orders = [order for plan in plans for order in _plan_orders(event, plan, close=close)]
    warnings = [
        _("Nothing to file the action under (no strategy of that market): %(account)s %(what)s")
        % {"account": plan.account.name, "what": what}
        for plan in plans
        for what in plan.skipped
    ]
    body = {
        "success": True,
        "webhook_id": str(event.id),
        "action": action,
        "target": label,
        "status": "queued" if orders else "completed",
        "orders": [order_summary(order) for order in orders],
        "warnings": warnings,
    }
    event.response = body
    event.warnings = warnings
    account_ids = sorted({order.account_id for order in orders})
    with transaction.atomic():
        event.save(force_insert=True)
        Order.objects.bulk_create(orders)
        transaction.on_commit(lambda: orders_dispatch(event.id, account_ids))
        transaction.on_commit(lambda: broadcast_webhook(event))
    log.info("%s (%s, %s): 주문 %d건", action, label, source, len(orders))
    return KillSwitchResult(event.id, body)


def _strategy_accounts(strategy: Strategy) -> list[Account]:
    return list(Account.objects.filter(strategy_accounts__strategy=strategy).order_by("name").distinct())


def kill_switch_used(action: str, target: Account | Strategy, source: str, detail: str = "") -> None:
    """The one place every kill-switch event passes (pause, resume, flatten; from the pages, the
    admin, the API or the shell): logged, and where notifications hook in."""
    log.warning("킬 스위치 %s: %s (%s) %s", action, target, source, detail)
    emit(
        EventKind.KILL_SWITCH,
        strategy=target.group_name if isinstance(target, Strategy) else "",
        account=target.name if isinstance(target, Account) else "",
        message=" ".join(part for part in (action, f"({source})", detail) if part),
    )


def account_flatten(account: Account, *, source: str) -> KillSwitchResult:
    """Cancel every open order of the account and close every position it holds."""
    result = _submit([account], action="flatten", label=account.name, source=source, close=True)
    kill_switch_used("flatten", account, source, f"webhook_id={result.event_id}")
    return result


def strategy_flatten(strategy: Strategy, *, source: str) -> KillSwitchResult:
    """Flatten every account linked to the strategy (each account entirely)."""
    accounts = _strategy_accounts(strategy)
    result = _submit(accounts, action="flatten", label=strategy.group_name, source=source, close=True)
    kill_switch_used("flatten", strategy, source, f"webhook_id={result.event_id}")
    return result


def kill_switch_pause(
    target: Account | Strategy, *, reason: str, cancel_open: bool, source: str
) -> KillSwitchResult | None:
    """Pause the account or strategy (new opening signals are refused); with ``cancel_open``,
    also cancel the open orders of the account (of the strategy's accounts). Returns the
    cancel's event, or None when open orders are left alone."""
    target.pause(reason or _("Paused by %(source)s") % {"source": source})
    kill_switch_used("pause", target, source, target.paused_reason)
    if not cancel_open:
        return None
    accounts = [target] if isinstance(target, Account) else _strategy_accounts(target)
    label = target.name if isinstance(target, Account) else target.group_name
    return _submit(accounts, action="pause", label=label, source=source, close=False)


def kill_switch_resume(target: Account | Strategy, *, source: str) -> None:
    target.resume()
    kill_switch_used("resume", target, source)
