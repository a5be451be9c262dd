"""Crypto venues through ccxt: the generic adapter every ccxt venue goes through.

A venue's quirks live in its own subclass (``orders/exchanges/ccxt/<venue>.py``) as class
attributes and overridden hook methods; an id ccxt knows but no subclass names trades through
this class unchanged.

Every ccxt exception is translated here, at the boundary, into ``orders.exchanges.base``
errors (``raise … from e``), each known to be retryable or not. Placement is never blindly
retried: a timeout raises ``OrderUncertain`` and the caller looks the order up by its client
order id, which is the Order's own ``client_order_id`` on every venue.

Account.settings keys read here (see docs/venues.md): ``api_base_url`` (point ccxt at a local
simulator), ``leverage``, ``margin_mode`` (cross | isolated), ``timeout_seconds``,
``ccxt_options`` (extra ccxt options dict), ``enable_rate_limit`` (rate limiting, default on:
the venue's shared buckets where its class has a ``rate_limits`` table, else ccxt's own
in-process throttle) and ``rate_limit_ms`` (ccxt's throttle spacing per unit of request weight;
setting it keeps ccxt's throttle instead of the buckets).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from functools import cached_property
from typing import Any

import ccxt
import requests
import urllib3
from django.core.cache import cache
from django.utils.translation import gettext as _

from orders.exchanges import adapter_class
from orders.exchanges.base import (
    Balance,
    CancelAllIncomplete,
    CancelSentUnread,
    ExchangeAdapter,
    Holdings,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderResult,
    OrderUncertain,
    PermanentVenueError,
    RetryableVenueError,
    VenueError,
    VenuePosition,
    balance_summary,
    state_after_cancel,
)
from orders.exchanges.brokerkit.buckets import VenueBuckets, VenueLimit
from orders.exchanges.http import venue_session
from orders.exchanges.ticks import StepTable
from orders.handoff import VenueLock, venue_sleep, venue_wait
from prices.records import instrument_for
from prices.services import price_latest
from quanttrade.vocabulary import (
    LIVE_STATUSES,
    ZERO,
    MarketType,
    OrderStatus,
    OrderType,
    decimal_str,
    to_decimal,
)

log = logging.getLogger("quanttrade.orders")

# ccxt's unified order status -> ours. "open" with a fill becomes partially_filled (see order_result).
STATUS_TABLE: dict[str | None, str] = {
    "open": OrderStatus.OPEN,
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
    None: OrderStatus.SUBMITTED,
}
_OUR_CLIENT_ID = re.compile(r"qt[0-9a-f]{32}")
# How a venue words "this client order id was already used" (Binance/Bybit/OKX clOrdId:
# "Duplicate…"; OKX algoClOrdId: "… already exists").
DUPLICATE_MARKERS = ("uplicate", "already exists")
ONE = Decimal(1)
HUNDRED = Decimal(100)

# How long a process keeps a venue's market list before loading it again (new listings,
# changed filters). Clients of every account on the venue share one list per process.
MARKETS_TTL_SECONDS = 3600.0
# How long a balance generation token is kept unchanged (one that expired is started anew,
# which only ends the snapshot's generation early).
GENERATION_SECONDS = 86400

_clients: dict[tuple[Any, ...], tuple[ccxt.Exchange, VenueLock]] = {}
_clients_lock = threading.Lock()
# Adapters using each client slot of an account (key: client key + market type).
_slot_users: dict[tuple[Any, ...], list[int]] = {}


@dataclass(frozen=True)
class Fired:
    """What a conditional order's trigger did when it fired (``CcxtAdapter._fired``): placed the
    order ``order_id`` ("" while the venue does not name it yet), or, ``refused``, none."""

    order_id: str = ""
    refused: bool = False


@dataclass
class _SharedMarkets:
    lock: VenueLock = field(default_factory=VenueLock)
    source: ccxt.Exchange | None = None  # the client that loaded them
    loaded_at: float = 0.0


_shared_markets: dict[tuple[Any, ...], _SharedMarkets] = {}


def _server_errors_are_unavailable(client: ccxt.Exchange) -> None:
    """An HTTP 5xx answer says nothing about what the venue did, whatever its body: ccxt's
    per-venue error tables read the body first and may call it a refusal (Upbit answers a 5xx
    with ``{"error": {...}}``, which ccxt raises as ExchangeError). The client raises
    ExchangeNotAvailable for every 5xx instead, so a placement answered 5xx is uncertain."""
    venue_errors = client.handle_errors

    def handle_errors(code: int, reason: str, url: str, method: str, *args: Any) -> Any:
        try:
            return venue_errors(code, reason, url, method, *args)
        except ccxt.OperationFailed:
            raise
        except ccxt.BaseError as error:
            if code >= 500:  # the venue's words, but not a refusal
                raise ccxt.ExchangeNotAvailable(str(error)) from error
            raise

    client.handle_errors = handle_errors


def _take_from_buckets(client: ccxt.Exchange, buckets: VenueBuckets) -> None:
    """Every request of ``client`` first takes its cost from the venue's shared buckets
    (ccxt's ``fetch2`` is where its own throttle would run)."""
    send = client.fetch2

    def fetch2(
        path: str, api: Any = "public", method: str = "GET", params: Any = None, config: Any = None
    ) -> Any:
        group = api[0] if isinstance(api, list) and api else str(api)
        buckets.acquire_request(method, str(path), (config or {}).get("cost"), group)
        return send(path, api, method, params if params is not None else {}, config or {})

    client.fetch2 = fetch2


def _pauses_as_venue_waits(client: ccxt.Exchange) -> None:
    """ccxt's own pauses — its per-client throttle (an account with ``rate_limit_ms``, or a venue
    without shared buckets) and its retry delay — sleep in ``time.sleep``; here they are venue
    waits (orders.handoff.venue_wait), so an order thread paused by them gives its turn to
    another account's order meanwhile. A request that needs no pause gives nothing."""
    throttle = client.throttle

    def throttled(cost: Any = None) -> None:
        # ccxt's own rule (``Exchange.throttle``): a pause when the last request was less than
        # rateLimit x cost ago; only then is the turn given.
        elapsed = float(client.milliseconds()) - client.lastRestRequestTimestamp
        if elapsed < client.rateLimit * (1 if cost is None else cost):
            with venue_wait():
                throttle(cost)
        else:
            throttle(cost)

    client.throttle = throttled
    client.sleep = lambda milliseconds: venue_sleep(milliseconds / 1000)


def venue_client_order_id(ccxt_id: str, client_order_id: str) -> str:
    """The client order id sent to (and looked up at) venue ``ccxt_id`` for our
    ``client_order_id``: the rule is the registered adapter class's (``client_id_rule``)."""
    cls = adapter_class(ccxt_id)
    if not issubclass(cls, CcxtAdapter):
        return client_order_id
    return cls.venue_client_id(client_order_id)


def order_result(order: dict[str, Any], contract_size: Decimal = ONE) -> OrderResult:
    """ccxt's unified order -> OrderResult, statuses through STATUS_TABLE. Quantities are in
    the base currency: contracts (OKX swaps) are multiplied by ``contract_size``."""
    status = STATUS_TABLE.get(order.get("status"), OrderStatus.SUBMITTED)
    filled = (to_decimal(order.get("filled")) or ZERO) * contract_size
    amount = to_decimal(order.get("amount"))
    if status == OrderStatus.OPEN and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    fee, fee_currency = order_fee(order)
    return OrderResult(
        status=status,
        exchange_order_id=str(order.get("id") or ""),
        quantity=amount * contract_size if amount is not None else None,
        filled_qty=filled,
        avg_price=to_decimal(order.get("average")) if filled > 0 else None,
        fee=fee,
        fee_currency=fee_currency,
    )


def order_fee(order: dict[str, Any]) -> tuple[Decimal | None, str]:
    """(fee, currency) from ccxt's unified ``fee``/``fees``: the sum of the fees in the first
    currency named (a venue charging in two currencies at once is not summed across them);
    (None, "") when the venue reported none."""
    fees = [f for f in (order.get("fees") or []) if isinstance(f, dict)]
    if not fees and isinstance(order.get("fee"), dict):
        fees = [order["fee"]]
    fees = [f for f in fees if to_decimal(f.get("cost")) is not None]
    if not fees:
        return None, ""
    currency = str(fees[0].get("currency") or "")
    total = sum(
        (to_decimal(f.get("cost")) or ZERO for f in fees if str(f.get("currency") or "") == currency), ZERO
    )
    return total, currency


def request_never_sent(exc: BaseException) -> bool:
    """Whether a ccxt network error happened before the request left this process: the TCP
    connection was refused, could not be resolved or timed out while connecting (requests'
    ``ConnectTimeout``, urllib3's ``NewConnectionError``). A read timeout, a reset or a closed
    connection after the request was written are not: the venue may have the order."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        reason = getattr(cause.args[0], "reason", cause.args[0])
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


def float_down(value: Decimal) -> float:
    """``value`` as the float ccxt takes sizes as, whose shortest form (what ccxt writes into
    the request, then truncates to the market's step) is not above ``value``: the nearest float
    can read as more (beyond 15-16 significant digits), and a size rounded up can be more than
    the venue holds. The float one place lower then."""
    result = float(value)
    if Decimal(repr(result)) > value:
        result = math.nextafter(result, -math.inf)
    return result


def precision_step(client: ccxt.Exchange, market: dict[str, Any], field: str) -> Decimal | None:
    """The market's ``field`` ("price", "amount") precision as a step, None when unknown: ccxt
    gives a step (TICK_SIZE) or a number of decimals (DECIMAL_PLACES), per venue."""
    precision = to_decimal((market.get("precision") or {}).get(field))
    if not precision:
        return None
    return precision if client.precisionMode == ccxt.TICK_SIZE else Decimal(1).scaleb(-int(precision))


def holding(value: Any, step: Decimal | None, exact: str | None = None) -> Decimal:
    """A holding never above what the venue holds: the venue's own figure (``exact``, where the
    adapter keeps it), else the float ccxt parsed from it. A float carries 15-17 significant
    digits: where it reads with 16 or more and its last place is coarser than half the market's
    amount step, it may have been rounded up past a step (848,846,059.15664847 XRP came back as
    848,846,059.1566485, and a close of it was refused for want of XRP): one place less then."""
    if exact is not None and (figure := to_decimal(exact)) is not None:
        return figure
    amount = to_decimal(value) or ZERO
    if (
        isinstance(value, float)
        and value > 0
        and step
        and Decimal(math.ulp(value)) * 2 > step
        and len(Decimal(repr(value)).normalize().as_tuple().digits) >= 16
    ):
        amount = Decimal(repr(math.nextafter(value, 0.0)))
    return amount


def contract_size(market: dict[str, Any]) -> Decimal:
    """Base currency per contract of a contract market (OKX BTC-USDT-SWAP: 0.01), else 1."""
    if not market.get("contract"):
        return ONE
    return to_decimal(market.get("contractSize")) or ONE


def venue_message(exc: Exception) -> str:
    """The venue's own words from a ccxt exception ("binance {"code":-1,"msg":"…"}" -> "…")."""
    text = str(exc)
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start:])
        except ValueError:
            body = None
        if isinstance(body, dict):
            error = body.get("error")
            data = body.get("data")
            # OKX answers an order request per order: {"msg": "All operations failed",
            # "data": [{"sCode": "51008", "sMsg": "Order failed. Insufficient …"}]}.
            first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
            for candidate in (
                first.get("sMsg"),
                body.get("msg"),
                body.get("message"),
                body.get("retMsg"),
                error.get("message") if isinstance(error, dict) else error,
            ):
                if candidate:
                    return str(candidate)
    return re.sub(r"^[a-z0-9]+ ", "", text).strip() or exc.__class__.__name__


def venue_code(exc: Exception) -> str | None:
    """The venue's error code in a ccxt exception's body ("retCode": 10016 -> "10016")."""
    found = re.search(r'"(?:retCode|ret_code|code)"\s*:\s*"?(-?\d+)', str(exc))
    return found.group(1) if found else None


class CcxtAdapter(ExchangeAdapter):
    """One crypto account (spot or USD-M futures) on one ccxt venue.

    The class attributes below are the venue differences; a venue's subclass overrides the ones
    that differ, and the hook methods (``_id_params``, ``_trigger_params``, ``_order_books``,
    ``_order_by_client_id``, ``_apply_futures_settings``) where a value is not enough."""

    marks_sending = True

    # The venue's name in messages; empty: the ccxt id, title-cased.
    display_name: str = ""
    # ccxt options for the venue's clients (the account's ``ccxt_options`` go on top).
    venue_options: dict[str, Any] = {}
    # ccxt's ``rateLimit`` per market type where its default is wrong (``rate_limit_ms`` wins).
    default_rate_limit_ms: dict[str, float] = {}
    # The venue's published rate limits per market type (brokerkit buckets shared by every
    # process); a venue without a table keeps ccxt's in-process throttle.
    rate_limits: dict[str, tuple[VenueLimit, ...]] = {}
    # Clients per account and market type in one process: orders of one account (of different
    # webhooks and symbols) run in parallel up to this many; each adapter (one per task) keeps
    # one client for its life. Account.settings ``parallel_orders`` overrides it. The venue's
    # pace is kept by the shared rate-limit buckets, not by one client at a time.
    parallel_orders: int = 4
    # Sizing reads (SPEC §2.1 qty_per) without a venue call where the product already knows:
    # the balance snapshot (refreshed after every order, read through when older than this),
    # and, for spot, the price layer's last price from the venue's own ticker feed (``ccxt``)
    # when younger than this. Account.settings ``balance_max_age_seconds`` /
    # ``price_max_age_seconds`` override them; 0 turns the cache off.
    balance_max_age_seconds: float = 10.0
    price_max_age_seconds: float = 3.0
    price_feeds: frozenset[str] = frozenset({"ccxt"})
    # Minimum order value per quote currency where ccxt's markets carry none.
    min_cost: dict[str, Decimal] = {}
    # Venue error codes meaning "internal error, try again" on an order request: like a 5xx,
    # the order's fate is unknown, so it is looked up by client id before it is retried.
    uncertain_codes: frozenset[str] = frozenset()
    # Venue error codes of a set_leverage refusal meaning "already at that leverage".
    leverage_unchanged_codes: frozenset[str] = frozenset()
    # (allowed characters, maximum length) where the venue's client order id is stricter than
    # ours ("qt" + 32 hex digits, 34 characters); None: ours as it is.
    client_id_rule: tuple[re.Pattern[str], int] | None = None
    # Market types whose conditional (trigger / plan) orders live in a list of their own,
    # fetched and cancelled apart from the regular ones (ccxt's ``trigger`` param).
    trigger_books: frozenset[str] = frozenset()
    # Whether a conditional order in the trigger book places a new order under a new id when
    # it fires (``_conditional_order`` / ``_fired`` find it): its state and a cancel
    # then follow that order.
    triggers_place_new_orders: bool = False
    # Whether the futures margin mode goes with each order, so the account's ``margin_mode``
    # goes in the order's params too.
    margin_mode_per_order: bool = False
    # Orders per batch-cancel request (regular; trigger, default the same); None: the venue's
    # cancel-all, or one cancel per order.
    cancel_batch: int | None = None
    cancel_batch_trigger: int | None = None
    # Whether the venue answers a placement with ids only (no state): the state comes from a
    # lookup by client id right after, so a filled MARKET order is recorded as filled.
    placement_answers_ids_only: bool = False
    #: True where ccxt's futures balance (free + used) already counts the positions'
    #: unrealised PnL (Binance marginBalance, OKX eq, Bitget accountEquity; Bybit's
    #: walletBalance does not): the portfolio's wallet is that less the venue's unrealised PnL.
    futures_balance_includes_unrealised: bool = True

    def __init__(self, account: Any):
        super().__init__(account)
        self.ccxt_id = account.exchange.lower()
        if self.ccxt_id not in ccxt.exchanges:
            raise PermanentVenueError(
                _("Unsupported exchange: %(exchange)s") % {"exchange": account.exchange}
            )
        self.display_name = self.display_name or self.ccxt_id.title()
        self.settings: dict[str, Any] = dict(account.settings or {})
        self._slots: dict[str, int] = {}
        # Per market type: the balance generation this adapter's last order's answer started
        # (after_order's read belongs to it).
        self._answered: dict[str, str] = {}

    @classmethod
    def venue_client_id(cls, client_order_id: str) -> str:
        """The client order id sent to (and looked up at) the venue for our ``client_order_id``.

        The Order's own id wherever the venue accepts it. Where it does not (``client_id_rule``),
        the same id every time: our "qt" + uuid hex keeps its first characters (OKX: "qt" + 30
        hex digits, 114 random bits, and still found by prefix in the admin's search); any other
        id is hashed into the venue's alphabet.
        """
        if cls.client_id_rule is None:
            return client_order_id
        allowed, limit = cls.client_id_rule
        if len(client_order_id) <= limit and allowed.fullmatch(client_order_id):
            return client_order_id
        if _OUR_CLIENT_ID.fullmatch(client_order_id):
            return client_order_id[:limit]
        return ("qt" + hashlib.sha256(client_order_id.encode()).hexdigest())[:limit]

    # --- client -----------------------------------------------------------------------
    @cached_property
    def _client_key(self) -> tuple[Any, ...]:
        """What identifies this account's clients: a change of credentials or settings makes
        new ones (computed once per adapter; the adapter copied the settings)."""
        secret_digest = hashlib.sha256(
            f"{self.account.api_key}\0{self.account.api_secret}\0{self.account.passphrase}".encode()
        ).hexdigest()
        settings_json = json.dumps(self.settings, sort_keys=True, default=str)
        return (self.ccxt_id, self.account.pk, secret_digest, self.account.is_testnet, settings_json)

    @cached_property
    def _venue_key(self) -> tuple[Any, ...]:
        """What identifies the venue's market list: accounts with the same one share it."""
        return (
            self.ccxt_id,
            self.account.is_testnet,
            str(self.settings.get("api_base_url") or ""),
            json.dumps(self.settings.get("ccxt_options", {}), sort_keys=True, default=str),
        )

    def _slot(self, market_type: str) -> int:
        """This adapter's client slot for ``market_type``: the least used one, kept until
        :meth:`close` (one client per adapter: a lock is never waited for while another is held)."""
        slot = self._slots.get(market_type)
        if slot is None:
            size = max(1, int(self.settings.get("parallel_orders") or self.parallel_orders))
            with _clients_lock:
                users = _slot_users.setdefault((*self._client_key, market_type), [])
                users.extend([0] * (size - len(users)))
                slot = min(range(size), key=users.__getitem__)
                users[slot] += 1
            self._slots[market_type] = slot
        return slot

    def close(self) -> None:
        with _clients_lock:
            for market_type, slot in self._slots.items():
                users = _slot_users.get((*self._client_key, market_type))
                if users and slot < len(users) and users[slot] > 0:
                    users[slot] -= 1
        self._slots.clear()

    def _client(self, market_type: str) -> tuple[ccxt.Exchange, VenueLock]:
        """A ccxt client per (account, credentials, market type, slot), cached with its markets."""
        key = (*self._client_key, market_type, self._slot(market_type))
        with _clients_lock:
            cached = _clients.get(key)
            if cached is not None:
                return cached
            options = {
                **self.venue_options,
                "defaultType": "swap" if market_type == MarketType.FUTURES else "spot",
                **self.settings.get("ccxt_options", {}),
            }
            client: ccxt.Exchange = getattr(ccxt, self.ccxt_id)(
                {
                    "apiKey": self.account.api_key,
                    "secret": self.account.api_secret,
                    "password": self.account.passphrase or None,
                    "enableRateLimit": bool(self.settings.get("enable_rate_limit", True)),
                    "timeout": int(float(self.settings.get("timeout_seconds", 10)) * 1000),
                    "options": options,
                }
            )
            rate_limit_ms = self.settings.get("rate_limit_ms") or self.default_rate_limit_ms.get(market_type)
            if rate_limit_ms:
                client.rateLimit = float(rate_limit_ms)
            limits = self.rate_limits.get(market_type)
            if limits and client.enableRateLimit and not self.settings.get("rate_limit_ms"):
                # The shared buckets replace ccxt's per-process throttle.
                client.enableRateLimit = False
                _take_from_buckets(client, self.buckets(market_type))
            if self.account.is_testnet:
                try:
                    client.set_sandbox_mode(True)
                except ccxt.NotSupported as e:
                    raise PermanentVenueError(self._message(e)) from e
            base_url = self.settings.get("api_base_url")
            if base_url:
                client.urls["api"] = _rebase(client.urls["api"], str(base_url).rstrip("/"))
            _server_errors_are_unavailable(client)
            _pauses_as_venue_waits(client)
            venue_session(client.session)  # waiting for an answer lets another order run
            cached = (client, VenueLock(reentrant=True))
            _clients[key] = cached
            return cached

    def buckets(self, market_type: str) -> VenueBuckets:
        """This account's rate-limit buckets on the venue (per API key; per-IP limits shared by
        every account on the same venue address)."""
        address = hashlib.sha256(json.dumps(self._venue_key, default=str).encode()).hexdigest()[:12]
        return VenueBuckets(
            f"{self.ccxt_id}:{address}",
            str(self.account.api_key or ""),
            self.rate_limits.get(market_type, ()),
            display_name=self.display_name,
            market=market_type.lower(),
        )

    def warm(self, market_type: str) -> None:
        """Build the client, load the venue's markets and read the balances before the first
        order needs them."""
        self._loaded_markets(market_type)
        if self._keeps_balance() and self.account.api_key:
            self._read_balance(market_type)

    def _loaded_markets(self, market_type: str) -> dict[str, Any]:
        client, lock = self._client(market_type)
        with lock:
            try:
                return self._load_markets(client, market_type)
            except ccxt.BaseError as e:
                raise self._translate(e) from e

    def _load_markets(self, client: ccxt.Exchange, market_type: str) -> dict[str, Any]:
        """The client's markets, loaded once per process and venue for every account on it.

        The first client loads them (the others wait for it rather than load their own: ten
        accounts on one venue after a restart make one request, not ten); later clients copy
        the shared list (ccxt's ``set_markets_from_exchange``: references, no copy). After
        MARKETS_TTL_SECONDS the next call loads them again.

        A load is a wait for the venue, its parse included (ccxt building a large venue's
        thousands of markets takes the interpreter for a long while, once an hour): on an order
        thread it gives its turn to another order meanwhile (orders.handoff.venue_wait), as the
        request alone did, instead of holding up every order of an embedded process that runs
        one at a time (EMBEDDED_ORDER_TURNS)."""
        with _clients_lock:
            shared = _shared_markets.setdefault((*self._venue_key, market_type), _SharedMarkets())
        if (
            client.markets
            and getattr(client, "qt_markets_at", None) == shared.loaded_at
            and time.monotonic() - shared.loaded_at < MARKETS_TTL_SECONDS
        ):
            return client.markets
        with shared.lock:
            if shared.source is None or time.monotonic() - shared.loaded_at >= MARKETS_TTL_SECONDS:
                with venue_wait():
                    client.load_markets(reload=bool(client.markets))
                shared.source, shared.loaded_at = client, time.monotonic()
            elif getattr(client, "qt_markets_at", None) != shared.loaded_at:
                client.set_markets_from_exchange(shared.source)
            client.qt_markets_at = shared.loaded_at
        return client.markets

    def _message(self, exc: Exception | str) -> str:
        text = exc if isinstance(exc, str) else venue_message(exc)
        return _("%(venue)s API error: %(message)s") % {"venue": self.display_name, "message": text}

    def _translate(self, exc: ccxt.BaseError) -> VenueError:
        """ccxt exception -> product error. Placement timeouts are handled by the caller."""
        message = self._message(exc)
        if isinstance(exc, ccxt.OperationFailed):  # rate limits, DDoS protection, 5xx, timeouts
            return RetryableVenueError(message)
        if venue_code(exc) in self.uncertain_codes:
            return RetryableVenueError(message)  # the venue's "internal error, try again"
        if isinstance(exc, ccxt.AuthenticationError):
            return PermanentVenueError(message)
        if isinstance(exc, ccxt.InsufficientFunds | ccxt.InvalidOrder | ccxt.BadRequest | ccxt.NotSupported):
            return OrderRejected(message)
        return PermanentVenueError(message)

    def _call(self, market_type: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run one ccxt call (markets loaded first); ccxt errors leave as product errors."""
        client, lock = self._client(market_type)
        with lock:
            try:
                self._load_markets(client, market_type)
                return getattr(client, method)(*args, **kwargs)
            except ccxt.BaseError as e:
                raise self._translate(e) from e

    # --- interface --------------------------------------------------------------------
    def markets(self) -> dict[str, dict[str, Any]]:
        return dict(self._loaded_markets(MarketType.SPOT))

    def market(self, market_type: str, symbol: str) -> dict[str, Any]:
        """The ccxt market for our symbol: SPOT "BTC/USDT", FUTURES "BTC/USDT:USDT"."""
        markets = self._loaded_markets(market_type)
        unified = symbol
        if market_type == MarketType.FUTURES and ":" not in symbol:
            unified = f"{symbol}:{symbol.split('/')[-1]}"
        market = markets.get(unified)
        if market is None:
            raise OrderRejected(self._message(_("Unknown symbol: %(symbol)s") % {"symbol": unified}))
        return market

    def balances(self, market_type: str = MarketType.SPOT) -> dict[str, Balance]:
        raw = self._read_balance(market_type)
        result = {}
        for asset, free in (raw.get("free") or {}).items():
            used = to_decimal((raw.get("used") or {}).get(asset)) or ZERO
            result[asset] = Balance(asset=asset, free=to_decimal(free) or ZERO, locked=used)
        return result

    def check_connection(self, market_types: Collection[str] = ()) -> str:
        """Read the balance of each market the account trades (spot when none): a key that
        reads spot but not futures is named as lacking the futures permission."""
        wanted = [m for m in (MarketType.SPOT, MarketType.FUTURES) if m in market_types] or [MarketType.SPOT]
        parts: list[str] = []
        for market_type in wanted:
            try:
                summary = balance_summary(self.balances(market_type))
            except VenueError as e:
                refused = isinstance(e.__cause__, ccxt.AuthenticationError | ccxt.AccountNotEnabled)
                if market_type == MarketType.FUTURES and parts and refused:
                    raise type(e)(
                        _(
                            "Spot works but futures were refused (does the key have the futures permission?): %(message)s"
                        )
                        % {"message": e.message}
                    ) from e
                raise
            parts.append(f"{MarketType(market_type).label}: {summary}")
        return "; ".join(parts)

    def _total(self, market_type: str, asset: str) -> Decimal:
        raw = self._balance(market_type)
        return to_decimal((raw.get("total") or {}).get(asset)) or ZERO

    def _free(self, market_type: str, asset: str) -> Decimal:
        raw = self._balance(market_type)
        return to_decimal((raw.get("free") or {}).get(asset)) or ZERO

    # --- the balance snapshot -----------------------------------------------------------
    def _max_age(self, name: str) -> float:
        value = self.settings.get(name)
        return float(value) if value is not None else float(getattr(self, name))

    @cached_property
    def _balance_digest(self) -> str:
        return hashlib.sha256(json.dumps(self._client_key, default=str).encode()).hexdigest()[:24]

    def _balance_key(self, market_type: str) -> str:
        return f"qt:balance:{self._balance_digest}:{market_type}"

    # The snapshot's generation: a token that changes whenever an order of the account leaves
    # and again when its answer comes. A read keeps the token current when it began, and its
    # snapshot counts only while the token is still that: a read the venue answered before an
    # order changed the balances, but that came back (or was stored) after, is never taken as
    # fresh, whichever thread or process placed that order.
    def _generation_key(self, market_type: str) -> str:
        if self.shared_balances:
            # One wallet behind every market type (Bybit's unified account, OKX's): an order
            # in one ends the snapshots of all.
            return f"qt:balance:{self._balance_digest}:gen"
        return f"{self._balance_key(market_type)}:gen"

    def _keeps_balance(self) -> bool:
        return self._max_age("balance_max_age_seconds") > 0

    def _balance_moves(self, market_type: str) -> str | None:
        """A new generation (an order of the account leaves or was answered, a cancel freed what
        resting orders held); None: the snapshot is off, or the shared cache is down (the
        snapshot is then not read either)."""
        if not self._keeps_balance():
            return None
        token = secrets.token_hex(8)
        try:
            cache.set(self._generation_key(market_type), token, timeout=GENERATION_SECONDS)
        except Exception as exc:
            log.debug("balance generation not stored: %s", exc)
            return None
        return token

    def _generation(self, market_type: str) -> str | None:
        """The current generation, started if there is none (never set, or expired)."""
        key = self._generation_key(market_type)
        try:
            token = cache.get(key)
            if token is None:
                cache.add(key, secrets.token_hex(8), timeout=GENERATION_SECONDS)
                token = cache.get(key)
        except Exception as exc:
            log.debug("balance generation not read: %s", exc)
            return None
        return str(token) if token is not None else None

    def _read_balance(self, market_type: str, generation: str | None = None) -> dict[str, Any]:
        """The venue's balances now (one request), kept as the account's snapshot of the
        generation current when the read began (``generation``: one just set by this adapter)."""
        keep = self._keeps_balance()
        if keep and generation is None:
            generation = self._generation(market_type)
        raw = self._call(market_type, "fetch_balance")
        snapshot = {
            "free": dict(raw.get("free") or {}),
            "used": dict(raw.get("used") or {}),
            "total": dict(raw.get("total") or {}),
            "exact_free": self._exact_free(raw),
            "at": time.time(),
            "gen": generation,
        }
        if keep and generation is not None:
            try:
                cache.set(self._balance_key(market_type), snapshot, timeout=3600)
            except Exception as exc:  # the shared cache is down: the next sizing reads the venue
                log.debug("balance snapshot not stored: %s", exc)
        return snapshot

    def _exact_free(self, raw: dict[str, Any]) -> dict[str, str]:
        """The free balances as the venue wrote them, per asset, where its answer (ccxt's
        ``info``) has them (a hook: Upbit); ccxt's own figures are floats."""
        return {}

    def _balance(self, market_type: str) -> dict[str, Any]:
        """The snapshot while younger than ``balance_max_age_seconds`` and of the current
        generation, else a venue read."""
        max_age = self._max_age("balance_max_age_seconds")
        generation = None
        if max_age > 0:
            key, generation_key = self._balance_key(market_type), self._generation_key(market_type)
            try:
                found = cache.get_many([key, generation_key])
            except Exception:
                found = {}
            snapshot, generation = found.get(key), found.get(generation_key)
            if (
                snapshot
                and generation is not None
                and snapshot.get("gen") == generation
                and 0 <= time.time() - float(snapshot["at"]) <= max_age
            ):
                return dict(snapshot)
        return self._read_balance(market_type, generation)

    def after_order(self, market_type: str, *, placed: bool) -> None:
        """A placed order changed the balances: read them once now, after it left, for the
        next signal; a failed attempt only ends the snapshot's generation (the venue may be
        unwell, and its answer may not have been the last word)."""
        if not self._keeps_balance():
            return
        answered = self._answered.pop(market_type, None)
        if not placed:
            if answered is None:  # else the failed request's answer started one already
                self._balance_moves(market_type)
            return
        try:
            self._read_balance(market_type, answered)
        except VenueError as error:
            log.warning("%s 잔고 갱신 실패: %s", self.display_name, error.message)
            self._balance_moves(market_type)

    def _layer_price(self, request: OrderRequest, market: dict[str, Any]) -> Decimal | None:
        """The price layer's last price of a spot pair when the venue's own ticker feed
        published it less than ``price_max_age_seconds`` ago (never on a testnet or simulator
        address: the layer follows the real venue)."""
        max_age = self._max_age("price_max_age_seconds")
        if (
            max_age <= 0
            or request.market_type != MarketType.SPOT
            or self.account.is_testnet
            or (self.settings.get("api_base_url") and not self.settings.get("price_layer_for_base_url"))
        ):
            return None
        try:
            record = price_latest(instrument_for(MarketType.SPOT, market["symbol"], exchange=self.ccxt_id))
        except Exception as exc:
            log.debug("price layer not read: %s", exc)
            return None
        if record is None or record.feed not in self.price_feeds or record.timestamp is None:
            return None
        age = time.time() - record.timestamp.timestamp()
        return record.price if 0 <= age <= max_age and record.price > 0 else None

    def position(self, market_type: str, symbol: str) -> Decimal:
        market = self.market(market_type, symbol)
        if market_type != MarketType.FUTURES:
            return self._total(market_type, market["base"])
        size = ZERO
        for row in self._call(market_type, "fetch_positions", [market["symbol"]]):
            if row.get("symbol") != market["symbol"]:
                continue
            contracts = to_decimal(row.get("contracts")) or ZERO
            per_contract = to_decimal(row.get("contractSize")) or ONE
            amount = contracts * per_contract
            size += -abs(amount) if row.get("side") == "short" else abs(amount)
        return size

    def holdings(self, market_type: str) -> Holdings:
        """Balances (ccxt ``fetch_balance``, assets with nothing dropped) and, on FUTURES, the
        open positions (``fetch_positions``) with the venue's entry, leverage, liquidation and
        mark prices where it gives them. Spot coins stay balances: the portfolio marks them."""
        balances = {
            asset: balance for asset, balance in self.balances(market_type).items() if balance.total != 0
        }
        positions: list[VenuePosition] = []
        if market_type == MarketType.FUTURES:
            positions = [
                position
                for row in self._call(market_type, "fetch_positions")
                if (position := self._venue_position(market_type, row)) is not None
            ]
            if self.futures_balance_includes_unrealised:
                # The portfolio adds each position's unrealised PnL itself (marked from the
                # price layer): the balance it is given is the wallet, without it.
                for position in positions:
                    held = balances.get(position.currency)
                    if held is not None and position.unrealised_pnl:
                        balances[position.currency] = Balance(
                            asset=held.asset, free=held.free - position.unrealised_pnl, locked=held.locked
                        )
        return Holdings(market_type=market_type, balances=balances, positions=positions)

    def _venue_position(self, market_type: str, row: dict[str, Any]) -> VenuePosition | None:
        """ccxt's unified position -> VenuePosition in base units; None for an empty row."""
        contracts = to_decimal(row.get("contracts")) or ZERO
        if contracts == 0:
            return None
        unified = str(row.get("symbol") or "")
        market = self._loaded_markets(market_type).get(unified) or {}
        per_contract = to_decimal(row.get("contractSize")) or contract_size(market)
        amount = abs(contracts * per_contract)
        symbol = unified.split(":", 1)[0]
        quote = str(market.get("settle") or market.get("quote") or symbol.rpartition("/")[2])

        def price(key: str) -> Decimal | None:
            value = to_decimal(row.get(key))
            return value if value else None  # venues send 0 for "none"

        return VenuePosition(
            market_type=market_type,
            symbol=symbol,
            quantity=-amount if row.get("side") == "short" else amount,
            currency=quote,
            entry_price=price("entryPrice"),
            leverage=price("leverage"),
            liquidation_price=price("liquidationPrice"),
            mark_price=price("markPrice"),
            unrealised_pnl=to_decimal(row.get("unrealizedPnl")),
        )

    def place_order(self, request: OrderRequest) -> OrderResult:
        market = self.market(request.market_type, request.symbol)
        symbol = market["symbol"]
        ccxt_type, price, trigger = self._order_shape(request)
        client, lock = self._client(request.market_type)
        if trigger is not None and not (
            client.has.get("createTriggerOrder") or client.has.get("createStopOrder")
        ):
            # ccxt would drop the trigger and send a plain order: refuse instead.
            raise OrderRejected(
                _("%(order_type)s orders are not supported on %(venue)s")
                % {"order_type": request.order_type, "venue": self.display_name}
            )
        side, amount, reduce_only, reference = self._size(request, market, price or trigger)
        # Contract markets take sizes in contracts (OKX BTC-USDT-SWAP: 0.01 BTC each); the
        # sizing and the minimums speak base currency.
        per_contract = contract_size(market)
        contracts = self._amount_to_precision(request.market_type, symbol, amount / per_contract)
        amount = contracts if per_contract == 1 else Decimal(decimal_str(contracts * per_contract, "0"))
        notes: list[str] = []
        if price is not None:
            price = self._price_on_step(request, market, price, notes)
        if trigger is not None:
            trigger = self._price_on_step(request, market, trigger, notes)
        self._check_minimums(market, amount, price or trigger or reference, reduce_only)

        params = self._id_params(self.venue_client_id(request.client_order_id), trigger is not None)
        if (
            self.margin_mode_per_order
            and request.market_type == MarketType.FUTURES
            and self.settings.get("margin_mode")
        ):
            params["marginMode"] = str(self.settings["margin_mode"]).lower()
        if trigger is not None:
            # A string, as the venue takes it: some ccxt classes (Bitget) copy the param into
            # the request body over their own rounded string.
            params["triggerPrice"] = format(trigger, "f")
            params.update(self._trigger_params(market, side))
        if reduce_only:
            params["reduceOnly"] = True
        if request.market_type == MarketType.FUTURES:
            self._prepare_futures(symbol)
        create_price = price
        if ccxt_type == "market" and side == "buy" and _market_buy_spends_quote(client, market):
            # Upbit / Bitget spot market buys spend a quote amount: hand ccxt the cost directly.
            params["cost"] = float(amount * (reference or self._reference_price(request, market)))
        log.info(
            "%s 주문 전송: %s %s %s amount=%s contracts=%s price=%s trigger=%s",
            self.display_name,
            symbol,
            side,
            ccxt_type,
            amount,
            contracts if market.get("contract") else "-",
            price,
            trigger,
        )
        with lock:
            self.about_to_send()  # after waiting for the shared client: nothing has left yet
            # The balances change from here: a concurrent sizing reads them from the venue
            # until after_order stores them again, and a read in flight is not kept as fresh.
            self._balance_moves(request.market_type)
            try:
                order = client.create_order(
                    symbol,
                    ccxt_type,
                    side,
                    float_down(contracts),
                    float(create_price) if create_price else None,
                    params,
                )
            except (ccxt.DDoSProtection, ccxt.RateLimitExceeded) as e:
                # 429 / 418: the venue refused the request before handling it.
                raise RetryableVenueError(self._message(e)) from e
            except ccxt.InvalidNonce as e:
                # A NetworkError to ccxt, but the venue's answer: the request's timestamp was
                # outside its window (Binance -1021, Bybit 10002, OKX 50102, Bitget 40004…), so
                # it refused the order before handling it. Sent again with a fresh timestamp.
                raise RetryableVenueError(self._message(e)) from e
            except ccxt.NetworkError as e:
                if request_never_sent(e):
                    # The connection could not be opened: not a byte of the order left here.
                    raise RetryableVenueError(self._message(e)) from e
                # A read timeout, a dropped answer or a 5xx ("execution status unknown"): the
                # order may be on the book; the execution layer looks it up by client id.
                raise OrderUncertain(self._message(e)) from e
            except ccxt.OperationFailed as e:
                # e.g. Binance -1001 "Internal error": the order's fate is unknown too.
                raise OrderUncertain(self._message(e)) from e
            except ccxt.AuthenticationError as e:
                raise PermanentVenueError(self._message(e)) from e
            except ccxt.ExchangeError as e:
                if venue_code(e) in self.uncertain_codes:
                    raise OrderUncertain(self._message(e)) from e  # "internal error": like a 5xx
                # The venue answered the order request with a refusal: nothing was placed —
                # unless it refused a repeat of an order it has (a retry after a lost answer).
                if any(marker in str(e) for marker in DUPLICATE_MARKERS):
                    found = self._lookup_after_failure(request, e)
                    if found is not None:
                        return found
                raise OrderRejected(self._message(e)) from e
            except ccxt.BaseError as e:
                raise self._translate(e) from e
            finally:
                # The answer (or the want of one) is in: a read begun while the order was in
                # flight may have been answered from before it.
                if answered := self._balance_moves(request.market_type):
                    self._answered[request.market_type] = answered
        result = order_result(order, per_contract)
        if self.placement_answers_ids_only:
            result = self._state_after_placement(request, result)
        if result.quantity is None:
            result.quantity = amount
        if notes:
            result.message = " ".join(filter(None, [result.message, *notes]))
        return result

    def _price_steps(self, market: dict[str, Any]) -> StepTable | None:
        """The venue's price step table for ``market`` (a hook: Upbit's KRW price units); None:
        the market's own tick (ccxt's price precision)."""
        return None

    def _price_on_step(
        self, request: OrderRequest, market: dict[str, Any], price: Decimal, notes: list[str]
    ) -> Decimal:
        """``price`` on the venue's price step, moved toward the passive side (a buy down, a sell
        up: ccxt's ``price_to_precision`` rounds to the nearest, which can make a buy dearer).
        A moved price leaves a note for the order's result message."""
        table = self._price_steps(market)
        if table is None:
            client, _lock = self._client(request.market_type)
            tick = precision_step(client, market, "price")
            if not tick:
                return self._price_to_precision(request.market_type, market["symbol"], price)
            table = StepTable(((ZERO, tick),))
        on_step = Decimal(decimal_str(table.to_step(price, request.side), "0"))  # no trailing zeros
        if on_step != price:
            notes.append(
                _(
                    "Price %(price)s moved to %(on_step)s, the venue's price step (%(side)s: toward the passive side)."
                )
                % {
                    "price": decimal_str(price, "0"),
                    "on_step": decimal_str(on_step, "0"),
                    "side": request.side,
                }
            )
            log.warning("%s 가격 단위 조정: %s -> %s (%s)", self.display_name, price, on_step, request.side)
        return on_step

    def _id_params(self, client_id: str, conditional: bool) -> dict[str, Any]:
        """The order params naming our client order id (a hook: OKX names trigger orders apart)."""
        return {"clientOrderId": client_id}

    def _trigger_params(self, market: dict[str, Any], side: str) -> dict[str, Any]:
        """Extra params of a trigger order beyond ``triggerPrice`` (a hook: Bybit contracts)."""
        return {}

    def _state_after_placement(self, request: OrderRequest, placed: OrderResult) -> OrderResult:
        """The state of an order the venue just accepted without saying it (venues with
        ``placement_answers_ids_only``). When the lookup fails the order is `open`: the venue
        has it, and the live-order refresh follows it from there."""
        try:
            known = self.fetch_order_by_client_id(
                replace(request, exchange_order_id=placed.exchange_order_id)
            )
        except VenueError as e:
            log.warning("%s 주문 상태 확인 실패 (접수됨): %s", self.display_name, e.message)
            known = None
        if known is not None and known.exchange_order_id == placed.exchange_order_id:
            return known
        placed.status = OrderStatus.OPEN
        return placed

    def _lookup_or_retry(self, request: OrderRequest, cause: Exception) -> OrderResult:
        """The order the venue has under our client id after an answer that leaves its fate
        unknown; ``OrderUncertain`` when the venue does not show it (yet): a venue still
        processing it would take a second placement as a second order."""
        found = self._lookup_after_failure(request, cause)
        if found is not None:
            return found
        raise OrderUncertain(self._message(cause)) from cause

    def _lookup_after_failure(self, request: OrderRequest, cause: Exception) -> OrderResult | None:
        try:
            return self.fetch_order_by_client_id(request)
        except VenueError as e:
            raise OrderUncertain(self._message(cause)) from e

    def fetch_order_by_client_id(self, request: OrderRequest) -> OrderResult | None:
        market = self.market(request.market_type, request.symbol)
        symbol = market["symbol"]
        cid = request.client_order_id
        client, lock = self._client(request.market_type)
        conditional = request.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        per_contract = contract_size(market)
        with lock:
            try:
                return self._lookup(client, market, cid, conditional, per_contract)
            except ccxt.OrderNotFound:
                return None
            except ccxt.NotSupported:
                pass
            except ccxt.BaseError as e:
                if not isinstance(e, ccxt.ArgumentsRequired | ccxt.BadRequest):
                    raise self._translate(e) from e
            # The venue has no lookup by client id: scan open then closed orders for ours.
            for method in ("fetch_open_orders", "fetch_closed_orders"):
                try:
                    orders = getattr(client, method)(symbol)
                except ccxt.NotSupported:
                    continue
                except ccxt.BaseError as e:
                    raise self._translate(e) from e
                for order in orders:
                    if order.get("clientOrderId") == cid:
                        return self._read_order(client, market, order, per_contract)
        return None

    def _read_order(
        self, client: ccxt.Exchange, market: dict[str, Any], order: dict[str, Any], per_contract: Decimal
    ) -> OrderResult:
        """ccxt's parsed order of ours -> OrderResult (a hook: a venue whose states ccxt reads
        too coarsely reads them right here, whichever way the order was found)."""
        return order_result(order, per_contract)

    def _order_by_client_id(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """Our order by its client id through the venue's lookup, None when the venue has none
        by that id (a hook: each venue names the id its own way). ``ccxt.NotSupported`` sends
        the caller to scanning the open and closed orders instead."""
        if not client.has.get("fetchOrder"):
            raise ccxt.NotSupported(f"{self.ccxt_id} fetchOrder")
        order = client.fetch_order("", market["symbol"], {"clientOrderId": cid})
        return self._read_order(client, market, order, per_contract)

    def _lookup(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        cid: str,
        conditional: bool,
        per_contract: Decimal,
    ) -> OrderResult | None:
        """Our order by client id: a conditional order in the trigger book of a venue whose
        triggers place new orders, followed to the order it placed (``_follow_trigger``); any
        other through ``_order_by_client_id``."""
        if conditional and self.triggers_place_new_orders:
            try:
                found = self._conditional_order(client, market, cid)
            except ccxt.NotSupported:
                pass  # kept with the regular orders (Binance spot stops)
            else:
                return self._follow_trigger(client, market, found, per_contract)
        return self._order_by_client_id(client, market, cid, conditional, per_contract)

    # --- conditional orders that place an order of their own when they trigger -------------
    def _conditional_order(self, client: ccxt.Exchange, market: dict[str, Any], cid: str) -> dict[str, Any]:
        """ccxt's order for our conditional order in the venue's trigger book (a hook for the
        venues whose trigger places a new order under a new id: Binance USD-M, OKX, Bitget)."""
        raise ccxt.NotSupported(f"{self.ccxt_id}: no trigger book lookup")

    def _fired(self, client: ccxt.Exchange, conditional: dict[str, Any]) -> Fired | None:
        """What the conditional order's trigger did (:class:`Fired`); None while it has not
        fired (a hook, with ``_conditional_order``)."""
        return None

    def _follow_trigger(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        conditional: dict[str, Any],
        per_contract: Decimal,
    ) -> OrderResult:
        """Our conditional order's state: once it has triggered, that of the order it placed (a
        triggered stop-limit may still rest, a triggered stop may not have filled), kept under
        the conditional order's id, which the Order knows it by. The venue's own word for the
        trigger ("TRIGGERED", "effective") says nothing about a fill."""
        try:
            fired = self._fired(client, conditional)
            if fired is None:
                return order_result(conditional, per_contract)
            if fired.order_id:
                result = order_result(client.fetch_order(fired.order_id, market["symbol"]), per_contract)
            else:  # on its way to the book (still live, its fills unknown), or refused (none)
                result = order_result(conditional, per_contract)
                result.status = OrderStatus.REJECTED if fired.refused else OrderStatus.OPEN
                result.filled_qty, result.avg_price = ZERO, None
        except ccxt.OrderNotFound:
            # The venue names an order it cannot show (not yet, or no longer): our order
            # exists, so "no such order" (which could send it again) would be wrong.
            raise self._not_listed_yet() from None
        except ccxt.BaseError as e:
            # Not the caller's "no lookup by client id" either (BadRequest sends it scanning
            # the regular book, which cannot find a conditional order): an error of the read.
            raise self._translate(e) from e
        result.exchange_order_id = str(conditional.get("id") or "")
        return result

    def _not_listed_yet(self) -> RetryableVenueError:
        """A conditional order that fired, whose order the venue does not show yet."""
        return RetryableVenueError(
            self._message(_("The stop has triggered and its order is not listed yet; try again"))
        )

    def _triggered_order_id(self, client: ccxt.Exchange, market: dict[str, Any], cid: str) -> str | None:
        """The id of the order our conditional order placed when it triggered; None while it
        has not, when it placed none, or where the venue keeps a triggered order under its own
        id. Triggered with its order not named yet: :class:`RetryableVenueError` (a cancel
        now could reach neither the trigger nor the order)."""
        try:
            fired = self._fired(client, self._conditional_order(client, market, cid))
        except (ccxt.NotSupported, ccxt.OrderNotFound):
            return None
        if fired is None or fired.refused:
            return None
        if not fired.order_id:
            raise self._not_listed_yet()
        return fired.order_id

    def cancel_order(self, request: OrderRequest, exchange_order_id: str) -> OrderResult:
        """Cancel one order by the venue's id (looked up by client id when the Order has none),
        in the book it rests in (a conditional order in the venue's trigger book where it keeps
        one apart); its state afterwards is read back by client id. The venue's "unknown order"
        on the cancel means it finished first: the read-back says how."""
        order_id = exchange_order_id
        if not order_id:
            known = self.fetch_order_by_client_id(request)
            if known is None or not known.exchange_order_id:
                raise OrderNotFound(self._message(_("The venue has no such order")))
            if known.status not in LIVE_STATUSES:
                return known
            order_id = known.exchange_order_id
        market = self.market(request.market_type, request.symbol)
        conditional = request.order_type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
        extra = self._cancel_params(request.market_type, conditional)
        client, lock = self._client(request.market_type)
        with lock:
            try:
                self._load_markets(client, request.market_type)
                accepted = self._cancel_where_it_rests(client, market, request, order_id, extra)
            except ccxt.BaseError as e:
                raise self._translate(e) from e
            finally:
                self._balance_moves(request.market_type)  # the funds it held are free
        try:
            known = self.fetch_order_by_client_id(replace(request, exchange_order_id=order_id))
        except VenueError as e:
            if not accepted:
                raise
            # Accepted is not yet cancelled (below), and the order may fill first: it stays
            # live, and the live refresh reads how it ends.
            log.warning("%s 취소 후 주문 상태 확인 실패 (취소는 접수됨): %s", self.display_name, e.message)
            raise CancelSentUnread(
                self._message(
                    _(
                        "The cancel was sent but the order could not be read back; it is followed until it ends"
                    )
                )
            ) from e
        if accepted and known is not None and known.status in LIVE_STATUSES:
            # A venue's acceptance is not the cancel (OKX: sCode 0 "only means that your
            # cancellation request has been accepted"), and the order may still fill before
            # it takes effect: it stays live, and the live refresh reads how it ends.
            known.exchange_order_id = known.exchange_order_id or order_id
            known.message = _(
                "Cancel requested; the venue still shows the order live and it is followed until it ends"
            )
            return known
        return state_after_cancel(known, order_id, accepted=accepted)

    def _cancel_where_it_rests(
        self,
        client: ccxt.Exchange,
        market: dict[str, Any],
        request: OrderRequest,
        order_id: str,
        extra: dict[str, Any],
    ) -> bool:
        """Send the cancel; False when the venue has nothing live to cancel. A conditional order
        in a trigger book that has triggered is done there, and the order it placed may rest in
        the regular book: the cancel goes to that order. The trigger may fire between the
        lookup and the cancel, and a venue may then refuse the cancel (Binance ``-2011``, OKX
        ``51402``) or answer it without cancelling anything (Bitget lists the plan in its
        ``failureList`` under code 00000): the lookup is made once more after the cancel, and
        an order the trigger placed meanwhile is cancelled too."""
        symbol = market["symbol"]
        if not (extra.get("trigger") and self.triggers_place_new_orders):
            try:
                client.cancel_order(order_id, symbol, extra)
            except ccxt.OrderNotFound:
                return False
            return True
        cid = request.client_order_id
        placed = self._triggered_order_id(client, market, cid)
        if not placed:
            try:
                client.cancel_order(order_id, symbol, extra)
                accepted = True
            except ccxt.InvalidOrder:  # OrderNotFound, or e.g. Bitget 43025 "Plan order does not exist"
                accepted = False  # the read-back says how it ended (or that it is still live)
            placed = self._triggered_order_id(client, market, cid)
            if not placed:
                return accepted
        try:
            client.cancel_order(placed, symbol)
        except ccxt.OrderNotFound:
            return False  # the placed order filled or was cancelled first
        return True

    def _cancel_params(self, market_type: str, conditional: bool) -> dict[str, Any]:
        """The params sending one cancel to the right book: a conditional order's goes to the
        trigger book where the venue keeps one apart (``_order_books``), others to the regular."""
        if conditional and any(book.get("trigger") for book in self._order_books(market_type)):
            return {"trigger": True}
        return {}

    def cancel_all(self, market_type: str, symbol: str | None) -> int:
        """Cancel every open order (conditional ones too where the venue keeps them apart).

        Each symbol's list (and each order, where the venue cancels one at a time) is tried
        once; a failure does not stop the others. Returns how many were cancelled; raises
        :class:`CancelAllIncomplete` with that count and the failures when any failed."""
        client, lock = self._client(market_type)
        failures: list[str] = []
        count = 0
        with lock:
            try:
                self._load_markets(client, market_type)
                if symbol:
                    symbols = [self.market(market_type, symbol)["symbol"]]
                else:
                    # Every symbol with something open, conditional orders included.
                    symbols = sorted(
                        {
                            o["symbol"]
                            for extra in self._order_books(market_type)
                            for o in client.fetch_open_orders(None, None, None, extra)
                        }
                    )
            except ccxt.BaseError as e:
                raise self._translate(e) from e
            try:
                for sym in symbols:
                    count += self._cancel_symbol(client, market_type, sym, failures)
            finally:
                self._balance_moves(market_type)  # the funds they held are free
        if failures:
            raise CancelAllIncomplete(self._message("; ".join(failures)), cancelled=count, failures=failures)
        return count

    def _order_books(self, market_type: str) -> list[dict[str, Any]]:
        """Params selecting each separate list of open orders the venue keeps (a hook)."""
        kind = "swap" if market_type == MarketType.FUTURES else "spot"
        if market_type in self.trigger_books:
            return [{"type": kind}, {"type": kind, "trigger": True}]
        if market_type == MarketType.FUTURES:
            return [{"type": "swap"}]
        return [{"type": "spot"}]

    def _cancel_symbol(
        self, client: ccxt.Exchange, market_type: str, symbol: str, failures: list[str]
    ) -> int:
        """Cancel ``symbol``'s open orders, book by book; a failure is appended to ``failures``
        ("BTC/USDT 1001: <the venue's words>") and the next book or order is still tried."""
        count = 0
        for extra in self._order_books(market_type):
            try:
                opened = client.fetch_open_orders(symbol, None, None, extra)
            except ccxt.BaseError as e:
                failures.append(f"{symbol}: {venue_message(e)}")
                continue
            if not opened:
                continue
            if self.cancel_batch:
                try:
                    count += self._cancel_batches(
                        client, symbol, [o["id"] for o in opened], bool(extra.get("trigger"))
                    )
                except ccxt.BaseError as e:
                    failures.append(f"{symbol} {', '.join(str(o['id']) for o in opened)}: {venue_message(e)}")
                continue
            if client.has.get("cancelAllOrders"):
                try:
                    client.cancel_all_orders(symbol, extra)
                    count += len(opened)
                except ccxt.BaseError as e:
                    failures.append(f"{symbol} {', '.join(str(o['id']) for o in opened)}: {venue_message(e)}")
                continue
            for order in opened:
                try:
                    client.cancel_order(order["id"], symbol, extra)
                    count += 1
                except ccxt.OrderNotFound:
                    pass  # filled or cancelled in the meantime: nothing left to cancel
                except ccxt.BaseError as e:
                    failures.append(f"{symbol} {order['id']}: {venue_message(e)}")
        return count

    def _cancel_batches(self, client: ccxt.Exchange, symbol: str, ids: list[str], trigger: bool) -> int:
        """Cancel ``ids`` through the venue's batch cancel, ``cancel_batch`` (trigger orders:
        ``cancel_batch_trigger``) at a time; returns how many the venue cancelled (one filled
        meanwhile is not)."""
        size = (self.cancel_batch_trigger if trigger else None) or self.cancel_batch
        assert size, "only venues with a batch cancel get here"
        count = 0
        for start in range(0, len(ids), size):
            try:
                answers = client.cancel_orders(
                    ids[start : start + size], symbol, {"trigger": True} if trigger else {}
                )
            except ccxt.OrderNotFound:
                continue  # every one of them was filled or cancelled in the meantime
            count += sum(1 for answer in answers if answer.get("status") != "rejected")
        return count

    # --- sizing -----------------------------------------------------------------------
    def _order_shape(self, request: OrderRequest) -> tuple[str, Decimal | None, Decimal | None]:
        """(ccxt type, limit price, trigger price) for our order type."""
        kind = request.order_type
        if kind == OrderType.MARKET:
            return "market", None, None
        if kind == OrderType.LIMIT:
            return "limit", request.price, None
        if kind == OrderType.STOP_MARKET:
            return "market", None, request.stop_price
        if kind == OrderType.STOP_LIMIT:
            return "limit", request.price, request.stop_price
        raise OrderRejected(
            _("%(order_type)s orders are not supported on %(venue)s")
            % {"order_type": kind, "venue": self.display_name}
        )

    def _reference_price(self, request: OrderRequest, market: dict[str, Any]) -> Decimal:
        for candidate in (request.price, request.stop_price):
            if candidate:
                return candidate
        known = self._layer_price(request, market)
        if known is not None:
            return known
        ticker = self._call(request.market_type, "fetch_ticker", market["symbol"])
        price = (
            to_decimal(ticker.get("last")) or to_decimal(ticker.get("close")) or to_decimal(ticker.get("ask"))
        )
        if not price:
            raise RetryableVenueError(
                self._message(_("no price for %(symbol)s") % {"symbol": market["symbol"]})
            )
        return price

    def _leverage(self) -> Decimal:
        return Decimal(str(self.settings.get("leverage", 1)))

    def _size(
        self, request: OrderRequest, market: dict[str, Any], known_price: Decimal | None
    ) -> tuple[str, Decimal, bool, Decimal | None]:
        """(ccxt side, base amount before precision, reduce-only, reference price) from qty_per
        (SPEC §2.1). Balances are read before the ticker: ccxt's throttle spaces a request by
        its own weight, and the balance is the heavy one."""
        qty_per = request.qty_per
        if qty_per is None or qty_per == 0:
            raise OrderRejected(_("qty_per is required"))
        side = request.side.lower()

        def price() -> Decimal:
            return known_price or self._reference_price(request, market)

        if request.is_close:
            fraction = min(abs(qty_per), HUNDRED) / HUNDRED
            if request.market_type != MarketType.FUTURES:
                # A close reads the holding from the venue: a resting order may have filled
                # since the snapshot (the futures position is read from the venue likewise).
                raw = self._read_balance(request.market_type)
                free = self._holding(request.market_type, raw, market)
                if free <= 0:
                    raise OrderRejected(_("No long position to close"))
                return "sell", free * fraction, False, price()
            position = self.position(request.market_type, request.symbol)
            if position == 0 or (side == "sell" and position < 0) or (side == "buy" and position > 0):
                raise OrderRejected(
                    _("No short position to close") if side == "buy" else _("No long position to close")
                )
            # Reduce-only: no notional minimum to check, so no price needed.
            return ("sell" if position > 0 else "buy"), abs(position) * fraction, True, known_price
        fraction = qty_per / HUNDRED
        if request.market_type == MarketType.FUTURES:
            equity = self._total(request.market_type, market["settle"] or market["quote"])
            reference = price()
            return side, equity * fraction * self._leverage() / reference, False, reference
        if side == "buy":
            free_quote = self._free(request.market_type, market["quote"])
            reference = price()
            spend = free_quote * fraction
            fee = self._buy_fee_on_top(market)
            if fee:
                # The venue holds the fee with the amount: all of the free quote cannot be spent.
                spend = min(spend, free_quote / (ONE + fee))
            return side, spend / reference, False, reference
        free_base = self._holding(request.market_type, self._balance(request.market_type), market)
        return side, free_base * fraction, False, price()

    def _buy_fee_on_top(self, market: dict[str, Any]) -> Decimal:
        """The fee rate a spot buy must hold on top of the amount it spends, where the venue
        charges it in the quote currency (a hook; ZERO where the fee is taken from what is
        bought or received)."""
        return ZERO

    def _holding(self, market_type: str, raw: dict[str, Any], market: dict[str, Any]) -> Decimal:
        """The free base amount of ``market`` in the balances ``raw`` (:func:`holding`)."""
        client, _lock = self._client(market_type)
        base = market["base"]
        return holding(
            (raw.get("free") or {}).get(base),
            precision_step(client, market, "amount"),
            (raw.get("exact_free") or {}).get(base),
        )

    def _amount_to_precision(self, market_type: str, symbol: str, amount: Decimal) -> Decimal:
        client, _lock = self._client(market_type)
        try:
            return Decimal(client.amount_to_precision(symbol, float_down(amount)))
        except ccxt.InvalidOrder:
            # ccxt refuses amounts that truncate to zero; report it as below the minimum.
            return ZERO
        except ccxt.BaseError as e:
            raise self._translate(e) from e

    def _price_to_precision(self, market_type: str, symbol: str, price: Decimal) -> Decimal:
        client, _lock = self._client(market_type)
        try:
            return Decimal(client.price_to_precision(symbol, float(price)))
        except ccxt.BaseError as e:
            raise self._translate(e) from e

    def _check_minimums(
        self, market: dict[str, Any], amount: Decimal, price: Decimal | None, reduce_only: bool
    ) -> None:
        """Trading rules checked locally, before any order request is sent."""
        limits = market.get("limits") or {}
        min_amount = to_decimal((limits.get("amount") or {}).get("min"))
        if min_amount is not None:
            min_amount *= contract_size(market)  # contract markets count their minimum in contracts
        if amount <= 0 or (min_amount is not None and amount < min_amount):
            raise OrderRejected(
                _("Order quantity %(amount)s is below the minimum %(minimum)s for %(symbol)s")
                % {"amount": amount, "minimum": min_amount or 0, "symbol": market["symbol"]}
            )
        if reduce_only or price is None:
            return
        min_cost = to_decimal((limits.get("cost") or {}).get("min"))
        if min_cost is None:
            min_cost = self.min_cost.get(market["quote"])
        notional = (amount * price).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
        if min_cost is not None and notional < min_cost:
            raise OrderRejected(
                _("Order value %(notional)s is below the minimum order value %(minimum)s for %(symbol)s")
                % {"notional": notional.normalize(), "minimum": min_cost, "symbol": market["symbol"]}
            )

    def _prepare_futures(self, symbol: str) -> None:
        """Apply the account's leverage and margin mode once per client and symbol."""
        client, lock = self._client(MarketType.FUTURES)
        done: set[str] = client.options.setdefault("qt_prepared", set())
        if symbol in done:
            return
        with lock:
            try:
                self._apply_futures_settings(client, symbol)
            except ccxt.BaseError as e:
                raise self._translate(e) from e
        done.add(symbol)

    def _apply_futures_settings(self, client: ccxt.Exchange, symbol: str) -> None:
        """Set the account's leverage and margin mode on ``symbol`` (a hook: OKX sets leverage
        per margin mode)."""
        if "leverage" in self.settings and client.has.get("setLeverage"):
            try:
                client.set_leverage(int(self._leverage()), symbol)
            except ccxt.BadRequest as e:
                if venue_code(e) not in self.leverage_unchanged_codes:
                    raise
        margin_mode = self.settings.get("margin_mode")
        if margin_mode and client.has.get("setMarginMode"):
            try:
                client.set_margin_mode(str(margin_mode).lower(), symbol)
            except ccxt.NoChange:  # MarginModeAlreadySet is one
                pass
            except ccxt.ExchangeError as e:
                if "No need to change" not in str(e):
                    raise


def _market_buy_spends_quote(client: ccxt.Exchange, market: dict[str, Any]) -> bool:
    """Whether ccxt turns a spot market buy into a quote amount (Upbit: a top-level option;
    Bitget: ``options["createOrder"]``), so the adapter hands it the cost itself."""
    if market.get("contract"):
        return False
    nested = client.options.get("createOrder")
    return bool(
        client.options.get("createMarketBuyOrderRequiresPrice")
        or (isinstance(nested, dict) and nested.get("createMarketBuyOrderRequiresPrice"))
    )


def _rebase(urls: Any, base: str) -> Any:
    """Point every API URL (nested dicts of strings) at ``base``, keeping each path."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str):
        return re.sub(r"^https?://[^/]+", base, urls)
    return urls
