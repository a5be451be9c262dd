"""The portfolio service: read an account's balances and positions through its adapter, mark
them to market from the price layer, add realised PnL and fees from the stored fills, cache
the result, push it to the staff ``portfolio`` topic and keep the day's equity snapshot.

Reads never raise for a venue's failure: the message goes into ``Portfolio.errors`` (shown
on the pages and in the API) and what the other markets returned is kept. A portfolio with
an error does not write the equity snapshot (a half-read account would draw a false dip).
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _

from live.bus import group_send
from orders import handoff
from orders.exchanges import adapter_for
from orders.exchanges.base import Balance, ExchangeAdapter, VenueError, VenuePosition
from orders.exchanges.paper import DERIVATIVES, quote_currency
from orders.models import EquitySnapshot, Order
from orders.portfolio.fills import account_fills
from orders.portfolio.pnl import ZERO, Fill, PnlResult, fifo_pnl
from orders.portfolio.records import BalanceLine, CurrencyTotal, Portfolio, PositionLine
from prices.calendar import KST
from prices.records import instrument_for
from prices.services import price_snapshots
from quanttrade.cache import add_each
from quanttrade.celery import app as celery_app
from quanttrade.gather import Gathering
from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType, OrderStatus
from strategies.models import Account, StrategyAccount

log = logging.getLogger("quanttrade.orders")

REFRESH_TASK = "orders.tasks.portfolio_refresh"
REFRESH_MANY_TASK = "orders.tasks.portfolios_refresh_requested"
CACHE_SECONDS = 24 * 3600  # the last read is kept (its refreshed_at shows its age)
PENDING_SECONDS = 30
# Balances in these assets are cash; any other asset on a crypto venue is a coin holding.
CASH_ASSETS = frozenset({"KRW", "USD", "USDT", "USDC", "FDUSD", "BUSD", "DAI", "EUR", "JPY", "HKD", "CNY"})
# The quote a coin holding is marked in, where the venue's own coins are not priced in USDT.
COIN_QUOTE = {"UPBIT": "KRW"}
# What an account with neither strategies nor orders is read for.
DEFAULT_MARKETS = {
    "KIS": [MarketType.DOMESTIC_STOCK],
    "KIWOOM": [MarketType.DOMESTIC_STOCK],
}
MARKET_ORDER = list(MarketType.values)


def _cache_key(account_id: int) -> str:
    return f"portfolio:{account_id}"


def _pending_key(account_id: int) -> str:
    return f"portfolio:pending:{account_id}"


def kst_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(KST).date()


# --- reading --------------------------------------------------------------------------------


def account_market_types(account: Account) -> list[str]:
    """The markets to read for ``account``: those of its linked strategies and of its orders
    (``settings["portfolio_markets"]`` replaces them when set), else the venue's default."""
    configured = (account.settings or {}).get("portfolio_markets")
    if isinstance(configured, list) and configured:
        kinds = {str(kind) for kind in configured if kind in MARKET_ORDER}
    else:
        kinds = set(
            StrategyAccount.objects.filter(account=account).values_list("strategy__market_type", flat=True)
        )
        kinds.update(
            Order.objects.filter(account=account).order_by().values_list("market_type", flat=True).distinct()
        )
    if not kinds:
        kinds = set(DEFAULT_MARKETS.get(account.exchange.upper(), [MarketType.SPOT]))
    return sorted(kinds, key=MARKET_ORDER.index)


def _read_venue(
    adapter: ExchangeAdapter, market_types: Iterable[str], errors: list[str]
) -> tuple[list[BalanceLine], list[VenuePosition]]:
    balances: list[BalanceLine] = []
    positions: list[VenuePosition] = []
    balances_read = False
    for market_type in market_types:
        try:
            holdings = adapter.holdings(market_type)
        except VenueError as error:
            errors.append(f"{market_type}: {error.message}")
            continue
        except Exception as error:  # a bug in one adapter must not hide the others
            log.exception("포트폴리오 조회 내부 오류: %s %s", adapter.display_name, market_type)
            errors.append(f"{market_type}: " + _("Internal error: %(error)s") % {"error": error})
            continue
        if not (adapter.shared_balances and balances_read):
            balances.extend(_balance_line(market_type, b) for b in holdings.balances.values())
            balances_read = True
        positions.extend(holdings.positions)
    return balances, positions


def _balance_line(market_type: str, balance: Balance) -> BalanceLine:
    return BalanceLine(
        market_type=market_type, asset=balance.asset.upper(), free=balance.free, locked=balance.locked
    )


def _coin_positions(
    exchange: str, balances: list[BalanceLine], fills: dict[tuple[str, str], list[Fill]]
) -> list[VenuePosition]:
    """Spot coins held (balances in a non-cash asset) as positions to mark: quoted in the
    currency the account traded them in (its fills), else the venue's usual quote."""
    coins: dict[str, Decimal] = {}
    for line in balances:
        if line.asset not in CASH_ASSETS and line.total:
            coins[line.asset] = coins.get(line.asset, ZERO) + line.total
    traded = {symbol for market_type, symbol in fills if market_type == MarketType.SPOT}
    positions = []
    for asset, quantity in coins.items():
        quote = next(
            (s.split("/", 1)[1] for s in sorted(traded) if s.startswith(f"{asset}/")),
            COIN_QUOTE.get(exchange, "USDT"),
        )
        positions.append(
            VenuePosition(
                market_type=MarketType.SPOT, symbol=f"{asset}/{quote}", quantity=quantity, currency=quote
            )
        )
    return positions


def _instrument(account: Account, position: VenuePosition) -> str:
    if position.instrument:
        return position.instrument
    exchange = account.exchange if position.market_type in CRYPTO_MARKETS else ""
    return instrument_for(position.market_type, position.symbol, exchange=exchange)


def _position_line(
    account: Account, position: VenuePosition, pnl: PnlResult, marks: dict[str, Any]
) -> PositionLine:
    instrument = _instrument(account, position)
    entry = position.entry_price
    if entry is None and pnl.quantity == position.quantity:
        entry = pnl.entry_price  # the fills explain the whole position: their FIFO entry
    record = marks.get(instrument)
    mark, source = (record.price, "price") if record is not None else (position.mark_price, "venue")
    if mark is None:
        source = ""
    if mark is not None and entry is not None:
        unrealised: Decimal | None = position.quantity * (mark - entry)
    else:
        unrealised = position.unrealised_pnl
    return PositionLine(
        market_type=position.market_type,
        symbol=position.symbol,
        instrument=instrument,
        quantity=position.quantity,
        currency=position.currency.upper(),
        margin=position.market_type in DERIVATIVES,
        entry_price=entry,
        mark_price=mark,
        mark_source=source,
        unrealised_pnl=unrealised,
        realised_pnl=pnl.realised,
        fees=pnl.fees,
        leverage=position.leverage,
        liquidation_price=position.liquidation_price,
    )


def _totals(
    balances: list[BalanceLine],
    positions: list[PositionLine],
    realised: dict[str, PnlResult],
) -> dict[str, CurrencyTotal]:
    totals: dict[str, CurrencyTotal] = {}

    def total(currency: str) -> CurrencyTotal:
        return totals.setdefault(currency, CurrencyTotal(currency=currency))

    for line in balances:
        if line.asset in CASH_ASSETS:
            total(line.asset).cash += line.total
    for position in positions:
        row = total(position.currency)
        if position.unrealised_pnl is not None:
            row.unrealised_pnl += position.unrealised_pnl
        if position.margin:
            row.margin_pnl += position.unrealised_pnl or ZERO
        elif position.value is not None:
            row.holdings_value += position.value
    for currency, pnl in realised.items():
        row = total(currency)
        row.realised_pnl += pnl.realised
        row.fees += pnl.fees
    return totals


def _krw_rates(currencies: Iterable[str], now: datetime) -> dict[str, Decimal]:
    """Won per unit of each currency: 1 for KRW, else the price layer's ``UPBIT:<CUR>/KRW``
    (USDT/KRW trades there). No rate is invented for the others (USD has no source here)."""
    wanted = [c for c in currencies if c != "KRW"]
    records = price_snapshots([f"UPBIT:{c}/KRW" for c in wanted], now=now) if wanted else {}
    rates = {"KRW": Decimal(1)}
    for currency in wanted:
        record = records.get(f"UPBIT:{currency}/KRW")
        if record is not None:
            rates[currency] = record.price
    return rates


def _day_pnl(account_id: int, totals: dict[str, CurrencyTotal], today: date) -> None:
    previous: dict[str, Decimal] = {}
    for snapshot in EquitySnapshot.objects.filter(account_id=account_id, day__lt=today).order_by("day"):
        previous[snapshot.currency] = snapshot.equity  # the newest day wins
    for currency, row in totals.items():
        if currency in previous:
            row.day_pnl = row.equity - previous[currency]


def portfolio_read(account: Account, *, now: datetime | None = None) -> Portfolio:
    """Read, mark and total ``account``'s portfolio now (no cache). Never raises for a
    venue's failure: see ``Portfolio.errors``."""
    now = now or timezone.now()
    errors: list[str] = []
    balances: list[BalanceLine] = []
    venue_positions: list[VenuePosition] = []
    try:
        adapter = adapter_for(account)
    except VenueError as error:
        errors.append(error.message)
    else:
        try:
            balances, venue_positions = _read_venue(adapter, account_market_types(account), errors)
        finally:
            adapter.close()
    currencies: dict[tuple[str, str], str] = {}
    fills = account_fills(account.pk, currencies)
    venue_positions += _coin_positions(account.exchange.upper(), balances, fills)
    quotes = {key: quote_currency(key[0], key[1], currencies.get(key, "")) for key in fills}
    pnls = {key: fifo_pnl(group, quotes[key]) for key, group in fills.items()}
    instruments = sorted({_instrument(account, p) for p in venue_positions})
    marks = price_snapshots(instruments, now=now) if instruments else {}
    positions = [
        _position_line(account, p, pnls.get((p.market_type, p.symbol.upper())) or PnlResult(), marks)
        for p in venue_positions
    ]
    realised: dict[str, PnlResult] = {}
    for (market_type, symbol), pnl in pnls.items():
        bucket = realised.setdefault(quotes[(market_type, symbol)], PnlResult())
        bucket.realised += pnl.realised
        bucket.fees += pnl.fees
    totals = _totals(balances, positions, realised)
    _day_pnl(account.pk, totals, kst_today(now))
    rates = _krw_rates(totals, now)
    unconverted = sorted(c for c in totals if c not in rates)
    converted = [c for c in totals if c in rates]
    total_krw = sum((totals[c].equity * rates[c] for c in converted), ZERO) if converted else None
    return Portfolio(
        account_id=account.pk,
        account_name=account.name,
        exchange=account.exchange,
        refreshed_at=now,
        balances=balances,
        positions=positions,
        totals=totals,
        total_krw=total_krw,
        unconverted=unconverted,
        errors=errors,
    )


# --- cache, refresh, publish ----------------------------------------------------------------


def portfolio_cached(account_id: int) -> Portfolio | None:
    """The last portfolio read for the account, or None (never read, or the cache is down)."""
    try:
        data = cache.get(_cache_key(account_id))
    except Exception as exc:  # the cache is a convenience: an outage must not break a page
        log.warning("포트폴리오 캐시 읽기 실패: account=%s %s", account_id, exc)
        return None
    return Portfolio.from_dict(data) if data else None


def portfolio_refresh(account: Account, *, now: datetime | None = None) -> Portfolio:
    """Read the account's portfolio, cache it, push it to the staff ``portfolio`` topic and,
    when every market was read, keep it as today's equity snapshot."""
    portfolio = portfolio_read(account, now=now)
    data = portfolio.to_dict()
    try:
        cache.set(_cache_key(account.pk), data, CACHE_SECONDS)
    except Exception as exc:
        log.warning("포트폴리오 캐시 쓰기 실패: account=%s %s", account.pk, exc)
    group_send("portfolio", {"type": "portfolio.update", "portfolio": data})
    if portfolio.complete:
        equity_snapshot_record(portfolio)
    else:
        log.warning("포트폴리오 조회 오류: account=%s %s", account.name, portfolio.error)
    return portfolio


def portfolio_get(account: Account) -> Portfolio:
    """The cached portfolio, read now when there is none."""
    return portfolio_cached(account.pk) or portfolio_refresh(account)


def portfolios_refresh(*, now: datetime | None = None) -> int:
    """Refresh every active account (the periodic task); returns how many were read."""
    count = 0
    for account in Account.objects.filter(is_active=True).order_by("pk"):
        try:
            portfolio_refresh(account, now=now)
            count += 1
        except Exception:  # one account's bug must not stop the others
            log.exception("포트폴리오 갱신 실패: account=%s", account.name)
    return count


# A refresh asked for after a fill yields to order execution: while orders wait in the queue
# (a fan-out, a burst) it is put off, 1 s, then 2, 4, ... but never by more than this in all.
REFRESH_YIELD_MAX_SECONDS = 30.0


# With a broker, a worker process gathers the refreshes its fills ask for during this long and
# sends them as one message (a 1,000-account fan-out's fills were a broker publish each, ~12 %
# of the workers' CPU while the fan-out's later orders waited for it).
REFRESH_GATHER_SECONDS = 0.25


def portfolio_refresh_soon(account_id: int) -> None:
    """Ask for a refresh of the account's portfolio (after a fill). One request stands at a
    time per account: the worker clears the mark before it reads, so a fill recorded after the
    read has begun asks again. The request goes through the broker's background queue, which a
    worker takes only when no order execution waits in the first (settings.CELERY_TASK_QUEUES;
    in embedded mode to the order pool's background thread, orders.handoff), and yields to
    queued orders (``portfolios_refresh_requested``). With a broker, the requests of one
    process are gathered for REFRESH_GATHER_SECONDS and sent as one message
    (``_refresh_gathered``). Never raises."""
    if handoff.current() is None:
        _gathered.add((account_id, time.time()))
        return
    try:
        if _mark_pending(account_id):
            _refresh_send([account_id], None, 0.0)
    except Exception as exc:  # a cache outage must not fail the order's recording
        log.warning("포트폴리오 갱신 요청 실패: account=%s %s", account_id, exc)


def _mark_pending(account_id: int) -> bool:
    """Mark the account's refresh as asked for; False when it already is (a request stands)."""
    return bool(cache.add(_pending_key(account_id), 1, PENDING_SECONDS + REFRESH_YIELD_MAX_SECONDS))


def _mark_pending_each(account_ids: list[int]) -> list[int]:
    """:func:`_mark_pending` of several accounts, in one round trip where the cache can
    (quanttrade.cache); the accounts that were not asked for already."""
    added = add_each(
        [_pending_key(account_id) for account_id in account_ids],
        1,
        PENDING_SECONDS + REFRESH_YIELD_MAX_SECONDS,
    )
    return [account_id for account_id, new in zip(account_ids, added, strict=True) if new]


def _refresh_gathered(requests: list[tuple[int, float]]) -> list[int]:
    """Send the refreshes this process's fills asked for (``(account, when asked)``), gathered
    for REFRESH_GATHER_SECONDS (quanttrade.gather): each account once, and not one already asked
    for by another process (the pending mark, set as they are sent: a process killed before
    leaves no mark that would hold the next fill's request back). Returns the accounts sent."""
    accounts: dict[int, float] = {}
    for account_id, asked_at in requests:
        accounts.setdefault(account_id, asked_at)
    try:
        ids = _mark_pending_each(list(accounts))
        if ids:
            _refresh_send(ids, min(accounts.values()), 0.0)
    except Exception as exc:  # a broker or cache outage: the periodic refresh reads them
        log.warning("포트폴리오 갱신 요청 실패: accounts=%s %s", sorted(accounts), exc)
        return []
    return ids


_gathered: Gathering[tuple[int, float]] = Gathering(
    REFRESH_GATHER_SECONDS, _refresh_gathered, "portfolio-refresh-requests"
)
atexit.register(_gathered.flush)


def refresh_requests_flush() -> list[int]:
    """Send the refreshes this process has gathered now (shutdown, tests)."""
    return _gathered.flush() or []


def refresh_requests_discard() -> None:
    """Drop the refreshes this process has gathered, unsent (tests)."""
    _gathered.discard()


def _refresh_send(account_ids: list[int], asked_at: float | None, delay: float) -> None:
    pool = handoff.current()
    if pool is not None:
        pool.submit(portfolios_refresh_requested, account_ids, asked_at, delay=delay, lane=handoff.BACKGROUND)
    else:
        celery_app.send_task(
            REFRESH_MANY_TASK, args=[account_ids, asked_at], countdown=delay or None, retry=False
        )


def _orders_waiting() -> bool:
    """Whether order executions wait: embedded, the order pool says so without a query
    (orders.handoff), and a webhook being accepted by the process counts as orders on their
    way (its intake shares the interpreter with the refresh); otherwise, or when the pool has
    none, any queued order."""
    pool = handoff.current()
    if pool is not None and (pool.orders_waiting() or handoff.intakes_running()):
        return True
    return Order.objects.filter(status=OrderStatus.QUEUED).exists()


def portfolios_refresh_requested(account_ids: list[int], asked_at: float | None = None) -> int:
    """Run the refreshes asked for by :func:`portfolio_refresh_soon` (the task's body), one
    account after another — unless orders are waiting to be executed: a refresh is a venue
    read and the account's whole FIFO (~10 ms of CPU), and a fan-out's last orders must not
    queue behind a refresh per account filled before them. The accounts not yet refreshed then
    come back later (doubling from 1 s), and run at the latest REFRESH_YIELD_MAX_SECONDS after
    they were asked for. Returns how many were refreshed."""
    asked_at = asked_at or time.time()
    refreshed = 0
    for index, account_id in enumerate(account_ids):
        waited = time.time() - asked_at
        if waited < REFRESH_YIELD_MAX_SECONDS and _orders_waiting():
            delay = min(max(1.0, waited), REFRESH_YIELD_MAX_SECONDS - waited)
            try:
                _refresh_send(list(account_ids[index:]), asked_at, delay)
                return refreshed
            except Exception as exc:  # nowhere to put it off to: refresh now
                log.warning("포트폴리오 갱신 연기 실패 (지금 갱신): accounts=%s %s", account_ids[index:], exc)
        try:
            cache.delete(_pending_key(account_id))
        except Exception as exc:
            log.warning("포트폴리오 갱신 표시 삭제 실패: account=%s %s", account_id, exc)
        account = Account.objects.filter(pk=account_id).first()
        if account is None:
            continue
        try:
            portfolio_refresh(account)
            refreshed += 1
        except Exception:  # one account's bug must not stop the others
            log.exception("포트폴리오 갱신 실패: account=%s", account.name)
    return refreshed


def portfolio_refresh_requested(account_id: int, asked_at: float | None = None) -> Portfolio | None:
    """One account's requested refresh (the task messages sent before requests were
    gathered): :func:`portfolios_refresh_requested` of that account; its portfolio when read."""
    if not portfolios_refresh_requested([account_id], asked_at):
        return None
    return portfolio_cached(account_id)


# --- equity snapshots -----------------------------------------------------------------------


def equity_snapshot_record(portfolio: Portfolio) -> int:
    """Keep the portfolio's equity per currency as its day's snapshot (KST day; the last
    refresh of the day wins, so each day ends with its closing equity). Returns the rows."""
    day = kst_today(portfolio.refreshed_at)
    # One upsert for every currency (INSERT … ON CONFLICT DO UPDATE): ``update_or_create`` per
    # currency was a SELECT and a write each, a quarter of a refresh after every fill.
    EquitySnapshot.objects.bulk_create(
        [
            EquitySnapshot(
                account_id=portfolio.account_id,
                day=day,
                currency=currency,
                equity=row.equity,
                unrealised_pnl=row.unrealised_pnl,
                realised_pnl=row.realised_pnl,
                taken_at=portfolio.refreshed_at,
            )
            for currency, row in portfolio.totals.items()
        ],
        update_conflicts=True,
        unique_fields=["account", "day", "currency"],
        update_fields=["equity", "unrealised_pnl", "realised_pnl", "taken_at"],
    )
    return len(portfolio.totals)


def equity_curve(account_id: int, limit_days: int = 365) -> dict[str, list[tuple[date, Decimal]]]:
    """The account's daily equity per currency, oldest first (at most ``limit_days`` days)."""
    rows = EquitySnapshot.objects.filter(account_id=account_id).order_by("-day")[: limit_days * 4]
    curve: dict[str, list[tuple[date, Decimal]]] = {}
    for snapshot in reversed(list(rows)):
        curve.setdefault(snapshot.currency, []).append((snapshot.day, snapshot.equity))
    return curve
