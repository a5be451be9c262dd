"""Risk limits (issue #14): checked before anything reaches a venue.

Two check points use the same rules:

- ``signal_refusal`` at intake (webhooks/services.py): the strategy's own pause and its static
  limits (allowed symbols, trading hours, order notional where the quantity is known). A
  strategy limit refuses every account, so the whole webhook is refused (``risk_limit``, 400).
- ``order_refusal`` in the worker, just before placement (orders/services.py): for each order,
  the strategy's and the account's limits together (the stricter wins), including the ones only
  the venue's state can decide (open orders, orders per minute, position, daily loss). A refused
  order ends `rejected` with a message naming the limit and its value; the account's other
  orders and the other accounts go on.

Cancels and flatten orders pass every check: they only take risk off. Every other order is
refused (``signal_stale``) once it is older than its strategy's max signal age when it is about
to be sent (from its acceptance, or its approval). A close (negative
``qty_per``) is never blocked by a pause, a notional or a loss limit (so a paused account can
still be closed out by its own signals); the symbol, hours and rate limits still apply to it.

Notional = quantity × price. The price is the order's own (``price``, else ``stop_price``),
else the price layer's last price (``prices.services.price_latest``); without any, an order that
a notional limit applies to is refused (a limit nobody can check is not a limit). The quantity
is the order's ``qty_per`` for stocks and futures/options (absolute quantities); for crypto,
where ``qty_per`` is a percent of capital, it is estimated from the venue's balances as the
adapters size it (spot buy: free quote; spot sell: free base; futures: total quote × leverage).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from notify.events import emit
from notify.models import EventKind
from orders.exchanges.base import ExchangeAdapter
from orders.exchanges.paper import quote_currency
from orders.models import Order, OrderOrigin
from orders.portfolio.fills import order_fill
from orders.portfolio.pnl import Fill, fifo_pnl
from prices.records import instrument_for
from prices.services import price_latest
from quanttrade.vocabulary import CRYPTO_MARKETS, LIVE_STATUSES, MarketType, OrderStatus, OrderType, Side
from strategies.models import Account, Strategy, parse_symbols, parse_trading_hours

log = logging.getLogger("quanttrade.orders")

HUNDRED = Decimal(100)
ZERO = Decimal(0)
RISK_LIMIT = "risk_limit"
STRATEGY_PAUSED = "strategy_paused"
ACCOUNT_PAUSED = "account_paused"
SIGNAL_STALE = "signal_stale"

# The time zone a market's trading hours are written in, unless the account names its own.
MARKET_TIMEZONES: dict[str, str] = {
    MarketType.DOMESTIC_STOCK: "Asia/Seoul",
    MarketType.DOMESTIC_FUTUREOPTION: "Asia/Seoul",
    MarketType.OVERSEAS_STOCK: "America/New_York",
    MarketType.OVERSEAS_FUTUREOPTION: "America/Chicago",
    MarketType.SPOT: "UTC",
    MarketType.FUTURES: "UTC",
}


@dataclass(frozen=True)
class Refusal:
    """Why an order may not be placed: a stable code and a message naming the limit."""

    code: str
    message: str


class Limited(Protocol):
    """A Strategy or an Account (both carry ``strategies.models.RiskLimits``)."""

    max_order_notional: Decimal | None
    max_position_notional: Decimal | None
    max_open_orders: int | None
    max_orders_per_minute: int | None
    max_daily_loss: Decimal | None
    allowed_symbols: str
    trading_hours: str
    is_paused: bool

    def paused_now(self, now: datetime | None = None) -> bool: ...


@dataclass(frozen=True)
class ProposedOrder:
    """What an order would be, as far as the limits care (an Order or one entry of a webhook)."""

    market_type: str
    symbol: str
    side: str
    order_type: str
    qty_per: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    currency: str = ""

    @property
    def is_cancel(self) -> bool:
        return self.order_type == OrderType.CANCEL_ALL_ORDER

    @property
    def is_close(self) -> bool:
        return self.qty_per is not None and self.qty_per < 0


def market_timezone(market_type: str, account: Account | None = None) -> ZoneInfo:
    """The zone of trading hours and of the daily-loss reset: the account's, else the market's."""
    name = (account.market_timezone if account is not None else "") or MARKET_TIMEZONES.get(
        market_type, "UTC"
    )
    return ZoneInfo(name)


def _scope(holder: Limited) -> str:
    if isinstance(holder, Strategy):
        return _("strategy %(name)s") % {"name": holder.group_name}
    return _("account %(name)s") % {"name": getattr(holder, "name", "?")}


def _limit(holder: Limited, what: str, value: object, detail: str) -> Refusal:
    message = _("Risk limit (%(scope)s): %(limit)s %(value)s — %(detail)s") % {
        "scope": _scope(holder),
        "limit": what,
        "value": value,
        "detail": detail,
    }
    return Refusal(RISK_LIMIT, message)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


# --- static limits: decidable from the signal alone -------------------------------------------


def symbol_refusal(holder: Limited, symbol: str) -> Refusal | None:
    allowed = parse_symbols(holder.allowed_symbols)
    if not allowed or not symbol or symbol.upper() in allowed:
        return None
    return _limit(
        holder,
        _("allowed symbols"),
        ", ".join(sorted(allowed)),
        _("%(symbol)s is not allowed") % {"symbol": symbol},
    )


def in_windows(windows: list[tuple[time, time]], moment: time) -> bool:
    for start, end in windows:
        if start <= end and start <= moment < end:
            return True
        if start > end and (moment >= start or moment < end):  # past midnight
            return True
    return False


def hours_refusal(holder: Limited, now: datetime, zone: ZoneInfo) -> Refusal | None:
    if not holder.trading_hours.strip():
        return None
    try:
        windows = parse_trading_hours(holder.trading_hours)
    except ValueError:
        log.error("거래 시간 형식 오류 (%s): %r", _scope(holder), holder.trading_hours)
        windows = []  # stored before validation: refusing is the safe reading
    local = now.astimezone(zone)
    if in_windows(windows, local.time().replace(tzinfo=None)):
        return None
    return _limit(
        holder,
        _("trading hours"),
        holder.trading_hours,
        _("it is %(now)s (%(zone)s)") % {"now": local.strftime("%H:%M"), "zone": zone.key},
    )


def reference_price(order: ProposedOrder, account: Account | None = None) -> Decimal | None:
    """The order's own price, else the price layer's last price of its instrument, else None."""
    if order.price:
        return Decimal(order.price)
    if order.stop_price:
        return Decimal(order.stop_price)
    exchange = ""
    if account is not None:
        exchange = str(account.settings.get("price_exchange") or "") or (
            "" if account.is_paper else account.exchange
        )
    record = price_latest(instrument_for(order.market_type, order.symbol, exchange=exchange))
    return record.price if record is not None else None


def order_notional_refusal(
    holders: list[Limited], order: ProposedOrder, notional: Decimal | None
) -> Refusal | None:
    """The first of ``holders`` whose max order notional ``notional`` exceeds; an unknown
    notional is refused where a limit is set."""
    for holder in holders:
        limit = holder.max_order_notional
        if limit is None:
            continue
        if notional is None:
            return _limit(
                holder,
                _("max order notional"),
                _plain(limit),
                _("no price for %(symbol)s to check it against") % {"symbol": order.symbol},
            )
        if notional > limit:
            return _limit(
                holder,
                _("max order notional"),
                _plain(limit),
                _("this order is %(notional)s") % {"notional": _plain(notional.quantize(Decimal("0.01")))},
            )
    return None


def signal_refusal(strategy: Strategy, orders: list[ProposedOrder], now: datetime) -> Refusal | None:
    """The intake's check of one signal against its strategy alone (see the module docstring):
    the pause (an opening order is refused; closes and cancels pass), the allowed symbols, the
    trading hours (the market's time zone) and, for absolute quantities with a known price, the
    order notional. None when the signal may go on."""
    opening = [o for o in orders if not o.is_cancel and not o.is_close]
    if opening and strategy.paused_now(now):
        reason = f" ({strategy.paused_reason})" if strategy.paused_reason else ""
        return Refusal(
            STRATEGY_PAUSED,
            _("The strategy is paused: %(group_name)s") % {"group_name": strategy.group_name} + reason,
        )
    placing = [o for o in orders if not o.is_cancel]
    if not placing:
        return None
    refusal = symbol_refusal(strategy, placing[0].symbol) or hours_refusal(
        strategy, now, market_timezone(strategy.market_type)
    )
    if refusal:
        return refusal
    if strategy.max_order_notional is None or strategy.market_type in CRYPTO_MARKETS:
        return None  # crypto percent sizing needs the account's balances: the worker checks
    for order in opening:
        price = reference_price(order)
        if price is None or order.qty_per is None:
            continue  # the worker decides with the account's price source
        refusal = order_notional_refusal([strategy], order, order.qty_per * price)
        if refusal:
            return refusal
    return None


# --- the worker: every limit of the strategy and the account ----------------------------------


def proposed(order: Order) -> ProposedOrder:
    return ProposedOrder(
        market_type=order.market_type,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        qty_per=order.qty_per,
        price=order.price,
        stop_price=order.stop_price,
        currency=order.currency,
    )


def _scoped(holder: Limited, order: Order) -> QuerySet[Order]:
    """The account's orders, or (for a strategy limit) the strategy's orders on that account."""
    orders = Order.objects.filter(account_id=order.account_id)
    if isinstance(holder, Strategy):
        orders = orders.filter(strategy_id=order.strategy_id)
    return orders


def _sent_last_minute(holder: Limited, order: Order, now: datetime) -> QuerySet[Order]:
    """The holder's other orders sent in the minute before ``now`` (found by the orders'
    (account, submitted_at) index, not by the account's whole history)."""
    return (
        _scoped(holder, order)
        .filter(submitted_at__gte=now - timedelta(minutes=1))
        .exclude(pk=order.pk)
        .exclude(order_type=OrderType.CANCEL_ALL_ORDER)
        .exclude(status=OrderStatus.REJECTED)  # refused here or by the venue: nothing was sent
    )


def _rate_refusal(holder: Limited, order: Order, now: datetime) -> Refusal | None:
    limit = holder.max_orders_per_minute
    if limit is None:
        return None
    recent = _sent_last_minute(holder, order, now).count()
    if recent < limit:
        return None
    return _limit(
        holder, _("max orders per minute"), limit, _("%(count)d sent in the last minute") % {"count": recent}
    )


def _open_refusal(holder: Limited, order: Order) -> Refusal | None:
    limit = holder.max_open_orders
    if limit is None:
        return None
    resting = _scoped(holder, order).filter(status__in=LIVE_STATUSES).exclude(pk=order.pk).count()
    if resting < limit:
        return None
    return _limit(holder, _("max open orders"), limit, _("%(count)d are open") % {"count": resting})


def _takes(method: Any, name: str) -> bool:
    """Whether an adapter method takes the optional argument ``name`` (the ccxt adapter reads
    balances per market; the brokers' positions take the order's params)."""
    return name in inspect.signature(method).parameters


def _balance(adapter: ExchangeAdapter, market_type: str, asset: str, *, total: bool = False) -> Decimal:
    balances: dict[str, Any] = (
        adapter.balances(market_type)  # type: ignore[call-arg]
        if _takes(adapter.balances, "market_type")
        else adapter.balances()
    )
    found = balances.get(asset)
    if found is None:
        return ZERO
    return Decimal(found.total if total else found.free)


def estimated_quantity(order: Order, adapter: ExchangeAdapter, price: Decimal) -> Decimal | None:
    """The quantity the adapter will size the order to (an estimate for crypto percent sizing,
    see the module docstring); None when ``qty_per`` is missing."""
    if order.qty_per is None:
        return None
    if order.market_type not in CRYPTO_MARKETS:
        return abs(order.qty_per)
    fraction = abs(order.qty_per) / HUNDRED
    base, _slash, quote = order.symbol.partition("/")
    quote = order.currency or quote
    if order.market_type == MarketType.FUTURES:
        try:
            leverage = Decimal(str(order.account.settings.get("leverage") or 1))
        except ArithmeticError:
            leverage = Decimal(1)
        equity = _balance(adapter, order.market_type, quote, total=True)
        return equity * fraction * leverage / price
    if order.side == Side.BUY:
        return _balance(adapter, order.market_type, quote) * fraction / price
    return _balance(adapter, order.market_type, base) * fraction


def _notional_refusals(holders: list[Limited], order: Order, adapter: ExchangeAdapter) -> Refusal | None:
    need_order = any(h.max_order_notional is not None for h in holders)
    need_position = any(h.max_position_notional is not None for h in holders)
    if not (need_order or need_position):
        return None
    price = reference_price(proposed(order), order.account)
    quantity = estimated_quantity(order, adapter, price) if price else None
    notional = quantity * price if quantity is not None and price else None
    refusal = order_notional_refusal(holders, proposed(order), notional)
    if refusal or not need_position:
        return refusal
    position = (
        adapter.position(order.market_type, order.symbol, dict(order.params or {}))  # type: ignore[call-arg]
        if _takes(adapter.position, "params")
        else adapter.position(order.market_type, order.symbol)
    )
    for holder in holders:
        limit = holder.max_position_notional
        if limit is None:
            continue
        if quantity is None or not price:
            return _limit(
                holder,
                _("max position notional"),
                _plain(limit),
                _("no price for %(symbol)s to check it against") % {"symbol": order.symbol},
            )
        after = position + (quantity if order.side == Side.BUY else -quantity)
        value = abs(after) * price
        if abs(after) > abs(position) and value > limit:
            return _limit(
                holder,
                _("max position notional"),
                _plain(limit),
                _("the %(symbol)s position would be %(value)s")
                % {"symbol": order.symbol, "value": _plain(value.quantize(Decimal("0.01")))},
            )
    return None


def loss_window_start(account: Account, market_type: str, now: datetime) -> datetime:
    """The last reset moment (``Account.loss_reset_time`` in the market time zone) at or before
    ``now``: the daily realised loss counts fills from then on."""
    zone = market_timezone(market_type, account)
    local = now.astimezone(zone)
    start = datetime.combine(local.date(), account.loss_reset_time, zone)
    if start > local:
        start -= timedelta(days=1)
    return start


def realised_pnl(orders: QuerySet[Order], since: datetime) -> Decimal:
    """Realised profit (negative: loss) after fees of ``orders``' fills since ``since``, matched
    first in first out per account and (market, symbol) over the whole history (a lot bought
    yesterday and sold today counts today): the portfolio's FIFO (orders.portfolio.pnl) over
    everything, less the same over the fills before ``since``. The fills are matched in the
    order they were sent (as the portfolio matches them); a fill's time, for the split, is when
    the order's fills were last recorded (``Order.filled_at``; its send time for fills from
    before that was kept), so a resting order sent yesterday that fills today counts today.
    Contract multipliers are not applied."""
    books: dict[tuple[int, str, str], list[Fill]] = {}
    rows = (
        orders.filter(filled_qty__gt=0, avg_price__isnull=False)
        .filter(side__in=[Side.BUY, Side.SELL])
        .annotate(sent_at=Coalesce("submitted_at", "created_at"))
        .order_by("sent_at", "sequence", "pk")
    )
    quotes: dict[tuple[int, str, str], str] = {}
    for order in rows:
        key = (order.account_id, order.market_type, order.symbol.upper())
        fill = order_fill(order)
        books.setdefault(key, []).append(replace(fill, at=order.filled_at) if order.filled_at else fill)
        quotes.setdefault(key, quote_currency(order.market_type, order.symbol, order.currency, order.params))
    realised = ZERO
    for key, fills in books.items():
        before = [fill for fill in fills if fill.at is not None and fill.at < since]
        realised += fifo_pnl(fills, quotes[key]).net - fifo_pnl(before, quotes[key]).net
    return realised


def daily_loss(holder: Limited, order: Order, now: datetime) -> Decimal:
    """The realised loss (a positive amount, 0 on a profit) of the holder's scope today."""
    since = loss_window_start(order.account, order.market_type, now)
    pnl = realised_pnl(_scoped(holder, order), since)
    return -pnl if pnl < 0 else ZERO


def _loss_refusal(holder: Limited, order: Order, now: datetime) -> Refusal | None:
    limit = holder.max_daily_loss
    if limit is None:
        return None
    loss = daily_loss(holder, order, now)
    if loss < abs(limit):
        return None
    refusal = _limit(
        holder,
        _("max daily realised loss"),
        _plain(abs(limit)),
        _("today's realised loss is %(loss)s; trading is paused") % {"loss": _plain(loss)},
    )
    if not holder.is_paused and isinstance(holder, Strategy | Account):
        # Until the next reset: the day's loss caused it, the next day starts from zero.
        until = loss_window_start(order.account, order.market_type, now) + timedelta(days=1)
        holder.pause(refusal.message, until=until)  # the refusal's risk_limit_hit carries the news
        log.error("일일 손실 한도 도달, 일시 정지: %s", refusal.message)
    return refusal


def loss_check_after_fill(order: Order, now: datetime | None = None) -> Refusal | None:
    """After an order filled (in part or whole): pause its account (or strategy) at once when
    the fill took the daily realised loss to the limit, rather than at the next signal.
    Returns the refusal that paused it, or None."""
    if not order.filled_qty:
        return None
    now = now or timezone.now()
    holders: list[Account | Strategy] = [order.account, order.strategy]
    for holder in holders:
        if holder.max_daily_loss is None:
            continue
        # The copy in hand may predate a pause set a moment ago (an earlier fill of the same
        # refresh run, another worker): one pause, one notification.
        holder.refresh_from_db(fields=list(holder.PAUSE_FIELDS))
        if holder.paused_now(now):
            continue
        refusal = _loss_refusal(holder, order, now)
        if refusal is not None:
            risk_limit_hit(refusal, where="fill", subject=f"order {order.id}")
            return refusal
    return None


def risk_limit_hit(refusal: Refusal, *, where: str, subject: str) -> None:
    """The one place every risk-limit refusal passes (the intake's and the worker's; the daily
    loss's automatic pause is one of them): logged, and where notifications hook in."""
    log.error("리스크 한도 거부 (%s, %s): %s", where, subject, refusal.message)
    emit(EventKind.RISK_LIMIT_HIT, message=f"{refusal.message} ({subject})")


# The pause flags the worker read with the order are used as they are for this long; older
# ones are read again before the order is judged (an earlier order of the task, a venue call
# ago, may have paused the account).
PAUSE_READ_FRESH_SECONDS = 0.05


def _stale_refusal(order: Order, strategy: Strategy, now: datetime) -> Refusal | None:
    """The strategy's max signal age, counted again when the order is about to be sent: the
    intake checked the signal's own time, but an order can wait long after it (a backlog, a
    venue's rate limit, retries, an outage). Counted from its acceptance, or from its approval
    for an order that waited for one (the approver wants it now)."""
    max_age = strategy.max_signal_age_seconds
    since = order.approved_at or order.created_at
    if max_age is None or since is None:
        return None
    age = (now - since).total_seconds()
    if age <= max_age:
        return None
    return Refusal(
        SIGNAL_STALE,
        _(
            "The signal went stale before its order could be sent: accepted %(age)d seconds ago, "
            "the strategy accepts at most %(max)d"
        )
        % {"age": int(age), "max": max_age},
    )


def order_refusal(order: Order, adapter: ExchangeAdapter, now: datetime | None = None) -> Refusal | None:
    """Why this claimed order may not be placed now, or None (see the module docstring).
    Venue errors from the balance or position reads propagate (the caller retries them)."""
    if order.origin == OrderOrigin.FLATTEN or order.order_type == OrderType.CANCEL_ALL_ORDER:
        return None
    now = now or timezone.now()
    strategy, account = order.strategy, order.account
    stale = _stale_refusal(order, strategy, now)
    if stale is not None:
        return stale
    close = order.qty_per is not None and order.qty_per < 0
    if not close:
        # Paused by hand or by the daily loss a moment ago (another worker may have): read
        # fresh, unless the worker read them with the order just now (orders.services).
        loaded_at = getattr(order, "loaded_at", None)
        if loaded_at is None or monotonic() - loaded_at > PAUSE_READ_FRESH_SECONDS:
            strategy.refresh_from_db(fields=list(strategy.PAUSE_FIELDS))
            account.refresh_from_db(fields=list(account.PAUSE_FIELDS))
        if strategy.paused_now(now):
            return Refusal(
                STRATEGY_PAUSED,
                _("The strategy is paused: %(group_name)s") % {"group_name": strategy.group_name},
            )
        if account.paused_now(now):
            return Refusal(ACCOUNT_PAUSED, _("The account is paused: %(name)s") % {"name": account.name})
    holders: list[Limited] = [account, strategy]  # the account's refusal names it first
    for holder in holders:
        # Each holder's hours in its own zone: the account's (its market_timezone, else the
        # market's), the strategy's in the market's, as the intake reads them.
        zone = market_timezone(order.market_type, account if holder is account else None)
        refusal = (
            symbol_refusal(holder, order.symbol)
            or hours_refusal(holder, now, zone)
            or _rate_refusal(holder, order, now)
            or (None if close else _open_refusal(holder, order))
        )
        if refusal:
            return refusal
    if close:
        return None
    for holder in holders:
        refusal = _loss_refusal(holder, order, now)
        if refusal:
            return refusal
    return _notional_refusals(holders, order, adapter)
