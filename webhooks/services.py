"""Webhook intake: authenticate, validate, persist, hand off (SPEC §2, §6).

`webhook_ingest` is the one path every signal takes — the HTTP view, the pages' "send a test
signal" and "replay" actions all call it. It never waits for an exchange: it commits the
WebhookEvent and its Orders, and only then (on commit) hands them to the workers with one
broker publish (``orders_dispatch``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    transaction,
)
from django.db.models import TextField
from django.db.models.base import ModelState
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _
from limits import RateLimitItem
from limits.strategies import FixedWindowRateLimiter

from live.bus import group_send
from notify.events import emit
from notify.models import EventKind
from orders import handoff
from orders.approval import approval_deadline, approval_needed, approval_pending_announce
from orders.models import Order
from orders.risk import RISK_LIMIT, STRATEGY_PAUSED, ProposedOrder, risk_limit_hit, signal_refusal
from orders.selectors import order_summary
from orders.services import orders_dispatch
from orders.trail import StageClock
from quanttrade.crypto import decrypt
from quanttrade.logging import redact
from quanttrade.prepared import bulk_insert, bulk_insert_together
from quanttrade.rates import SharedLimiter, rate_item
from quanttrade.vocabulary import OrderStatus
from strategies.addressing import sample_payload
from strategies.generation import strategies_generation
from strategies.models import Strategy, StrategyAccount
from webhooks.models import IdempotencyKey, WebhookEvent, WebhookOutcome
from webhooks.spool import (
    SpooledWebhook,
    SpoolFullError,
    now_iso,
    spool_claim,
    spool_done,
    spool_files,
    spool_read,
    spool_waiting,
    spool_write,
)
from webhooks.validation import (
    DEPRECATED_FIELDS,
    WebhookError,
    WebhookMessage,
    deprecated_message,
    validate_message,
)

log = logging.getLogger("quanttrade.webhook")

REDACTED = "***"
# A webhook is at most: body -> orders -> one order -> params -> a value. Room to spare.
MAX_JSON_DEPTH = 8
# A number's magnitude is 0 or within 1e-100 .. 1e100: no price, quantity or parameter comes
# near, and Decimal arithmetic on anything beyond (1E+1000000 overflows the default context's
# exponent limit) would fail after the request was let in.
MAX_NUMBER_EXPONENT = 100
_INT_LIMIT = 10 ** (MAX_NUMBER_EXPONENT + 1)


@dataclass(frozen=True)
class IngestResult:
    status: int
    body: dict[str, Any]
    event_id: UUID | None = None


def webhook_ingest(
    raw_body: bytes,
    *,
    source_ip: str | None,
    idempotency_header: str | None = None,
    replay_of: WebhookEvent | None = None,
    event_id: UUID | None = None,
    from_spool: bool = False,
    clock: StageClock | None = None,
) -> IngestResult:
    """Process one webhook body. Returns the HTTP status and JSON body to send back.

    Accepted webhooks are committed (event + orders) before this returns; every rejection is
    recorded as a WebhookEvent too, so the log shows what was refused and why. When the
    database cannot be reached the signal is spooled instead (webhooks/spool.py) and answered
    202 ``"status": "spooled"``; ``from_spool`` is the replay of such a signal under its
    ``event_id`` (database errors then propagate: the file stays until the database answers).
    ``clock``: the request's stage clock, started as it arrived (orders/trail.py); default now.
    """
    state = _IngestState(
        clock=clock or StageClock.start(),
        raw_body=raw_body,
        source_ip=source_ip,
        replay_of=replay_of,
        event_id=event_id or uuid4(),
        from_spool=from_spool,
    )
    if not from_spool:
        spool_replayer_start()
    try:
        with handoff.intake():  # embedded: background work waits for the answer
            return _ingest(state, idempotency_header)
    except WebhookError as error:
        return _refused(state, error)
    except _StrategyUnknownError:
        return _spool(state, idempotency_header, verified=False, warnings=[])
    except DatabaseError as exc:
        if from_spool:
            raise
        _db_failed()
        log.error("데이터베이스 오류로 웹훅 저장 실패: %s — 수신: %s", exc, _received(state))
        return _spool(state, idempotency_header, verified=state.strategy is not None, warnings=[])
    except Exception:
        if not from_spool:
            log.error("웹훅 처리 중 오류 — 수신: %s", _received(state))  # the error itself: Django's log
            raise
        # A spooled signal was answered 202 when it arrived: a fault in its processing (a bug,
        # not the database) is recorded as its outcome, and the spool goes on with the others.
        log.exception("임시 저장 웹훅 처리 중 오류 — 수신: %s", _received(state))
        return _refused(
            state,
            WebhookError(
                _("The spooled webhook could not be processed (internal error); it was not placed"),
                code="internal_error",
                status=500,
            ),
        )


def _refused(state: _IngestState, error: WebhookError) -> IngestResult:
    """A refusal's answer, with its record and, for an authenticated strategy, its message."""
    log.error("웹훅 처리 실패: [%s] %s — 수신: %s", error.code, error.message, _received(state))
    event = _record_rejection(state, error)
    if state.strategy is not None and event is not None:
        # Only refusals of an authenticated strategy's signal are worth a message: anyone
        # can send garbage to the endpoint, and that must not page the operator. (No event:
        # the database is down, and the notification would wait for it on this response.)
        emit(
            EventKind.WEBHOOK_REFUSED,
            strategy=state.strategy.group_name,
            webhook_id=event.id,
            message=f"[{error.code}] {error.message}",
        )
    return IngestResult(error.status, error.envelope(), event.id if event else None)


def _received(state: _IngestState) -> Any:
    """The payload as logged (its token replaced); "-" when the body was not JSON."""
    return state.redacted if state.redacted is not None else "-"


@dataclass
class _IngestState:
    raw_body: bytes
    source_ip: str | None
    replay_of: WebhookEvent | None
    payload: dict[str, Any] | None = None
    redacted: dict[str, Any] | None = None  # the payload with its token replaced: logs, the event
    strategy: Strategy | None = None
    event_id: UUID = field(default_factory=uuid4)
    from_spool: bool = False
    db_down: bool = False  # the database did not answer: authenticated from the cache, spooled
    clock: StageClock = field(default_factory=StageClock.start)  # the latency trail's start
    links: list[StrategyAccount] = field(default_factory=list)  # read with the strategy


# --- the database is down: authenticate from memory, spool --------------------------------

# After a database error the intake does not try the database again for this long: each try
# can wait DB_POOL_TIMEOUT for a connection, and TradingView gives up after 3 s.
DB_BACKOFF_SECONDS = 2.0
_db_down_until = 0.0
# group_name -> (when looked up, the Strategy as the database last returned it).
_strategy_cache: dict[str, tuple[float, Strategy]] = {}


class _StrategyUnknownError(Exception):
    """The database is down and this process has not seen the strategy recently."""


def _db_failed() -> None:
    global _db_down_until
    _db_down_until = time.monotonic() + DB_BACKOFF_SECONDS


def _db_suspect() -> bool:
    return time.monotonic() < _db_down_until


def _find_strategy(state: _IngestState, group_name: str) -> Strategy | None:
    """The strategy from the database; while the database is down, from this process's
    short-lived copy (WEBHOOK_AUTH_CACHE_SECONDS), so the token can still be checked."""
    if state.from_spool or not _db_suspect():
        try:
            strategy = _strategy_with_links_cached(state, group_name)
        except DatabaseError:
            if state.from_spool:
                raise
            _db_failed()
        else:
            if strategy is not None:
                _strategy_cache[group_name] = (time.monotonic(), strategy)
            return strategy
    state.db_down = True
    cached = _strategy_cache.get(group_name)
    if cached is None or time.monotonic() - cached[0] > settings.WEBHOOK_AUTH_CACHE_SECONDS:
        raise _StrategyUnknownError
    return cached[1]


# group_name -> (generation token, when read, the Strategy, its links): the last read of each
# strategy, used while strategies.generation's token is unchanged (no Strategy, Account or link
# has changed since) and for at most WEBHOOK_STRATEGY_CACHE_SECONDS (a change made outside the
# product, by SQL, is seen within that). The entries are shared by the request threads and
# never modified.
_links_cache: dict[str, tuple[str, float, Strategy, tuple[StrategyAccount, ...]]] = {}
_LINKS_CACHE_MAX = 1000


def _strategy_with_links_cached(state: _IngestState, group_name: str) -> Strategy | None:
    """:func:`_strategy_with_links`, from this process's entry when nothing has changed since
    it was read (see above): no query at all."""
    max_age = float(settings.WEBHOOK_STRATEGY_CACHE_SECONDS)
    generation = strategies_generation() if max_age > 0 else None
    entry = _links_cache.get(group_name)
    if (
        generation is not None
        and entry is not None
        and entry[0] == generation
        and time.monotonic() - entry[1] < max_age
    ):
        state.links = list(entry[3])
        return entry[2]
    strategy = _strategy_with_links(state, group_name)
    if generation is not None and strategy is not None:
        if len(_links_cache) >= _LINKS_CACHE_MAX:
            _links_cache.clear()
        _links_cache[group_name] = (generation, time.monotonic(), strategy, tuple(state.links))
    return strategy


# What the intake reads of a linked account: no credentials (decrypting them is the worker's
# job; at 16 µs a secret it would dominate a large fan-out's accept).
_LINK_FIELDS = (
    "is_active",
    "account__name",
    "account__exchange",
    "account__is_active",
    "account__approval_required",
)


def _strategy_with_links(state: _IngestState, group_name: str) -> Strategy | None:
    """The strategy and its links (state.links: active links of active accounts, by account
    name) in ONE query. The strategy's token is read as its stored ciphertext and decrypted
    once (each row repeats it); a strategy without any link costs a second query."""
    rows = list(
        StrategyAccount.objects.filter(strategy__group_name=group_name)
        .select_related("strategy", "account")
        .only(
            *_LINK_FIELDS,
            *(f"strategy__{f.attname}" for f in Strategy._meta.concrete_fields if f.name != "token"),
        )
        .annotate(strategy_token_stored=Cast("strategy__token", output_field=TextField()))
        .order_by("account__name", "pk")
    )
    if not rows:
        state.links = []
        return Strategy.objects.filter(group_name=group_name).first()
    strategy = rows[0].strategy
    stored = rows[0].strategy_token_stored
    strategy.token = decrypt(stored) if stored else stored
    state.links = [link for link in rows if link.is_active and link.account.is_active]
    for link in state.links:
        link.strategy = strategy
    return strategy


def _spool(
    state: _IngestState,
    idempotency_header: str | None,
    *,
    verified: bool,
    warnings: list[str],
    behind: bool = False,
) -> IngestResult:
    payload = state.payload or {}
    group_name = str(payload.get("group_name") or "")[:200]
    item = SpooledWebhook(
        webhook_id=state.event_id,
        raw_body=state.raw_body,
        source_ip=state.source_ip,
        idempotency_header=idempotency_header,
        received_at=now_iso(),
        verified=verified,
    )
    try:
        spool_write(item)
    except (SpoolFullError, OSError) as exc:
        log.critical("웹훅 임시 저장 실패 (DB 장애 중): webhook_id=%s %r", state.event_id, exc)
        error = WebhookError(
            _("The server cannot store webhooks right now; retry shortly"), code="unavailable", status=503
        )
        return IngestResult(error.status, error.envelope(), None)
    log.warning(
        "%s: 웹훅 임시 저장 (webhook_id=%s strategy=%s 토큰 확인=%s), DB 복구 후 처리 — 수신: %s",
        "앞서 임시 저장된 웹훅 처리 대기 (순서 유지)" if behind else "DB 장애",
        state.event_id,
        group_name,
        "예" if verified else "복구 후",
        _received(state),
    )
    body = {
        "success": True,
        "webhook_id": str(state.event_id),
        "strategy": group_name,
        "status": "spooled",
        "orders": [],
        "warnings": warnings,
    }
    return IngestResult(202, body, None)


# --- the spool's replay ------------------------------------------------------------------


def webhooks_spool_replay() -> dict[str, int]:
    """Feed spooled webhooks, oldest first, through the intake under their own webhook_id.

    The pass stops where the database cannot be reached (``waiting``: the rest wait for the next
    pass) and at a file another process is replaying (``held``: the ones behind it must not
    overtake it, so a close sent after an outage never runs before the open sent during it).
    Anything else that fails stops only its own signal: recorded as refused by the intake, or
    its file kept aside as ``.failed`` (a signal the database refuses whatever is tried, say),
    so no file can hold up the spool for good. Returns the counts."""
    counts = {"ingested": 0, "already": 0, "waiting": 0, "held": 0, "failed": 0}
    files = spool_files()
    for position, path in enumerate(files):
        with spool_claim(path) as mine:
            if not mine:
                if path.exists():
                    counts["held"] = len(files) - position
                    break
                continue  # done by another process meanwhile
            try:
                item = spool_read(path)
            except (ValueError, KeyError, OSError) as exc:
                log.error("임시 저장 파일을 읽을 수 없음 (보존): %s %s", path, exc)
                path.rename(path.with_suffix(".unreadable"))
                continue
            try:
                if WebhookEvent.objects.filter(pk=item.webhook_id).exists():
                    counts["already"] += 1
                else:
                    result = webhook_ingest(
                        item.raw_body,
                        source_ip=item.source_ip,
                        idempotency_header=item.idempotency_header,
                        event_id=item.webhook_id,
                        from_spool=True,
                    )
                    counts["ingested"] += 1
                    log.info(
                        "임시 저장 웹훅 처리: webhook_id=%s (수신 %s) -> %s",
                        item.webhook_id,
                        item.received_at,
                        result.status,
                    )
            except IntegrityError:
                if not WebhookEvent.objects.filter(pk=item.webhook_id).exists():
                    _spooled_set_aside(path, item.webhook_id, counts)
                    continue
                counts["already"] += 1  # another process stored it first
            except (OperationalError, InterfaceError) as exc:
                log.warning("임시 저장 웹훅 재처리 대기 (DB 미복구): %s", exc)
                counts["waiting"] = len(files) - position
                break
            except Exception:
                # Not an outage (a fault, or the database refusing this signal's data): kept
                # aside for the operator, and the signals behind it still go in.
                _spooled_set_aside(path, item.webhook_id, counts)
                continue
            spool_done(path)
    return counts


def _spooled_set_aside(path: Path, webhook_id: UUID, counts: dict[str, int]) -> None:
    log.exception("임시 저장 웹훅 처리 실패 (보존: .failed): webhook_id=%s", webhook_id)
    path.rename(path.with_suffix(".failed"))
    counts["failed"] += 1


class _SpoolReplayer:
    """One daemon thread per process that looks at the spool every WEBHOOK_SPOOL_REPLAY_SECONDS
    and replays it until it is empty: signals arriving meanwhile are spooled behind the waiting
    ones (``_ingest``), so a pass that leaves some is followed by the next at once, while each
    makes progress (not while the database is still away, or another process holds the files)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="webhook-spool", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(settings.WEBHOOK_SPOOL_REPLAY_SECONDS)
            try:
                while spool_files():
                    counts = webhooks_spool_replay()
                    if (
                        counts["waiting"]
                        or counts["held"]
                        or not (counts["ingested"] + counts["already"] + counts["failed"])
                    ):
                        break
            except Exception:  # the thread must outlive any one failure
                log.exception("임시 저장 웹훅 재처리 실패")
            finally:
                close_old_connections()


_replayer: _SpoolReplayer | None = None
_replayer_lock = threading.Lock()


def spool_replay_automatic() -> bool:
    """WEBHOOK_SPOOL_REPLAY_SECONDS is not 0: each web process replays the spool by itself."""
    return settings.WEBHOOK_SPOOL_REPLAY_SECONDS > 0


def spool_replayer_start() -> None:
    """Start this process's spool replayer (once; again in a forked child), unless replays are
    left to ``manage.py webhook_spool --replay`` (WEBHOOK_SPOOL_REPLAY_SECONDS = 0)."""
    global _replayer
    if _replayer is not None and _replayer.pid == os.getpid():
        return
    if not spool_replay_automatic():
        return
    with _replayer_lock:
        if _replayer is None or _replayer.pid != os.getpid():
            _replayer = _SpoolReplayer()


def _ingest(state: _IngestState, idempotency_header: str | None) -> IngestResult:
    if len(state.raw_body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise payload_too_large()
    payload = parse_body(state.raw_body)
    # Logged with its outcome, one line a webhook (_accept, _idempotent_replay, webhook_ingest's
    # handlers): a line is ~0.3-0.6 ms of the request's thread at INFO, on its way to the commit
    # (docs/benchmarks-speed.md, round 29).
    state.payload, state.redacted = payload, redact_payload(payload)

    token = payload.get("token")
    if token is None or token == "":
        raise WebhookError(_("A webhook token is required"), code="token_missing")
    group_name = payload.get("group_name")
    if group_name is None or group_name == "":
        raise WebhookError(
            _("Missing required field: %(field)s") % {"field": "group_name"}, code="missing_field"
        )
    if not isinstance(group_name, str):
        raise WebhookError(_("%(field)s must be a string") % {"field": "group_name"}, code="invalid_field")
    strategy = _find_strategy(state, group_name)
    if strategy is None:
        raise WebhookError(
            _("Strategy not found: %(group_name)s") % {"group_name": group_name[:100]},
            code="strategy_not_found",
            status=404,
        )
    if not isinstance(token, str) or not strategy.token_matches(token):
        raise WebhookError(_("The webhook token is invalid"), code="token_invalid", status=401)
    state.strategy = strategy
    if not strategy.is_active:
        raise WebhookError(
            _("The strategy is inactive: %(group_name)s") % {"group_name": strategy.group_name},
            code="strategy_inactive",
            status=403,
        )
    if not state.from_spool:  # a replayed signal was counted when it arrived
        _check_rate_limit(strategy)

    key = _idempotency_key(payload, idempotency_header)
    if key and not state.db_down:
        replayed = _idempotent_replay(strategy, key, state)
        if replayed:
            return replayed

    deprecated = [name for name in DEPRECATED_FIELDS if name in payload]
    if deprecated:
        raise WebhookError(deprecated_message(deprecated), code="deprecated_fields")
    message = validate_message(payload, strategy.market_type, strategy.default_currency)
    _check_signal(strategy, message)
    if state.db_down:
        return _spool(state, idempotency_header, verified=True, warnings=message.warnings)
    if not state.from_spool and spool_replay_automatic() and spool_waiting():
        # Signals spooled during an outage are not all replayed yet: this one goes behind them,
        # so a close or a CANCEL_ALL_ORDER sent after the outage never runs before the orders
        # sent during it (the replay keeps the arrival order). With replays left to the
        # operator (WEBHOOK_SPOOL_REPLAY_SECONDS = 0) signals go straight in, as before.
        spooled = _spool(state, idempotency_header, verified=True, warnings=message.warnings, behind=True)
        if spooled.status == 202:
            return spooled
        # The spool is full or cannot be written: straight in, rather than refused.
    links = state.links
    if not links:
        raise WebhookError(_("No accounts are linked to the strategy"), code="no_accounts")
    return _accept(state, strategy, message, [link.account for link in links], key)


def _check_signal(strategy: Strategy, message: WebhookMessage) -> None:
    """The guard rails decidable at intake (issue #14, SPEC §7b): the signal's age against the
    strategy's max signal age, then the strategy's pause and static risk limits (orders/risk.py).
    Raises WebhookError; the refusal is stored with the event like any other."""
    now = timezone.now()
    max_age = strategy.max_signal_age_seconds
    if max_age is not None and message.timestamp is not None:
        age = (now - message.timestamp).total_seconds()
        if age > max_age:
            raise WebhookError(
                _("The signal is stale: sent %(age)d seconds ago, the strategy accepts at most %(max)d")
                % {"age": int(age), "max": max_age},
                code="signal_stale",
            )
        if -age > max_age:
            # Further ahead than the age allowed: the sender's clock or time zone is off (local
            # time written without its offset is read as UTC), and such a signal could never
            # be found stale. Refused as the age guard's, saying why.
            raise WebhookError(
                _(
                    "The signal's time is %(ahead)d seconds ahead of the server's clock (check the "
                    "sender's clock and time zone; without an offset the time is read as UTC), the "
                    "strategy accepts at most %(max)d"
                )
                % {"ahead": int(-age), "max": max_age},
                code="signal_stale",
            )
    proposed = [
        ProposedOrder(
            market_type=strategy.market_type,
            symbol=message.symbol,
            side=spec.side,
            order_type=spec.order_type,
            qty_per=spec.qty_per,
            price=spec.price,
            stop_price=spec.stop_price,
            currency=message.currency,
        )
        for spec in message.orders
    ]
    refusal = signal_refusal(strategy, proposed, now)
    if refusal is not None and refusal.code == RISK_LIMIT:
        risk_limit_hit(refusal, where="intake", subject=f"strategy {strategy.group_name}")
    if refusal is not None:
        status = 403 if refusal.code == STRATEGY_PAUSED else 400
        raise WebhookError(refusal.message, code=refusal.code, status=status)


def payload_too_large() -> WebhookError:
    return WebhookError(
        _("The request body exceeds %(limit)d KiB") % {"limit": settings.WEBHOOK_MAX_BODY_BYTES // 1024},
        code="payload_too_large",
        status=413,
    )


def parse_body(raw_body: bytes) -> dict[str, Any]:
    """The body as a JSON object, numbers as Decimal (never float); NaN/Infinity kept as
    Decimal NaN so the field check can name the field that carried it. Text that no database
    or log can hold (NUL, lone surrogates) and nesting deeper than any message needs are
    refused here, before anything walks the payload recursively."""
    try:
        text = raw_body.decode("utf-8-sig")
        payload = json.loads(text, parse_float=Decimal, parse_constant=lambda _c: Decimal("NaN"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookError(_("The request body is not a valid JSON object"), code="invalid_json") from None
    if not isinstance(payload, dict):
        raise WebhookError(_("The request body is not a valid JSON object"), code="invalid_json")
    problem = _shape_problem(payload)
    if problem:
        raise WebhookError(problem, code="invalid_json")
    return payload


def _shape_problem(payload: dict[str, Any]) -> str | None:
    """Why the parsed body cannot be stored or walked, or None. Iterative: any depth is safe."""
    stack: list[tuple[Any, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            if depth > MAX_JSON_DEPTH:
                break
            for key, item in value.items():
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_JSON_DEPTH:
                break
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, Decimal):
            if (
                value.is_finite()
                and value
                and not -MAX_NUMBER_EXPONENT <= value.adjusted() <= MAX_NUMBER_EXPONENT
            ):
                return _number_out_of_range()
        elif isinstance(value, int) and not isinstance(value, bool):
            if abs(value) >= _INT_LIMIT:
                return _number_out_of_range()
        elif isinstance(value, str):
            if "\x00" in value:
                # No database stores NUL inside text (PostgreSQL refuses it); no field needs it.
                return _("The request body must not contain NUL characters (\\u0000)")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return _(
                    "The request body contains text that is not valid Unicode (a lone surrogate \\uD800-\\uDFFF)"
                )
    else:
        return None
    return _("The request body is nested too deeply (at most %(depth)d levels)") % {"depth": MAX_JSON_DEPTH}


def _number_out_of_range() -> str:
    return _(
        "The request body contains a number out of range (its magnitude must be 0 or between 1e-%(exp)d and 1e%(exp)d)"
    ) % {"exp": MAX_NUMBER_EXPONENT}


# Each strategy's webhooks counted in a fixed window (`limits`): in Redis when REDIS_URL is set,
# shared by every web process, one round trip a webhook (an INCR and its EXPIRE in one script);
# else in this process's memory (embedded mode is one process). Keys
# ``qt-webhook-rate:LIMITER/webhook/<strategy id>/…``, never the token.
WEBHOOK_RATE_KEY_PREFIX = "qt-webhook-rate"
# The cache's timeouts (settings.CACHES): a hung Redis costs about a second here.
_webhook_limits = SharedLimiter(FixedWindowRateLimiter, WEBHOOK_RATE_KEY_PREFIX, socket_timeout=1)


def webhook_rate_limits_reset() -> None:
    """Forget every strategy's count, shared and this process's (tests)."""
    _webhook_limits.reset()


@functools.lru_cache(maxsize=256)
def _rate_item(rate: str) -> RateLimitItem:
    return rate_item(rate)


def _check_rate_limit(strategy: Strategy) -> None:
    rate = strategy.rate_limit or settings.WEBHOOK_RATE_LIMIT
    try:
        item = _rate_item(rate)
    except ValueError:  # stored before the admin validated it: the default still protects
        log.error(
            "전략 %s의 요청 한도 형식 오류 (%r): 기본값 %s 사용",
            strategy.group_name,
            rate,
            settings.WEBHOOK_RATE_LIMIT,
        )
        rate = settings.WEBHOOK_RATE_LIMIT
        item = _rate_item(rate)
    if not _webhook_limits.hit(item, "webhook", str(strategy.pk)):
        raise WebhookError(
            _("Too many webhooks for strategy %(group_name)s (limit %(rate)s); try again later")
            % {"group_name": strategy.group_name, "rate": rate},
            code="rate_limited",
            status=429,
        )


def _idempotency_key(payload: dict[str, Any], header: str | None) -> str:
    raw = payload.get("idempotency_key", header)
    if raw is None or raw == "":
        return ""
    if not isinstance(raw, str | int) or isinstance(raw, bool) or len(str(raw)) > 200:
        raise WebhookError(
            _("idempotency_key must be a string of at most 200 characters"), code="invalid_field"
        )
    return str(raw)


def _idempotency_cutoff() -> Any:
    return timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS)


def _idempotent_replay(strategy: Strategy, key: str, state: _IngestState) -> IngestResult | None:
    record = (
        IdempotencyKey.objects.filter(strategy=strategy, key=key, created_at__gte=_idempotency_cutoff())
        .select_related("event")
        .first()
    )
    if record is None:
        return None
    log.info("웹훅 수신: %s → 중복 (idempotency_key=%s): 최초 응답을 반환합니다", state.redacted, key)
    _record_event(
        state, outcome=WebhookOutcome.DUPLICATE, http_status=202, idempotency_key=key, replay_of=record.event
    )
    return IngestResult(202, record.event.response or {}, record.event.id)


class _DuplicateKeyError(Exception):
    """Another request committed the same idempotency key while this one was being stored."""


def _accept(
    state: _IngestState, strategy: Strategy, message: WebhookMessage, accounts: list[Any], key: str
) -> IngestResult:
    event = _new_event(
        state,
        outcome=WebhookOutcome.ACCEPTED,
        http_status=202,
        idempotency_key=key,
        warnings=message.warnings,
    )
    orders = _build_orders(event, strategy, message, accounts, state.clock)
    # The stored response is built before the insert, so the event is written once.
    event.response = body = _accepted_body(event, strategy, orders, message.warnings)
    # Accounts whose orders wait for approval (semi-automatic mode) are not dispatched now:
    # approving their group dispatches them (orders.approval).
    held = {order.account_id for order in orders if order.status == OrderStatus.PENDING_APPROVAL}
    account_ids = [account.pk for account in accounts if account.pk not in held]
    try:
        if key:
            with transaction.atomic():
                # One prepared INSERT, as for the orders below (Model.save compiled it each time;
                # nothing listens to a webhook event's save signals).
                bulk_insert([event])
                try:
                    with transaction.atomic():
                        # The unique (strategy, key) constraint decides: an expired key makes
                        # room, a live one (a concurrent twin's) fails the insert.
                        IdempotencyKey.objects.filter(
                            strategy=strategy, key=key, created_at__lt=_idempotency_cutoff()
                        ).delete()
                        IdempotencyKey.objects.create(
                            strategy=strategy, key=key, event=event, created_at=event.received_at
                        )
                except IntegrityError:
                    raise _DuplicateKeyError from None
                bulk_insert(orders)  # bulk_create's rows, each shared column prepared once
                _after_commit(state, event, orders, account_ids, held)
        else:
            # The event and its orders, all or none: on PostgreSQL one statement (one round trip
            # instead of a transaction's four), elsewhere one transaction.
            bulk_insert_together([[event], orders])
            _after_commit(state, event, orders, account_ids, held)
    except _DuplicateKeyError:
        # The whole attempt was rolled back; the winner's response is what the sender gets.
        replay = _idempotent_replay(strategy, key, state)
        if replay:
            return replay
        raise WebhookError(
            _("A webhook with this idempotency_key is being processed; retry"),
            code="idempotency_conflict",
            status=409,
        ) from None
    if log.isEnabledFor(logging.INFO):
        # One record per webhook, a line per order: a record each cost the handlers ~0.1 ms, for a
        # 1,000-account fan-out more CPU than the rest of its accept (docs/benchmarks-speed.md).
        lines = [
            f"order_id={order.id} account={order.account.name} {order.symbol or '*'} "
            f"{order.side or '-'} {order.order_type} qty_per={order.qty_per}"
            for order in orders
        ]
        log.info(
            "웹훅 수신: %s → 주문 생성 %d건 (webhook_id=%s):\n  %s",
            state.redacted,
            len(lines),
            event.id,
            "\n  ".join(lines),
        )
    return IngestResult(202, body, event.id)


def _after_commit(
    state: _IngestState, event: WebhookEvent, orders: list[Order], account_ids: list[int], held: set[int]
) -> None:
    """What follows an accepted webhook's commit: its orders' dispatch, the approval request for
    held ones, the live pages' news. Registered with ``on_commit``: they run when the open
    transaction commits, or at once when none is open (the single-statement insert)."""
    transaction.on_commit(lambda: orders_dispatch(event.id, account_ids, clock=state.clock, new=True))
    if held:
        transaction.on_commit(lambda: approval_pending_announce(orders))
    transaction.on_commit(lambda: broadcast_webhook(event))


def _build_orders(
    event: WebhookEvent, strategy: Strategy, message: WebhookMessage, accounts: list[Any], clock: StageClock
) -> list[Order]:
    """The orders of every account, in account order then the message's order.

    Each of the message's orders is built once as a template and copied per account
    (``_order_copy``); the copy gets its own key, account, client order id, status and trail.
    Building each with ``Order(...)`` cost ~95 µs, half of a 1,000-account accept's CPU before
    the insert. The copies share the templates' params and one trail value (JSON values never
    modified here; ``bulk_insert`` then writes each shared one to JSON once)."""
    now = timezone.now()
    received = {"t0": clock.trail["t0"], "received": 0}
    templates = [
        Order(
            webhook=event,
            strategy=strategy,
            sequence=sequence,
            batch_index=spec.batch_index,
            market_type=strategy.market_type,
            symbol=message.symbol,
            currency=message.currency,
            side=spec.side,
            order_type=spec.order_type,
            qty_per=spec.qty_per,
            price=spec.price,
            stop_price=spec.stop_price,
            params=_json_safe(spec.params),  # numbers parsed as Decimal: stored as JSON
        )
        for sequence, spec in enumerate(message.orders)
    ]
    held_until = approval_deadline(strategy, now)
    orders: list[Order] = []
    for account in accounts:
        held = approval_needed(strategy, account)
        status = OrderStatus.PENDING_APPROVAL if held else OrderStatus.QUEUED
        expires = held_until if held else None
        for template in templates:
            key = uuid4()
            orders.append(
                _order_copy(
                    template,
                    account,
                    id=key,
                    status=status,
                    approval_expires_at=expires,
                    trail=received,
                    client_order_id="qt" + key.hex,
                )
            )
    return orders


def _order_copy(template: Order, account: Any, **values: Any) -> Order:
    """``copy.copy(template)`` with ``account`` and then ``values`` assigned: the template's
    field values and cached related objects, its own ``_state`` (Django's pickling hook
    ``Model.__getstate__`` copies the same three things). Built directly: ``copy.copy`` goes
    through the pickling protocol (~13 µs an order) and the account's descriptor (~3 µs), a
    third of a 1,000-account fan-out's build. ``values`` are plain (non-relation) fields.
    tests/webhook/test_intake_copies.py compares it with ``copy.copy``."""
    state = ModelState.__new__(ModelState)
    state.__dict__.update(template._state.__dict__)
    state.fields_cache = {**template._state.fields_cache, "account": account}
    order = Order.__new__(Order)
    order.__dict__.update(template.__dict__)
    order.__dict__.update(values)
    order.account_id = account.pk
    order._state = state
    return order


def _accepted_body(
    event: WebhookEvent, strategy: Strategy, orders: list[Order], warnings: list[str]
) -> dict[str, Any]:
    return {
        "success": True,
        "webhook_id": str(event.id),
        "strategy": strategy.group_name,
        "status": "queued",
        "orders": [order_summary(order) for order in orders],
        "warnings": warnings,
    }


def redact_payload(payload: Any) -> Any:
    """A copy of ``payload`` with every ``token`` value replaced, at any depth."""
    if isinstance(payload, dict):
        return {
            k: (REDACTED if str(k).strip().lower() == "token" and v not in (None, "") else redact_payload(v))
            for k, v in payload.items()
        }
    if isinstance(payload, list):
        return [redact_payload(v) for v in payload]
    return payload


def _json_safe(value: Any) -> Any:
    """Decimals (from parsing) back to JSON: integral ones as ints, others as strings."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() >= 16:  # no arithmetic on it: abs() can overflow
            return str(value)
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _new_event(
    state: _IngestState,
    *,
    outcome: str,
    http_status: int,
    idempotency_key: str = "",
    warnings: list[str] | None = None,
    error: WebhookError | None = None,
    replay_of: WebhookEvent | None = None,
) -> WebhookEvent:
    """An unsaved WebhookEvent describing this request (payload token redacted)."""
    payload = state.payload
    group_name = payload.get("group_name") if payload else ""
    return WebhookEvent(
        id=state.event_id,
        strategy=state.strategy,
        group_name=str(group_name or "")[:200],
        payload=_json_safe(state.redacted) if payload is not None else None,
        raw_body=""
        if payload is not None
        else redact(state.raw_body[:4096].decode("utf-8", "replace")).replace("\x00", "\\x00"),
        source_ip=state.source_ip,
        outcome=outcome,
        http_status=http_status,
        error_code=error.code if error else "",
        error_message=error.message if error else "",
        warnings=warnings or [],
        idempotency_key=idempotency_key,
        replay_of=replay_of or state.replay_of,
    )


def _record_event(state: _IngestState, **fields: Any) -> WebhookEvent:
    event = _new_event(state, **fields)
    event.save(force_insert=True)
    return event


def _record_rejection(state: _IngestState, error: WebhookError) -> WebhookEvent | None:
    """Store a refusal. Before authentication a sender is anyone: what is stored of its body is
    capped, and past WEBHOOK_REFUSED_RECORD_LIMIT per source IP nothing more is stored."""
    if state.db_down or (_db_suspect() and not state.from_spool):
        return None  # the database is down: the refusal is answered and logged, not stored
    if state.strategy is None:
        if _refusals_over_limit(state.source_ip):
            return None
        _cap_unauthenticated(state)
    try:
        event = _record_event(state, outcome=WebhookOutcome.REJECTED, http_status=error.status, error=error)
    except DatabaseError:
        if state.from_spool:
            raise  # kept in the spool until the refusal can be recorded
        log.exception("웹훅 거부 기록 실패")
        return None
    except Exception:
        log.exception("웹훅 거부 기록 실패")
        return None
    broadcast_webhook(event)
    return event


def _refusals_over_limit(source_ip: str | None) -> bool:
    try:
        limited = not _webhook_limits.get().hit(
            _rate_item(settings.WEBHOOK_REFUSED_RECORD_LIMIT), "webhook-refused", f"ip:{source_ip or '-'}"
        )
    except Exception as exc:  # the store may be down: storing a refusal beats losing it
        log.warning("거부 기록 한도 확인 실패: %s", exc)
        return False
    if limited:
        log.warning(
            "거부된 웹훅 기록 생략 (IP %s, 한도 %s)", source_ip, settings.WEBHOOK_REFUSED_RECORD_LIMIT
        )
        return True
    return False


def _cap_unauthenticated(state: _IngestState) -> None:
    """Keep at most WEBHOOK_REFUSED_MAX_STORED_BYTES of an unauthenticated body: a large JSON
    payload is stored as its (redacted, cut) text instead."""
    limit = settings.WEBHOOK_REFUSED_MAX_STORED_BYTES
    if state.redacted is None:
        return
    text = json.dumps(_json_safe(state.redacted), ensure_ascii=False)
    if len(text.encode()) > limit:
        state.payload, state.redacted = None, None
        state.raw_body = text.encode()[:limit]


def webhooks_sweep() -> dict[str, int]:
    """Delete expired idempotency keys and refused webhooks past their retention."""
    keys, _ = IdempotencyKey.objects.filter(created_at__lt=_idempotency_cutoff()).delete()
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_REFUSED_RETENTION_DAYS)
    refused, _ = WebhookEvent.objects.filter(outcome=WebhookOutcome.REJECTED, received_at__lt=cutoff).delete()
    return {"idempotency_keys": keys, "refused_events": refused}


def broadcast_webhook(event: WebhookEvent) -> None:
    """Push the event to staff pages subscribed to the `webhooks` topic. Never raises."""
    group_send(
        "webhooks",
        {
            "type": "webhook.update",
            "webhook": {
                "webhook_id": str(event.id),
                "strategy": event.group_name,
                "outcome": event.outcome,
                "http_status": event.http_status,
                "error_code": event.error_code,
                "error_message": event.error_message,
                "received_at": event.received_at.isoformat(),
            },
        },
    )


# --- helpers for the admin and the pages --------------------------------------------------


def webhook_test_signal(strategy: Strategy) -> IngestResult:
    """Send the strategy's sample order through the real intake path."""
    body = json.dumps(sample_payload(strategy, token=strategy.token)).encode()
    return webhook_ingest(body, source_ip=None)


def webhook_replay(event: WebhookEvent) -> IngestResult:
    """Send a stored event again as a new webhook (the stored payload has no token: the
    strategy's current one is put back; any idempotency key is dropped so it is really new)."""
    if event.payload is None or event.strategy is None:
        raise WebhookError(_("This event has no JSON payload or strategy to replay"), code="not_replayable")
    payload = dict(event.payload)
    payload["token"] = event.strategy.token
    payload.pop("idempotency_key", None)
    return webhook_ingest(json.dumps(payload).encode(), source_ip=None, replay_of=event)
