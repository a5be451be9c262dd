"""What the four KIS markets share: the account (number, client, clock, ledger) and the order
flow each market follows — record the intent, send, read the accepted order back, look an
unanswered one up, cancel what is open. A market supplies its order body, TR ids, order list,
position and cancel (domestic_stock.py, overseas_stock.py, domestic_fo.py, overseas_fo.py).

KIS has no client order id, so "an order is never placed twice" rests on the broker-neutral
ledger (brokerkit/ledger.py): the intent is recorded before sending, and after a timeout the
order is looked for in that market's order list and claimed atomically.

An order answer carries the order number only, so every accepted order is read once from the
same order list (by that number) before it is reported: a market order that traded reads
filled at once, a resting one open. That read never fails the placement.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar, NamedTuple

from django.utils.translation import gettext as _

from orders.exchanges.base import (
    CancelAllIncomplete,
    Holdings,
    OrderRejected,
    OrderRequest,
    OrderResult,
    OrderUncertain,
    PermanentVenueError,
    VenueError,
    VenuePosition,
)
from orders.exchanges.brokerkit.ledger import Intent, OrderLedger
from orders.exchanges.brokerkit.venue_orders import VenueOrder, find_order, state_after_acceptance
from orders.exchanges.kis.client import KisClient, kis_error
from orders.exchanges.kis.sessions import KST, kst_now
from quanttrade.vocabulary import ZERO, MarketType, OrderStatus, Side, to_decimal

log = logging.getLogger("quanttrade.orders")
DISPLAY_NAME = "한투"


class KisAccount:
    """One KIS account as every market sees it. ``clock`` (KST) is the only clock: F&O sessions,
    inquiry dates and intent times all read it, so tests can pin it."""

    def __init__(self, account: Any, clock: Callable[[], datetime] = kst_now):
        self.settings: dict[str, Any] = dict(account.settings or {})
        number = str(self.settings.get("account_number", "")).replace("-", "")
        if len(number) < 8:
            raise PermanentVenueError(_('KIS account number is not set (Account.settings["account_number"])'))
        self.clock = clock
        self.cano = number[:8]
        self.product_code = str(self.settings.get("product_code") or number[8:10] or "01")
        self.client = KisClient(
            app_key=account.api_key,
            app_secret=account.api_secret,
            virtual=account.is_testnet,
            base_url=self.settings.get("api_base_url") or None,
            timeout=float(self.settings.get("timeout_seconds", 10)),
            rate_per_second=int(self.settings["rate_limit_per_second"])
            if self.settings.get("rate_limit_per_second")
            else None,
        )
        self.ledger = OrderLedger(
            namespace="kis", account_id=account.pk, tz=KST, error=kis_error, http_timeout=self.client.timeout
        )

    def fields(self) -> dict[str, str]:
        """CANO and ACNT_PRDT_CD, which every account TR takes."""
        return {"CANO": self.cano, "ACNT_PRDT_CD": self.product_code}

    def today(self) -> date:
        return self.clock().date()


def unsupported(what: str) -> OrderRejected:
    return OrderRejected(
        _("%(order_type)s orders are not supported on %(venue)s")
        % {"order_type": what, "venue": DISPLAY_NAME}
    )


class OrderPlan(NamedTuple):
    """One order request as KIS takes it."""

    path: str
    tr_id: str
    body: dict[str, Any]
    # What was changed from the request before sending (a price moved onto the step), shown on
    # the order's result.
    notes: tuple[str, ...] = ()


def holding_position(
    market_type: str,
    symbol: str,
    quantity: Decimal,
    currency: str,
    row: dict[str, Any],
    entry_key: str,
    mark_key: str,
    *,
    exchange: str = "",
) -> VenuePosition:
    """A balance row as a VenuePosition: the entry and mark prices are read from ``entry_key``
    and ``mark_key`` where the row carries them (non-zero). ``exchange`` (overseas stocks) names
    the price-layer instrument ``EXCD:SYMBOL``."""

    def price(key: str) -> Decimal | None:
        value = to_decimal(row.get(key)) if key else None
        return value if value else None

    return VenuePosition(
        market_type=market_type,
        symbol=symbol,
        quantity=quantity,
        currency=currency.upper(),
        entry_price=price(entry_key),
        mark_price=price(mark_key),
        instrument=f"{exchange}:{symbol}" if exchange else "",
    )


class KisMarket(ABC):
    """One market of a KIS account: its order body and TR ids, order list, position and cancel,
    over the shared placement and lookup flow."""

    market_type: ClassVar[MarketType]
    # The order body's product code field (recorded in the intent as sent).
    product_field: ClassVar[str] = "PDNO"

    def __init__(self, kis: KisAccount):
        self.kis = kis
        self.client = kis.client

    # --- what each market supplies ----------------------------------------------------
    @abstractmethod
    def build_order(self, request: OrderRequest, side: str, qty: Decimal) -> OrderPlan:
        """The order request for ``qty`` (whole) on ``side``; refuses unsupported order types."""

    @abstractmethod
    def intent_orders(self, intent: Intent) -> list[VenueOrder]:
        """The venue's orders an intent may be among: same market, product and side, from the
        day it was sent."""

    @abstractmethod
    def open_orders(self) -> list[VenueOrder]:
        """The orders cancel_all looks at (those with something left are cancelled)."""

    @abstractmethod
    def cancel(self, order: VenueOrder) -> None: ...

    @abstractmethod
    def position(self, symbol: str, params: dict[str, Any]) -> Decimal:
        """Signed holding of ``symbol`` (negative is short)."""

    @abstractmethod
    def holdings(self, params: dict[str, Any]) -> Holdings:
        """This market's cash (where its balance inquiry has it) and every open position."""

    def session_of(self, plan: OrderPlan) -> str:
        """The F&O session an order was sent to (only domestic F&O has a night one)."""
        return "day"

    def product(self, symbol: str) -> str:
        """The product code as the order lists show it."""
        return symbol.upper()

    # --- quantities -------------------------------------------------------------------
    def quantity(self, request: OrderRequest) -> tuple[str, Decimal]:
        """(side, whole quantity). Negative qty_per closes that percent of the holding."""
        qty = request.qty_per
        if qty is None:
            raise OrderRejected(_("qty_per is required"))
        side = request.side
        if request.is_close:
            held = self.position(request.symbol, request.params or {})
            if held == 0:
                raise OrderRejected(_("No position to close for %(symbol)s") % {"symbol": request.symbol})
            qty = (abs(held) * min(abs(qty), Decimal(100)) / 100).to_integral_value(rounding=ROUND_DOWN)
            side = Side.SELL if held > 0 else Side.BUY
        if qty < 1 or qty != qty.to_integral_value():
            raise OrderRejected(_("Quantity must be a whole number of at least 1: %(qty)s") % {"qty": qty})
        return side, qty

    # --- place ------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> OrderResult:
        side, qty = self.quantity(request)
        plan = self.build_order(request, side, qty)
        ledger = self.kis.ledger
        # Record what is about to be sent, so a timeout can be resolved by looking it up.
        intent = ledger.new_intent(
            request.market_type,
            str(plan.body.get(self.product_field)),
            side,
            qty,
            self.kis.clock(),
            exchange=str(plan.body.get("OVRS_EXCG_CD") or ""),
            session=self.session_of(plan),
        )
        ledger.record(request.client_order_id, intent)
        log.info(
            "한투 주문 전송: %s %s %s %s qty=%s tr=%s",
            request.market_type,
            request.symbol,
            side,
            request.order_type,
            qty,
            plan.tr_id,
        )
        with ledger.in_flight(intent):
            try:
                data = self.client.request(
                    "POST",
                    plan.path,
                    plan.tr_id,
                    body=plan.body,
                    place=True,
                    use_hashkey=bool(self.kis.settings.get("use_hashkey")),
                )
                output = data.get("output") or {}
                if isinstance(output, list):
                    output = output[0] if output else {}
                odno = str(output.get("ODNO") or output.get("odno") or "")
                intent["odno"] = odno
                intent["branch"] = str(output.get("KRX_FWDG_ORD_ORGNO") or "")
                ledger.record(request.client_order_id, intent)
                if odno:
                    # Claimed before the in-flight mark goes: a lookup then sees one or the other.
                    ledger.bind(odno, request.client_order_id)
            except OrderUncertain:
                raise  # the intent stays: the lookup resolves it
            except VenueError:
                # A definite answer (refused, rate limited, token…): nothing was placed.
                ledger.forget(request.client_order_id)
                raise
        accepted = OrderResult(
            status=OrderStatus.OPEN,
            exchange_order_id=odno,
            quantity=qty,
            message=" / ".join(part for part in (str(data.get("msg1") or "").strip(), *plan.notes) if part),
        )
        return self._state_after_acceptance(intent, accepted)

    def _state_after_acceptance(self, intent: Intent, accepted: OrderResult) -> OrderResult:
        return state_after_acceptance(
            lambda: self.find(intent), accepted, venue=DISPLAY_NAME, order_no=intent["odno"]
        )

    # --- lookup -----------------------------------------------------------------------
    def find(self, intent: Intent) -> VenueOrder | None:
        """The intent's order by its known order number."""
        return find_order(self.intent_orders(intent), intent["odno"])

    def lookup(self, client_order_id: str, intent: Intent) -> OrderResult | None:
        """The state of the order an intent became; None when it never reached the venue."""
        if intent["odno"]:
            found = self.find(intent)
            if found is not None:
                return found.result()
            return OrderResult(
                status=OrderStatus.OPEN,
                exchange_order_id=intent["odno"],
                quantity=to_decimal(intent["qty"], ZERO),
            )
        # Sent without an answer: the venue's order list says whether it arrived.
        found = self.kis.ledger.claim(client_order_id, intent, self.intent_orders(intent))
        if found is None:
            return None
        intent["odno"] = found.order_no
        self.kis.ledger.record(client_order_id, intent)
        return found.result()

    # --- cancel -----------------------------------------------------------------------
    def cancel_open(self, order_no: str) -> bool:
        """Cancel the order ``order_no`` when this market's open-order list shows something of
        it left (that list's rows carry what the cancel TR needs); False when it does not
        (filled, cancelled, or not this market's)."""
        found = find_order(self.open_orders(), order_no)
        if found is None or found.remaining <= 0:
            return False
        self.cancel(found)
        return True

    def cancel_all(self, symbol: str | None) -> int:
        return cancel_each(self.open_orders(), self.product(symbol) if symbol else None, self.cancel)


def cancel_each(orders: list[VenueOrder], product: str | None, cancel: Callable[[VenueOrder], None]) -> int:
    """Cancel every order with something left (of ``product`` when given), each tried once: a
    failing cancel never stops the others. Returns how many were cancelled; when any failed,
    raises :class:`CancelAllIncomplete` with that count and every failure."""
    count = 0
    failures: list[str] = []
    seen: set[str] = set()
    for order in orders:
        if (product and order.product != product.upper()) or order.remaining <= 0:
            continue
        if order.order_no in seen:
            continue  # listed twice (two inquiries that overlap): tried once
        seen.add(order.order_no)
        try:
            cancel(order)
        except VenueError as e:
            log.warning("한투 취소 실패: odno=%s %s", order.order_no, e.message)
            failures.append(f"{order.order_no}: {e.message}")
            continue
        count += 1
    if failures:
        raise CancelAllIncomplete(
            _("%(venue)s cancel-all: %(cancelled)d cancelled, %(failed)d failed (%(details)s)")
            % {
                "venue": DISPLAY_NAME,
                "cancelled": count,
                "failed": len(failures),
                "details": "; ".join(failures),
            },
            cancelled=count,
            failures=failures,
        )
    return count
