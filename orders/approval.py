"""Semi-automatic mode: orders held for a staff user's approval before they are sent.

An order of a strategy or account set to *approve first* is stored `pending_approval` with a
deadline (the strategy's ``approval_timeout_seconds``) and is not dispatched. Approval works
on one **group**: every order of one webhook for one account (a batch is approved, rejected or
expired as a whole, so a later order of a batch can never go out before an earlier one).

- approve: pending_approval → queued (who, when recorded), then one dispatch of that account;
- reject: pending_approval → cancelled, "rejected by <user>", nothing sent;
- expiry (periodic, and on any decision taken too late): → cancelled, "승인 대기 시간 초과".

Every transition is one conditional UPDATE of the rows still `pending_approval`, after the
rows were locked (``select_for_update``): two clicks or two staff users can never both win,
and the execution path only ever picks up `queued` orders, so a group is sent exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from orders.models import Order
from orders.services import order_broadcast, orders_dispatch
from prices.records import PriceRecord, instrument_for
from prices.services import price_snapshots
from quanttrade.vocabulary import CRYPTO_MARKETS, OrderStatus
from strategies.models import Account, Strategy

log = logging.getLogger("quanttrade.orders")


class ApprovalError(Exception):
    """A decision that cannot be taken (the group was already decided, or expired)."""

    def __init__(self, message: str, *, code: str) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


def approval_needed(strategy: Strategy, account: Account) -> bool:
    return bool(strategy.approval_required or account.approval_required)


def approval_deadline(strategy: Strategy, now: datetime) -> datetime:
    return now + timedelta(seconds=strategy.approval_timeout_seconds)


def waited_seconds(order: Order) -> int:
    """The approval wait the order was given (the strategy's timeout when it arrived)."""
    if order.approval_expires_at is None:
        return 0
    return round((order.approval_expires_at - order.created_at).total_seconds())


# Stored on the order, so in the site language whatever language the deciding user reads.
def expired_message(timeout_seconds: int) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("Approval wait timed out (%(seconds)s s): the order was not sent") % {
            "seconds": timeout_seconds
        }


def rejected_message(username: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("Rejected by %(user)s: the order was not sent") % {"user": username}


def approval_pending_announce(orders: Iterable[Order]) -> None:
    """Tell the pages (and, later, the operator) that orders are waiting for approval.
    Called after the orders were committed."""
    waiting = [order for order in orders if order.status == OrderStatus.PENDING_APPROVAL]
    # notify: approval_pending (one notification per waiting group, with a link to /approvals/)
    for order in waiting:
        order_broadcast(order)
    groups = {(order.webhook_id, order.account_id) for order in waiting}
    for webhook_id, account_id in sorted(groups, key=str):
        log.info("주문 승인 대기: webhook=%s account=%s", webhook_id, account_id)


def _locked_pending(webhook_id: UUID, account_id: int) -> list[Order]:
    return list(
        Order.objects.select_for_update()
        .filter(webhook_id=webhook_id, account_id=account_id, status=OrderStatus.PENDING_APPROVAL)
        .order_by("sequence")
    )


def _broadcast_group(webhook_id: UUID, account_id: int) -> None:
    for order in Order.objects.filter(webhook_id=webhook_id, account_id=account_id).select_related("account"):
        order_broadcast(order)


def _expire_locked(orders: list[Order], now: datetime) -> int:
    """Cancel the (locked, pending) group with the timeout message; returns how many changed."""
    changed = Order.objects.filter(
        pk__in=[order.pk for order in orders], status=OrderStatus.PENDING_APPROVAL
    ).update(
        status=OrderStatus.CANCELLED,
        message=expired_message(waited_seconds(orders[0])),
        updated_at=now,
    )
    webhook_id, account_id = orders[0].webhook_id, orders[0].account_id
    transaction.on_commit(lambda: _broadcast_group(webhook_id, account_id))
    log.warning("주문 승인 대기 시간 초과 (전송 안 함): webhook=%s account=%s", webhook_id, account_id)
    return changed


def approval_decide(webhook_id: UUID, account_id: int, user: Any, *, approve: bool) -> int:
    """Approve (send) or reject (drop) every pending order of one webhook for one account.

    Returns how many orders were approved or rejected. Raises :class:`ApprovalError` when the
    group has nothing pending (another user decided first) or its deadline has passed (the
    orders are then expired — cancelled, nothing sent — and that is committed)."""
    now = timezone.now()
    changed = 0
    with transaction.atomic():
        orders = _locked_pending(webhook_id, account_id)
        late = any(o.approval_expires_at is not None and o.approval_expires_at <= now for o in orders)
        if orders and late:
            _expire_locked(orders, now)
        elif orders:
            pending = Order.objects.filter(
                pk__in=[order.pk for order in orders], status=OrderStatus.PENDING_APPROVAL
            )
            if approve:
                changed = pending.update(
                    status=OrderStatus.QUEUED, approved_by=user, approved_at=now, message="", updated_at=now
                )
                # The row locks make a partial update impossible; never send half a batch anyway.
                if changed == len(orders):
                    transaction.on_commit(lambda: orders_dispatch(webhook_id, [account_id]))
            else:
                changed = pending.update(
                    status=OrderStatus.CANCELLED,
                    message=rejected_message(user.get_username()),
                    updated_at=now,
                )
            if changed != len(orders):
                transaction.set_rollback(True)
            else:
                transaction.on_commit(lambda: _broadcast_group(webhook_id, account_id))
    if not orders:
        raise ApprovalError(
            _("These orders are no longer waiting for approval (already decided or expired)"),
            code="not_pending",
        )
    if late:
        raise ApprovalError(expired_message(waited_seconds(orders[0])), code="expired")
    if changed != len(orders):
        raise ApprovalError(_("The orders changed while deciding; try again"), code="conflict")
    log.info(
        "주문 %s: webhook=%s account=%s by=%s (%d건)",
        "승인" if approve else "거부",
        webhook_id,
        account_id,
        user.get_username(),
        changed,
    )
    return changed


def approvals_expire(now: datetime | None = None) -> int:
    """Cancel every group whose approval deadline has passed (run periodically). Returns how
    many orders expired."""
    now = now or timezone.now()
    groups = set(
        Order.objects.filter(status=OrderStatus.PENDING_APPROVAL, approval_expires_at__lte=now).values_list(
            "webhook_id", "account_id"
        )
    )
    expired = 0
    for webhook_id, account_id in sorted(groups, key=str):
        with transaction.atomic():
            orders = _locked_pending(webhook_id, account_id)
            if orders:
                expired += _expire_locked(orders, now)
    return expired


# --- reads: the approval queue ------------------------------------------------------------


@dataclass
class ApprovalGroup:
    """One webhook's pending orders for one account, as the approval queue shows them."""

    webhook_id: UUID
    account: Account
    strategy: Strategy
    created_at: datetime
    expires_at: datetime | None
    orders: list[Order] = field(default_factory=list)
    instrument: str = ""
    last_price: PriceRecord | None = None

    @property
    def key(self) -> str:
        return f"{self.webhook_id}-{self.account.pk}"

    @property
    def crypto(self) -> bool:
        return self.strategy.market_type in CRYPTO_MARKETS


def order_estimate(order: Order, last_price: Decimal | None) -> tuple[Decimal | None, Decimal | None]:
    """(quantity, value) the order would have, where that is known without asking the venue:
    stocks and futures/options take ``qty_per`` as the quantity itself (valued at the order's
    price, else the last price); crypto sizes from the venue balance, so (None, None)."""
    if order.market_type in CRYPTO_MARKETS or order.qty_per is None or order.qty_per <= 0:
        return None, None
    price = order.price or last_price
    return order.qty_per, (order.qty_per * price if price is not None else None)


def approval_groups(pending: Iterable[Order]) -> list[ApprovalGroup]:
    """Group pending orders by (webhook, account), oldest first, with each group's last price
    from the price layer (no venue call)."""
    groups: dict[tuple[UUID, int], ApprovalGroup] = {}
    for order in sorted(pending, key=lambda o: (o.created_at, o.account.name, o.sequence)):
        group = groups.get((order.webhook_id, order.account_id))
        if group is None:
            group = groups[(order.webhook_id, order.account_id)] = ApprovalGroup(
                webhook_id=order.webhook_id,
                account=order.account,
                strategy=order.strategy,
                created_at=order.created_at,
                expires_at=order.approval_expires_at,
            )
            if order.symbol:
                group.instrument = instrument_for(
                    order.market_type, order.symbol, exchange=order.account.exchange, params=order.params
                )
        group.orders.append(order)
    records = price_snapshots(sorted({g.instrument for g in groups.values() if g.instrument}))
    for group in groups.values():
        group.last_price = records.get(group.instrument)
    return list(groups.values())


def approval_queue() -> list[ApprovalGroup]:
    """Every group waiting for approval, oldest first."""
    pending = Order.objects.filter(status=OrderStatus.PENDING_APPROVAL).select_related(
        "account", "strategy", "webhook"
    )
    return approval_groups(pending)


def approval_group(webhook_id: UUID, account_id: int) -> ApprovalGroup | None:
    pending = Order.objects.filter(
        webhook_id=webhook_id, account_id=account_id, status=OrderStatus.PENDING_APPROVAL
    ).select_related("account", "strategy", "webhook")
    groups = approval_groups(pending)
    return groups[0] if groups else None
