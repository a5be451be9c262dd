"""The order ledger for venues without a client order id.

To keep "an order is never placed twice" without an id of our own at the venue, the intent
(market, product, side, quantity, send time) is recorded in the shared cache before the request
goes out, and the venue's order number once it is known. When the answer is lost, the order is
looked for in the venue's order list: an order of the same shape placed since the intent was sent,
not claimed by another intent, is claimed atomically (``cache.add``) and is this one; none means
the request never arrived. While another request of the same shape awaits its answer (the
in-flight counter) the lookup waits, since the match may be that one's.

The stored record is a dict with the keys ``market_type``, ``pdno`` (product as sent), ``side``,
``qty``, ``sent_at`` (YYYYMMDDHHMMSS, venue time) and ``odno`` (venue order number, "" until
known), plus whatever the venue adds. The names came with KIS and are kept so intents stored by
a running deploy stay readable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext as _

from orders.exchanges.base import RetryableVenueError
from orders.exchanges.brokerkit.venue_orders import VenueOrder
from quanttrade.vocabulary import ZERO, decimal_str, to_decimal

Intent = dict[str, Any]

INTENT_TTL = 3 * 24 * 3600
# An order at the venue stamped this much before the intent's send time may still be its own:
# the two clocks (ours, the venue's) are not the same clock.
CLOCK_SKEW = timedelta(seconds=2)
# How long past the HTTP timeout an in-flight mark lasts when its worker died mid-request.
IN_FLIGHT_MARGIN = 30
SENT_AT_FORMAT = "%Y%m%d%H%M%S"


class OrderLedger:
    """The intents of one account at one venue. ``tz`` is the venue's clock's zone (the send
    time is compared with the order list's stamps); ``error`` words a venue error message the
    broker's way; ``http_timeout`` bounds how long a request can be in flight."""

    def __init__(
        self,
        *,
        namespace: str,
        account_id: Any,
        tz: tzinfo,
        error: Callable[[str], str],
        http_timeout: float,
    ):
        self.namespace = namespace
        self.account_id = account_id
        self.tz = tz
        self.error = error
        self.http_timeout = http_timeout

    # --- keys -------------------------------------------------------------------------
    def _key(self, kind: str, name: str) -> str:
        return f"{self.namespace}:{kind}:{self.account_id}:{name}"

    def intent_key(self, client_order_id: str) -> str:
        return self._key("intent", client_order_id)

    def claim_key(self, order_no: str) -> str:
        return self._key("odno", order_no)

    def in_flight_key(self, intent: Intent) -> str:
        return self._key(
            "in-flight", ":".join(str(intent[k]) for k in ("market_type", "pdno", "side", "qty"))
        )

    # --- intents ----------------------------------------------------------------------
    @staticmethod
    def new_intent(
        market_type: str, product: str, side: str, qty: Decimal, sent_at: datetime, **extra: str
    ) -> Intent:
        """The record of an order about to be sent; ``extra`` holds what the venue needs to find
        it again (e.g. an exchange or a session)."""
        return {
            "market_type": market_type,
            "pdno": product,
            "side": str(side),
            "qty": decimal_str(qty, "0"),
            "sent_at": sent_at.strftime(SENT_AT_FORMAT),
            "odno": "",
            **extra,
        }

    def sent_at(self, intent: Intent) -> datetime:
        return datetime.strptime(intent["sent_at"], SENT_AT_FORMAT).replace(tzinfo=self.tz)

    def sent_on(self, intent: Intent) -> date:
        return self.sent_at(intent).date()

    def record(self, client_order_id: str, intent: Intent) -> None:
        cache.set(self.intent_key(client_order_id), intent, timeout=INTENT_TTL)

    def get(self, client_order_id: str) -> Intent | None:
        return cache.get(self.intent_key(client_order_id))

    def forget(self, client_order_id: str) -> None:
        """Drop an intent whose request had a definite answer: nothing was placed."""
        cache.delete(self.intent_key(client_order_id))

    def bind(self, order_no: str, client_order_id: str) -> None:
        """The venue answered ``order_no`` for this client order id: claim it outright."""
        cache.set(self.claim_key(order_no), client_order_id, timeout=INTENT_TTL)

    # --- in flight --------------------------------------------------------------------
    @contextmanager
    def in_flight(self, intent: Intent) -> Iterator[None]:
        """Count the request as awaiting its answer for as long as the block runs."""
        key = self.in_flight_key(intent)
        self._in_flight_add(key, 1)
        try:
            yield
        finally:
            self._in_flight_add(key, -1)

    def _in_flight_add(self, key: str, step: int) -> None:
        """Count the order requests of one shape (product, side, quantity) awaiting their answer.
        The mark outlives a dead worker only by its HTTP timeout and a margin."""
        ttl = int(self.http_timeout) + IN_FLIGHT_MARGIN
        try:
            if step > 0:
                cache.add(key, 0, timeout=ttl)
                cache.incr(key, step)
                cache.touch(key, ttl)
            else:
                cache.decr(key, -step)
        except ValueError:  # expired meanwhile
            if step > 0:
                cache.set(key, step, timeout=ttl)

    # --- claim ------------------------------------------------------------------------
    def claim(self, client_order_id: str, intent: Intent, orders: list[VenueOrder]) -> VenueOrder | None:
        """The venue order an unanswered intent became: same product, side and quantity, placed
        since the intent was sent, not claimed by another client order id. The claim is atomic
        (``cache.add``), so two intents never take the same order. Orders stamped at or after
        the intent come first; up to CLOCK_SKEW earlier only allows for the two clocks differing.

        Raises RetryableVenueError while another order of the same shape is in flight: the
        match may be that one's, which its answer will claim; asked again later, the lookup
        knows."""
        sent, qty = self.sent_at(intent), to_decimal(intent["qty"], ZERO)
        matching = sorted(
            (
                o
                for o in orders
                if o.product == intent["pdno"]
                and o.side == intent["side"]
                and o.quantity == qty
                and o.placed_at is not None
                and o.placed_at >= sent - CLOCK_SKEW
            ),
            key=lambda o: (o.placed_at is not None and o.placed_at < sent, o.placed_at, o.order_no),
        )
        owners = {o.order_no: cache.get(self.claim_key(o.order_no)) for o in matching}
        mine = next((o for o in matching if owners[o.order_no] == client_order_id), None)
        if mine is not None:
            return mine
        free = [o for o in matching if owners[o.order_no] is None]
        if not free:
            return None
        if cache.get(self.in_flight_key(intent)):
            raise RetryableVenueError(
                self.error(_("an order of the same kind is in flight; looking up again shortly"))
            )
        for order in free:
            if cache.add(self.claim_key(order.order_no), client_order_id, timeout=INTENT_TTL):
                return order
        return None
