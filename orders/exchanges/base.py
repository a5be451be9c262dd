"""The adapter interface every venue implements, and the errors it may raise.

Adapters translate their venue's failures at this boundary into :class:`VenueError`
subclasses. ``RetryableVenueError`` means the request certainly did not take effect (or the
adapter has already looked it up by client order id); ``PermanentVenueError`` means retrying
cannot help. ``OrderUncertain`` means the request may or may not have reached the venue:
the caller must look the order up by client id before doing anything else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from quanttrade.vocabulary import LIVE_STATUSES, OrderStatus, decimal_str

if TYPE_CHECKING:
    from strategies.models import Account


class VenueError(Exception):
    """A venue refused or failed a request. ``message`` is what the Order will show."""

    retryable = False

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class RetryableVenueError(VenueError):
    retryable = True


class CancelSentUnread(RetryableVenueError):  # noqa: N818 - the product's name for it
    """The venue accepted a cancel, and the order's state could not be read back after it:
    the order may still be live (it is followed as one whose cancel is outstanding)."""


class PermanentVenueError(VenueError):
    retryable = False


class OrderRejected(PermanentVenueError):  # noqa: N818 - the product's name for it
    """The venue (or the local trading rules) rejected the order; nothing was placed."""


class OrderUncertain(VenueError):  # noqa: N818 - the product's name for it
    """The request may have reached the venue (timeout after sending, a dropped answer, a 5xx
    whose outcome the venue calls unknown); look it up first, and send it again only where the
    venue proves it never got it (see ``ExchangeAdapter.client_id_refused_in_every_state``)."""

    retryable = True


class OrderNotFound(PermanentVenueError):  # noqa: N818 - the product's name for it
    """The venue has no order under the given id (never placed from here, or forgotten)."""


class AttemptTakenBack(Exception):  # noqa: N818 - the product's name for it
    """This attempt of the order was taken back by the sweep (its holder judged dead) and the
    order handed to a newer attempt: it must not be sent, nor its state written. Not a
    VenueError: the venue was never asked."""


class CancelAllIncomplete(VenueError):  # noqa: N818 - the product's name for it
    """A cancel-all tried every open order once and some cancels failed. ``cancelled`` is how
    many were cancelled; ``failures`` holds one "venue order id: venue message" per order that
    was not; ``message`` (already translated) names them, for the cancel order's result."""

    def __init__(self, message: str, *, cancelled: int, failures: list[str]):
        self.cancelled = cancelled
        self.failures = list(failures)
        super().__init__(message)


@dataclass(frozen=True)
class OrderRequest:
    """What to place. ``qty_per`` is interpreted by the adapter as SPEC §2.1 says."""

    client_order_id: str
    market_type: str
    symbol: str
    side: str  # BUY | SELL ("" for cancels)
    order_type: str
    qty_per: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    currency: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    # The venue's id of the order once it has one: a venue whose lookup by client id does not
    # reach every state (Bitget spot) reads the order by this id instead.
    exchange_order_id: str = ""

    @property
    def is_close(self) -> bool:
        return self.qty_per is not None and self.qty_per < 0


@dataclass
class OrderResult:
    """The venue's view of one order. ``status`` is an ``OrderStatus`` value."""

    status: str
    exchange_order_id: str = ""
    quantity: Decimal | None = None
    filled_qty: Decimal = Decimal("0")
    avg_price: Decimal | None = None
    message: str = ""
    cancelled_orders: int | None = None
    #: The fees the venue charged for the fills so far (None: the venue did not say).
    fee: Decimal | None = None
    fee_currency: str = ""


def state_after_cancel(known: OrderResult | None, exchange_order_id: str, *, accepted: bool) -> OrderResult:
    """The state a cancel left, from the venue's read-back of the order (``known``).

    Accepted: the read-back when it shows the order finished (cancelled, or filled before the
    cancel arrived), else `cancelled` with the fills it shows (a venue that lists only live
    orders, or updates its list a moment later: the broker order lists of KIS and Kiwoom). Not
    accepted (the venue had nothing to cancel): the read-back when it shows the order finished;
    otherwise the order's state is unknown and :class:`OrderNotFound` is raised. (The ccxt
    venues, whose read-back is the venue's own state of the order, keep an order it still shows
    live: ``CcxtAdapter.cancel_order``.)"""
    if known is not None and known.status not in LIVE_STATUSES:
        known.exchange_order_id = known.exchange_order_id or exchange_order_id
        return known
    if not accepted:
        raise OrderNotFound(_("The venue lists no open order %(order_no)s") % {"order_no": exchange_order_id})
    return OrderResult(
        status=OrderStatus.CANCELLED,
        exchange_order_id=exchange_order_id,
        quantity=known.quantity if known else None,
        filled_qty=known.filled_qty if known else Decimal(0),
        avg_price=known.avg_price if known else None,
    )


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = Decimal("0")

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True)
class VenuePosition:
    """One open position as the venue reports it. ``quantity`` is signed (negative = short) and
    in base units; the optional fields are None where the venue does not give them."""

    market_type: str
    symbol: str
    quantity: Decimal
    currency: str
    entry_price: Decimal | None = None
    leverage: Decimal | None = None
    liquidation_price: Decimal | None = None
    mark_price: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    #: The price-layer instrument id where the adapter knows it better than the symbol does.
    instrument: str = ""


@dataclass(frozen=True)
class Holdings:
    """What one market of an account holds: cash balances by asset and open positions
    (futures, F&O, stock holdings; spot coins are balances)."""

    market_type: str
    balances: dict[str, Balance] = field(default_factory=dict)
    positions: list[VenuePosition] = field(default_factory=list)


class ExchangeAdapter(ABC):
    """One account on one venue."""

    #: Name used in user-facing messages, e.g. "Binance API 오류: …".
    display_name = "Exchange"
    #: True only where the venue documents that a client order id used once is refused again
    #: whatever the earlier order's state (open, filled, cancelled): there, an order whose
    #: placement was uncertain and that a lookup cannot find may be sent again with the same id
    #: (a repeat is refused, never a second order). False: such an order is only looked up, and
    #: ends `failed` ("check the venue") when the lookups run out. See docs/venues.md.
    client_id_refused_in_every_state: bool = False
    #: True where the adapter calls :meth:`about_to_send` itself, right before the order
    #: request leaves (after any queueing for a shared client); else the execution layer marks
    #: "sending" before calling :meth:`place_order`, which is earlier but never late.
    marks_sending: bool = False
    #: True where every market of the account draws on one set of balances (a unified
    #: trading account, the paper book): the portfolio counts them once, not once per market.
    shared_balances: bool = False

    def __init__(self, account: Account):
        self.account = account
        #: Set by the execution layer: called once right before the order request leaves;
        #: returns False when that cannot be recorded (the request must then not leave).
        self.before_send: Callable[[], bool] | None = None

    def about_to_send(self) -> None:
        """Record that the order request is about to leave; refuse to send when it cannot be."""
        hook, self.before_send = self.before_send, None
        if hook is not None and not hook():
            raise RetryableVenueError(_("The order could not be marked as being sent; it will be retried"))

    def after_order(self, market_type: str, *, placed: bool) -> None:
        """Called by the execution layer once an order's attempt is over (``placed``: the venue
        took it): where the adapter keeps a balance snapshot, it refreshes (or drops) it here,
        after the order left, so the next signal is sized from it without a venue read."""
        return

    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderResult:
        """Size (from ``qty_per``) and place one order; returns the venue's state of it."""

    @abstractmethod
    def cancel_order(self, request: OrderRequest, exchange_order_id: str) -> OrderResult:
        """Cancel the one open order placed with ``request`` (the venue's id when known, else
        found by ``request.client_order_id``); returns the venue's state of it afterwards:
        `cancelled`, or `filled` / `partially_filled` when it traded before the cancel arrived.
        An order already finished at the venue is not an error: its final state is returned.
        Raises :class:`VenueError` when the cancel failed (the order may still rest)."""

    @abstractmethod
    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        """Cancel every open order for ``symbol`` (all symbols when None); returns the count."""

    @abstractmethod
    def balances(self) -> dict[str, Balance]:
        """Balances by asset."""

    @abstractmethod
    def position(self, market_type: str, symbol: str) -> Decimal:
        """Signed position size for ``symbol`` (negative = short; spot: the base holding)."""

    @abstractmethod
    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        """The venue's state of the order placed with ``request.client_order_id``, or None."""

    def check_connection(self, market_types: Collection[str] = ()) -> str:
        """Authenticate and read the account's balance, as an order would; returns a one-line
        summary of what was read (never a secret). Failures raise :class:`VenueError`.
        ``market_types`` are the markets the account's strategies trade (a venue that keeps a
        balance per market reads each)."""
        return balance_summary(self.balances())

    def holdings(self, market_type: str) -> Holdings:
        """Balances and positions of ``market_type`` for the portfolio. The default knows only
        :meth:`balances`; venues with positions override it. Raises ``VenueError``."""
        return Holdings(market_type=market_type, balances=self.balances())

    def markets(self) -> dict[str, dict[str, Any]]:
        """Trading rules per symbol (precision, minimums); empty when the venue has none."""
        return {}

    def warm(self, market_type: str) -> None:  # noqa: B027 - optional hook, no-op by default
        """Do the one-time work of a first order ahead of it (markets, tokens). Not required."""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Release connections; called when the task is done with the adapter."""


SUMMARY_ASSETS = 3


def balance_summary(balances: dict[str, Balance]) -> str:
    """ "USDT 1000 · BTC 0.5": the largest few non-zero holdings, or that there are none."""
    held = sorted((b for b in balances.values() if b.total), key=lambda b: b.total, reverse=True)
    if not held:
        return _("no balance yet")
    shown = " · ".join(f"{b.asset} {decimal_str(b.total, '0')}" for b in held[:SUMMARY_ASSETS])
    more = len(held) - SUMMARY_ASSETS
    return shown + (_(" and %(count)d more") % {"count": more} if more > 0 else "")
