"""The paper venue: simulated fills against the price layer, its book kept in the database.

Rules (SPEC §2.1, §4):
- MARKET orders fill at once at ``prices.services.price_latest`` of the order's instrument; with
  no price the order is rejected (``시세 정보가 없습니다: <instrument>``).
- LIMIT-like and STOP orders rest (``open``) and are filled by :func:`paper_match`, which the
  periodic task runs: a LIMIT buy fills when the price is at or below the limit, a sell at or
  above; a STOP triggers when the price reaches ``stop_price`` (buy: at or above, sell: at or
  below) and then fills at market (STOP_MARKET) or rests as a limit (STOP_LIMIT). A resting
  order fills at the observed price, which is never worse than its limit.
- ``qty_per``: crypto = percent (spot buy: of the free quote balance, spot sell: of the free
  base balance, futures: of equity × leverage); stocks and futures/options = absolute
  quantity. A negative ``qty_per`` closes that percent of the position (SELL closes a long,
  BUY closes a short).
- Spot and stocks settle in cash; crypto futures and futures/options hold margin
  (notional / leverage) in the quote balance's ``locked`` and realise PnL on reduction.
  Contract multipliers are not modelled (1 per unit of price).
- Funds for a resting order are reserved (moved from ``free`` to ``locked``) when it is placed
  and released when it fills or is cancelled. No fees.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.db import DatabaseError, transaction
from django.db.models import Subquery
from django.utils.translation import gettext as _

from orders.exchanges.base import (
    Balance,
    ExchangeAdapter,
    Holdings,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderResult,
    VenuePosition,
)
from orders.models import PaperBalance, PaperOrder, PaperPosition
from prices.records import PriceRecord, instrument_for
from prices.services import price_latest
from quanttrade.prepared import PreparedSelect, PreparedUpdate, insert_returning_key
from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType, OrderStatus, OrderType, Side, decimal_str
from strategies.models import Account

log = logging.getLogger("quanttrade.orders")

DERIVATIVES = frozenset(
    {MarketType.FUTURES, MarketType.DOMESTIC_FUTUREOPTION, MarketType.OVERSEAS_FUTUREOPTION}
)
# Order types that behave as MARKET when they carry no price.
MARKET_WITHOUT_PRICE = frozenset(
    {OrderType.MARKET, OrderType.BEST_LIMIT, OrderType.PRE_MARKET, OrderType.AFTER_MARKET}
)
STOPS = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})

CRYPTO_STEP = Decimal("0.00000001")
WHOLE = Decimal("1")
HUNDRED = Decimal("100")
ZERO = Decimal("0")


def quote_currency(market_type: str, symbol: str, currency: str = "", params: dict | None = None) -> str:
    """The asset a trade in ``symbol`` is paid in."""
    if market_type in CRYPTO_MARKETS:
        return symbol.split("/", 1)[1].split(":", 1)[0].upper() if "/" in symbol else (currency or "USDT")
    if market_type.startswith("DOMESTIC_"):
        return "KRW"
    return (currency or str((params or {}).get("currency") or "") or "USD").upper()


def base_asset(symbol: str) -> str:
    return symbol.split("/", 1)[0].upper()


def quantize_amount(market_type: str, amount: Decimal) -> Decimal:
    """Crypto to 8 decimals, securities to whole shares/contracts (always rounding down)."""
    step = CRYPTO_STEP if market_type in CRYPTO_MARKETS else WHOLE
    return amount.quantize(step, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class _Fill:
    amount: Decimal
    price: Decimal


class PaperAdapter(ExchangeAdapter):
    """One paper account. Every mutation runs in one transaction holding the account row."""

    display_name = "Paper"
    # A client order id is unique across every paper order (PaperOrder.client_order_id): a
    # repeat returns the existing order, whatever its state.
    client_id_refused_in_every_state = True
    # One book per account: every market's cash is in the same PaperBalance rows.
    shared_balances = True

    # --- reads ------------------------------------------------------------------------------

    def holdings(self, market_type: str) -> Holdings:
        """The book's balances (assets with nothing dropped) and its positions of
        ``market_type`` with their entry price (spot coins stay balances)."""
        balances = {asset: b for asset, b in self.balances().items() if b.total != 0}
        positions = [
            VenuePosition(
                market_type=p.market_type,
                symbol=p.symbol,
                quantity=p.quantity,
                currency=p.currency,
                entry_price=p.entry_price or None,
            )
            for p in PaperPosition.objects.filter(account=self.account, market_type=market_type).exclude(
                quantity=0
            )
        ]
        return Holdings(market_type=market_type, balances=balances, positions=positions)

    def balances(self) -> dict[str, Balance]:
        return {
            b.asset: Balance(asset=b.asset, free=b.free, locked=b.locked)
            for b in PaperBalance.objects.filter(account=self.account)
        }

    def position(self, market_type: str, symbol: str) -> Decimal:
        if market_type == MarketType.SPOT:
            bal = PaperBalance.objects.filter(account=self.account, asset=base_asset(symbol)).first()
            return bal.free + bal.locked if bal else ZERO
        pos = PaperPosition.objects.filter(
            account=self.account, market_type=market_type, symbol=symbol
        ).first()
        return pos.quantity if pos else ZERO

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        paper = PaperOrder.objects.filter(
            account=self.account, client_order_id=request.client_order_id
        ).first()
        return paper_result(paper) if paper else None

    # --- writes -----------------------------------------------------------------------------

    def place_order(self, request: OrderRequest) -> OrderResult:
        with transaction.atomic():
            book = _Book.lock(self.account.pk, self.account)
            existing = book.placed_under(request.client_order_id)
            if existing is not None:
                # The same client id again (a retry after an uncertain outcome): never place twice.
                return paper_result(existing)
            paper = self._new_order(book, request)
            if paper.order_type == OrderType.MARKET:
                record = book.price(paper.instrument)
                if record is None:
                    raise OrderRejected(
                        _("No price data for %(instrument)s") % {"instrument": paper.instrument}
                    )
                # checks the funds, settles, saves
                _fill(book, paper, record.price, record.feed, placement=True)
            else:
                _reserve(book, paper)
                _paper_save(paper)
                record = book.price(paper.instrument)
                if record is not None:
                    _match(book, paper, record.price, record.feed)
            return paper_result(paper)

    def cancel_order(self, request: OrderRequest, exchange_order_id: str) -> OrderResult:
        """Cancel the resting paper order placed with ``request`` (its reserved funds go back);
        one already filled or cancelled is returned as it is."""
        with transaction.atomic():
            book = _Book.lock(self.account.pk)
            paper = PaperOrder.objects.filter(
                account=book.account, client_order_id=request.client_order_id
            ).first()
            if paper is None:
                raise OrderNotFound(_("The venue has no such order"))
            if paper.status == OrderStatus.OPEN:
                _release(book, paper)
                paper.status = OrderStatus.CANCELLED
                paper.message = _("Cancelled on request")
                paper.save()
            return paper_result(paper)

    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        return len(paper_cancel_all(self.account, market_type, symbol))

    # --- sizing -----------------------------------------------------------------------------

    def _new_order(self, book: _Book, request: OrderRequest) -> PaperOrder:
        account = book.account
        market_type = request.market_type
        order_type = request.order_type
        if order_type in MARKET_WITHOUT_PRICE and request.price is None:
            order_type = OrderType.MARKET
        instrument = instrument_for(
            market_type,
            request.symbol,
            exchange=_price_exchange(account),
            params=request.params,
        )
        currency = quote_currency(market_type, request.symbol, request.currency, request.params)
        if request.qty_per is None or request.qty_per == 0:
            raise OrderRejected(_("qty_per must not be zero"))
        reduce_only = request.is_close
        if reduce_only:
            amount = self._close_amount(book, request)
        elif market_type in CRYPTO_MARKETS:
            amount = self._percent_amount(book, request, order_type, instrument, currency)
        else:
            amount = request.qty_per
        amount = quantize_amount(market_type, amount)
        if amount <= 0:
            raise OrderRejected(_("The order quantity rounds down to zero"))
        return PaperOrder(
            account=account,
            client_order_id=request.client_order_id,
            venue_order_id="P" + uuid.uuid4().hex[:16].upper(),
            market_type=market_type,
            symbol=request.symbol,
            instrument=instrument,
            currency=currency,
            side=request.side,
            order_type=order_type,
            amount=amount,
            price=request.price,
            stop_price=request.stop_price,
            reduce_only=reduce_only,
        )

    def _close_amount(self, book: _Book, request: OrderRequest) -> Decimal:
        assert request.qty_per is not None
        percent = min(-request.qty_per, HUNDRED)
        if request.market_type == MarketType.SPOT:
            held = book.free(base_asset(request.symbol))
        else:
            held = book.held(request.symbol, request.market_type)
        if request.side == Side.SELL and held <= 0:
            raise OrderRejected(_("No long position to close"))
        if request.side == Side.BUY and held >= 0:
            raise OrderRejected(_("No short position to close"))
        return abs(held) * percent / HUNDRED

    def _percent_amount(
        self, book: _Book, request: OrderRequest, order_type: str, instrument: str, currency: str
    ) -> Decimal:
        assert request.qty_per is not None
        percent = request.qty_per
        if request.market_type == MarketType.SPOT and request.side == "SELL":
            return (
                _available(base_asset(request.symbol), book.free(base_asset(request.symbol)))
                * percent
                / HUNDRED
            )
        price = request.price if order_type not in (OrderType.MARKET, OrderType.STOP_MARKET) else None
        if price is None and order_type == OrderType.STOP_MARKET:
            price = request.stop_price
        if price is None:
            record = book.price(instrument)
            if record is None:
                raise OrderRejected(_("No price data for %(instrument)s") % {"instrument": instrument})
            price = record.price
        if request.market_type == MarketType.SPOT:
            return _available(currency, book.free(currency)) * percent / HUNDRED / price
        equity = _available(currency, _equity(book, currency))
        return equity * percent / HUNDRED * _leverage(book.account) / price


# The two reads of every placement, compiled once (quanttrade/prepared.py).
_BALANCES: PreparedSelect[PaperBalance] = PreparedSelect(
    lambda account_id: PaperBalance.objects.filter(account_id=account_id),
    {"account_id": PaperBalance._meta.get_field("account")},
)
# The book's lock: the account's row, locked for the caller's transaction (``_Book.lock``).
# Prepared: the ORM's compile of it was most of a paper placement's lock (~1 ms of CPU).
_LOCK: PreparedSelect[Account] = PreparedSelect(
    lambda account_id: Account.objects.select_for_update().only("id", "settings").filter(pk=account_id),
    {"account_id": Account._meta.get_field("id")},
)
# A placement's read after the lock: the book's balances, each row also saying which paper order
# was placed under the request's client id already (a retry), in one statement instead of two.
_BALANCES_AND_PLACED: PreparedSelect[PaperBalance] = PreparedSelect(
    lambda account_id, client_order_id: PaperBalance.objects.filter(account_id=account_id).annotate(
        placed=Subquery(
            PaperOrder.objects.filter(client_order_id=client_order_id).order_by("pk").values("pk")[:1]
        )
    ),
    {
        "account_id": PaperBalance._meta.get_field("account"),
        "client_order_id": PaperOrder._meta.get_field("client_order_id"),
    },
)
_BY_CLIENT_ID: PreparedSelect[PaperOrder] = PreparedSelect(
    lambda client_order_id: PaperOrder.objects.filter(client_order_id=client_order_id).order_by("pk")[:1],
    {"client_order_id": PaperOrder._meta.get_field("client_order_id")},
)


# A balance's change is one UPDATE with its SQL written once: ``save(update_fields=...)`` had
# the ORM compile it on every change, two or three times per paper fill.
_BALANCE_UPDATE: PreparedUpdate[PaperBalance] = PreparedUpdate(PaperBalance, where=("pk",))


def _paper_save(paper: PaperOrder) -> None:
    """Save a paper order: a new one (a placement) through the prepared INSERT, without the
    ORM's compile on every placement; one already stored (a resting order filled by the
    matcher) as the ORM saves it."""
    if paper._state.adding and paper.pk is None:
        insert_returning_key(paper)
    else:
        paper.save()


def _balance_save(balance: PaperBalance, *fields: str) -> None:
    """``balance.save(update_fields=fields)``, without the ORM's compile (no signals either:
    nothing listens to a paper balance's)."""
    if not _BALANCE_UPDATE.run({name: getattr(balance, name) for name in fields}, pk=balance.pk):
        raise DatabaseError("Save with update_fields did not affect any rows.")


def _balances_save(balances: tuple[PaperBalance, ...], *fields: str) -> None:
    """:func:`_balance_save` of several balances (a spot fill's quote and base) in one UPDATE:
    one statement and round trip to the database instead of one each."""
    if len({balance.pk for balance in balances}) != len(balances):
        for balance in balances:
            _balance_save(balance, *fields)
        return
    rows = [(balance.pk, {name: getattr(balance, name) for name in fields}) for balance in balances]
    if _BALANCE_UPDATE.run_each(rows) != len(rows):
        raise DatabaseError("Save with update_fields did not affect any rows.")


def _available(asset: str, amount: Decimal) -> Decimal:
    """The capital a percent applies to; rejects the order when there is none."""
    if amount <= 0:
        raise OrderRejected(_("No available %(asset)s balance") % {"asset": asset})
    return amount


# --- the book: helpers working inside the caller's transaction --------------------------------


class _Book:
    """One paper account's book inside the caller's transaction: the account row locked, its
    balances read in one query on first use and its positions read once each; the rows handed
    out are the ones later saved, so every read in the transaction sees every change made in it.

    A rolled-back savepoint leaves the cached rows holding changes the database no longer has:
    call :meth:`forget` after one."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self._balances: dict[str, PaperBalance] | None = None
        self._positions: dict[tuple[str, str], PaperPosition | None] = {}
        self._prices: dict[str, PriceRecord | None] = {}

    @classmethod
    def lock(cls, account_id: int, account: Account | None = None) -> _Book:
        """Serialise every change to one paper account's book: PostgreSQL locks the account's
        row. SQLite transactions are IMMEDIATE, so they are serialised anyway: there the
        ``account`` the caller holds (the adapter's, read with the order) is used as it is."""
        if (
            account is not None
            and account.pk == account_id
            and transaction.get_connection().vendor == "sqlite"
        ):
            return cls(account)
        locked = _LOCK.fetch(account_id=account_id)
        if not locked:
            raise Account.DoesNotExist(f"Account {account_id} does not exist")
        return cls(locked[0])

    def forget(self) -> None:
        self._balances = None
        self._positions.clear()

    def price(self, instrument: str) -> PriceRecord | None:
        """The instrument's latest price, read once per book: a placement sizes its quantity
        and fills at the same price (two reads could straddle a tick, and a 100 % buy sized at
        the lower price would then lack the funds at the higher one), with one read of the
        price layer instead of two."""
        if instrument not in self._prices:
            self._prices[instrument] = price_latest(instrument)
        return self._prices[instrument]

    def placed_under(self, client_order_id: str) -> PaperOrder | None:
        """The paper order already placed under ``client_order_id`` (a retry), if any, read
        with the book's balances in one statement (an account with no balance row yet: the
        client id alone). Read after the lock, so a placement committed meanwhile is seen."""
        rows = _BALANCES_AND_PLACED.fetch(account_id=self.account.pk, client_order_id=client_order_id)
        self._balances = {b.asset: b for b in rows}  # none is an answer too: not read again
        if not rows:
            return next(iter(_BY_CLIENT_ID.fetch(client_order_id=client_order_id)), None)
        placed = getattr(rows[0], "placed", None)
        return PaperOrder.objects.get(pk=placed) if placed is not None else None

    def _all_balances(self) -> dict[str, PaperBalance]:
        if self._balances is None:
            self._balances = {b.asset: b for b in _BALANCES.fetch(account_id=self.account.pk)}
        return self._balances

    def free(self, asset: str) -> Decimal:
        bal = self._all_balances().get(asset)
        return bal.free if bal else ZERO

    def total(self, asset: str) -> Decimal:
        bal = self._all_balances().get(asset)
        return bal.free + bal.locked if bal else ZERO

    def balance(self, asset: str) -> PaperBalance:
        """The asset's balance row, created (empty) when the account has none."""
        balances = self._all_balances()
        if asset not in balances:
            balances[asset] = PaperBalance.objects.create(account=self.account, asset=asset)
        return balances[asset]

    def held(self, symbol: str, market_type: str) -> Decimal:
        pos = self._position_row(symbol, market_type)
        return pos.quantity if pos else ZERO

    def _position_row(self, symbol: str, market_type: str) -> PaperPosition | None:
        key = (symbol, market_type)
        if key not in self._positions:
            self._positions[key] = PaperPosition.objects.filter(
                account=self.account, symbol=symbol, market_type=market_type
            ).first()
        return self._positions[key]

    def position(self, paper: PaperOrder) -> PaperPosition:
        """The position ``paper`` trades, created (flat) when the account has none."""
        pos = self._position_row(paper.symbol, paper.market_type)
        if pos is None:
            pos = PaperPosition.objects.create(
                account=self.account,
                symbol=paper.symbol,
                market_type=paper.market_type,
                currency=paper.currency,
            )
            self._positions[(paper.symbol, paper.market_type)] = pos
        return pos


def _leverage(account: Account) -> Decimal:
    try:
        leverage = Decimal(str(account.settings.get("leverage") or 1))
    except ArithmeticError:
        leverage = Decimal(1)
    return leverage if leverage > 0 else Decimal(1)


def _equity(book: _Book, currency: str) -> Decimal:
    """Quote balance (free + locked margin) plus the unrealised PnL of positions in it."""
    equity = book.total(currency)
    account = book.account
    for pos in PaperPosition.objects.filter(account=account, currency=currency).exclude(quantity=0):
        if pos.market_type not in DERIVATIVES:
            continue
        record = book.price(instrument_for(pos.market_type, pos.symbol, exchange=_price_exchange(account)))
        if record is not None:
            equity += pos.quantity * (record.price - pos.entry_price)
    return equity


def _price_exchange(account: Account) -> str:
    return str(account.settings.get("price_exchange") or "")


def _insufficient(asset: str, needed: Decimal, available: Decimal) -> OrderRejected:
    return OrderRejected(
        _("Insufficient %(asset)s balance: needed %(needed)s, available %(available)s")
        % {"asset": asset, "needed": decimal_str(needed, "0"), "available": decimal_str(available, "0")}
    )


def _opening_part(book: _Book, paper: PaperOrder) -> Decimal:
    """How much of ``paper`` opens or increases a derivative position (the rest reduces it)."""
    held = book.held(paper.symbol, paper.market_type)
    if paper.side == "BUY":
        return paper.amount - min(paper.amount, max(-held, ZERO))
    return paper.amount - min(paper.amount, max(held, ZERO))


def _requirement(book: _Book, paper: PaperOrder, price: Decimal) -> tuple[str, Decimal]:
    """The asset and the amount of it the order needs free to be placed or filled."""
    mt = paper.market_type
    if mt == MarketType.SPOT:
        if paper.side == "BUY":
            return paper.currency, paper.amount * price
        return base_asset(paper.symbol), paper.amount
    if mt in DERIVATIVES:
        return paper.currency, _opening_part(book, paper) * price / _leverage(book.account)
    # Stocks: cash for a buy; a sell needs the shares (checked separately).
    if paper.side == "BUY":
        return paper.currency, paper.amount * price
    return paper.currency, ZERO


def _check_funds(book: _Book, paper: PaperOrder, price: Decimal) -> None:
    asset, needed = _requirement(book, paper, price)
    available = book.free(asset)
    if needed > available:
        raise _insufficient(asset, needed, available)
    if paper.market_type in (MarketType.DOMESTIC_STOCK, MarketType.OVERSEAS_STOCK) and paper.side == "SELL":
        held = book.held(paper.symbol, paper.market_type)
        if paper.amount > held:
            raise OrderRejected(
                _("Insufficient holding of %(symbol)s: needed %(needed)s, held %(held)s")
                % {
                    "symbol": paper.symbol,
                    "needed": decimal_str(paper.amount, "0"),
                    "held": decimal_str(held, "0"),
                }
            )


def _reserve(book: _Book, paper: PaperOrder) -> None:
    """Check and lock the funds a resting order needs at its limit (or stop) price."""
    price = paper.price if paper.price is not None else paper.stop_price
    if price is None:  # cannot happen after intake validation; be explicit rather than guess
        raise OrderRejected(_("%(order_type)s orders require price") % {"order_type": paper.order_type})
    _check_funds(book, paper, price)
    asset, needed = _requirement(book, paper, price)
    if needed > 0:
        bal = book.balance(asset)
        bal.free -= needed
        bal.locked += needed
        _balance_save(bal, "free", "locked")
        paper.reserved = needed
        paper.reserved_asset = asset


def _release(book: _Book, paper: PaperOrder) -> None:
    if paper.reserved > 0 and paper.reserved_asset:
        bal = book.balance(paper.reserved_asset)
        bal.locked -= paper.reserved
        bal.free += paper.reserved
        _balance_save(bal, "free", "locked")
    paper.reserved = ZERO


def _fill(book: _Book, paper: PaperOrder, price: Decimal, feed: str, *, placement: bool = False) -> None:
    """Fill ``paper`` completely at ``price`` (from the price feed ``feed``): release its
    reservation, settle, mark filled."""
    _release(book, paper)
    if paper.reduce_only:
        _cap_to_position(book, paper)
    _check_funds(book, paper, price)
    if paper.market_type == MarketType.SPOT:
        _settle_spot(book, paper, price)
    elif paper.market_type in DERIVATIVES:
        _settle_derivative(book, paper, price)
    else:
        _settle_stock(book, paper, price)
    paper.status = OrderStatus.FILLED
    paper.filled = paper.amount
    paper.avg_price = price
    paper.priced_by = feed[:32]
    _paper_save(paper)
    # A placement's fill is in the order's own line (orders.services): here only at DEBUG (a
    # line written here is written inside the transaction, the database's write lock held).
    # A resting order's fill (the matcher) has no other line.
    log.log(
        logging.DEBUG if placement else logging.INFO,
        "Paper %s 주문 체결: order_id=%s %s %s %s @ %s",
        paper.market_type,
        _order_id(paper),
        paper.symbol,
        paper.side,
        decimal_str(paper.amount, "0"),
        decimal_str(price, "0"),
    )


def _cap_to_position(book: _Book, paper: PaperOrder) -> None:
    """A close never exceeds (or flips) what is held when it fills; the position may have
    shrunk since a resting close was placed."""
    if paper.market_type == MarketType.SPOT:
        held = book.free(base_asset(paper.symbol))
    else:
        held = book.held(paper.symbol, paper.market_type)
    closable = held if paper.side == Side.SELL else -held
    if closable <= 0:
        raise OrderRejected(
            _("No long position to close") if paper.side == Side.SELL else _("No short position to close")
        )
    if paper.amount > closable:
        paper.amount = quantize_amount(paper.market_type, closable)


def _order_id(paper: PaperOrder) -> str:
    """The product's order id (client ids are "qt" + its hex), for logs that match the others."""
    cid = paper.client_order_id
    try:
        return str(uuid.UUID(cid[2:])) if cid.startswith("qt") and len(cid) == 34 else cid
    except ValueError:
        return cid


def _settle_spot(book: _Book, paper: PaperOrder, price: Decimal) -> None:
    quote, base = book.balance(paper.currency), book.balance(base_asset(paper.symbol))
    notional = paper.amount * price
    if paper.side == "BUY":
        quote.free -= notional
        base.free += paper.amount
    else:
        base.free -= paper.amount
        quote.free += notional
    _balances_save((quote, base), "free")


def _settle_stock(book: _Book, paper: PaperOrder, price: Decimal) -> None:
    cash, pos = book.balance(paper.currency), book.position(paper)
    notional = paper.amount * price
    if paper.side == "BUY":
        total = pos.quantity + paper.amount
        pos.entry_price = (pos.quantity * pos.entry_price + notional) / total
        pos.quantity = total
        cash.free -= notional
    else:
        pos.quantity -= paper.amount
        cash.free += notional
        if pos.quantity == 0:
            pos.entry_price = ZERO
    _balance_save(cash, "free")
    pos.save()


def _settle_derivative(book: _Book, paper: PaperOrder, price: Decimal) -> None:
    quote, pos = book.balance(paper.currency), book.position(paper)
    signed = paper.amount if paper.side == Side.BUY else -paper.amount
    # First reduce an opposite position, realising PnL and releasing its margin.
    if pos.quantity and (pos.quantity > 0) != (signed > 0):
        closing = min(abs(signed), abs(pos.quantity))
        direction = Decimal(1) if pos.quantity > 0 else Decimal(-1)
        pnl = closing * (price - pos.entry_price) * direction
        released = pos.margin * closing / abs(pos.quantity)
        quote.locked -= released
        quote.free += released + pnl
        pos.margin -= released
        pos.quantity -= closing * direction
        signed += closing * direction
        if pos.quantity == 0:
            pos.entry_price = ZERO
            pos.margin = ZERO
    # Whatever is left opens or increases the position.
    if signed:
        margin = abs(signed) * price / _leverage(book.account)
        quote.free -= margin
        quote.locked += margin
        total = pos.quantity + signed
        pos.entry_price = (abs(pos.quantity) * pos.entry_price + abs(signed) * price) / abs(total)
        pos.quantity = total
        pos.margin += margin
    _balance_save(quote, "free", "locked")
    pos.save()


def _match(book: _Book, paper: PaperOrder, price: Decimal, feed: str) -> bool:
    """Apply one observed price to a resting order; returns True when the order changed."""
    if paper.order_type in STOPS and not paper.triggered:
        stop = paper.stop_price
        if stop is None:  # a stop order is always stored with its stop price
            return False
        hit = price >= stop if paper.side == Side.BUY else price <= stop
        if not hit:
            return False
        paper.triggered = True
        if paper.order_type == OrderType.STOP_MARKET:
            return _fill_or_cancel(book, paper, price, feed)
        paper.save(update_fields=["triggered", "updated_at"])
        log.info(
            "Paper %s 스톱 발동: order_id=%s @ %s",
            paper.market_type,
            _order_id(paper),
            decimal_str(price, "0"),
        )
        if not _limit_crossed(paper, price):
            return True
    elif not _limit_crossed(paper, price):
        return False
    return _fill_or_cancel(book, paper, price, feed)


def _limit_crossed(paper: PaperOrder, price: Decimal) -> bool:
    if paper.price is None:
        return True
    return price <= paper.price if paper.side == Side.BUY else price >= paper.price


def _fill_or_cancel(book: _Book, paper: PaperOrder, price: Decimal, feed: str) -> bool:
    """Fill at ``price``; an order that can no longer be funded is cancelled with the reason."""
    try:
        with transaction.atomic():
            _fill(book, paper, price, feed)
    except OrderRejected as error:
        book.forget()  # the savepoint's rollback undid what the book's rows still hold
        paper.refresh_from_db()
        _release(book, paper)
        paper.status = OrderStatus.CANCELLED
        paper.message = error.message
        paper.save()
        log.warning("Paper %s 주문 취소: order_id=%s %s", paper.market_type, _order_id(paper), error.message)
    return True


def paper_result(paper: PaperOrder) -> OrderResult:
    """The venue's view of a paper order, in the product's terms."""
    if paper.status == OrderStatus.FILLED:
        message = _("Filled %(amount)s @ %(price)s") % {
            "amount": decimal_str(paper.filled, "0"),
            "price": decimal_str(paper.avg_price, "0"),
        }
        if paper.priced_by:
            message += " " + _("(priced by the %(feed)s feed)") % {"feed": paper.priced_by}
    elif paper.status == OrderStatus.OPEN:
        message = _("Resting on the paper venue")
        if paper.triggered:
            message = _("Stop triggered; resting as a limit order")
    else:
        message = paper.message
    return OrderResult(
        status=paper.status,
        exchange_order_id=paper.venue_order_id,
        quantity=paper.amount,
        filled_qty=paper.filled,
        avg_price=paper.avg_price,
        message=paper.message or message,
    )


def paper_cancel_all(account: Account, market_type: str, symbol: str | None) -> list[PaperOrder]:
    """Cancel the account's resting orders (one symbol, or all when None); returns them."""
    cancelled: list[PaperOrder] = []
    with transaction.atomic():
        book = _Book.lock(account.pk)
        resting = PaperOrder.objects.filter(account=book.account, status=OrderStatus.OPEN)
        resting = resting.filter(market_type=market_type)
        if symbol:
            resting = resting.filter(symbol=symbol)
        for paper in resting.order_by("created_at"):
            _release(book, paper)
            paper.status = OrderStatus.CANCELLED
            paper.message = _("Cancelled by CANCEL_ALL_ORDER")
            paper.save()
            cancelled.append(paper)
    return cancelled


def paper_match() -> list[PaperOrder]:
    """Check every resting paper order against the latest price; returns the ones that changed
    (triggered, filled or cancelled). Each order is handled in its own short transaction."""
    changed: list[PaperOrder] = []
    resting = PaperOrder.objects.filter(status=OrderStatus.OPEN)
    for paper_id, instrument in resting.order_by("created_at").values_list("pk", "instrument"):
        record = price_latest(instrument)
        if record is None:
            continue
        with transaction.atomic():
            account_id = PaperOrder.objects.filter(pk=paper_id).values_list("account_id", flat=True).first()
            if account_id is None:
                continue
            book = _Book.lock(account_id)
            paper = PaperOrder.objects.get(pk=paper_id)
            if paper.status == OrderStatus.OPEN and _match(book, paper, record.price, record.feed):
                changed.append(paper)
    return changed
