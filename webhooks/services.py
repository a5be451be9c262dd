"""Webhook intake: authenticate, validate, persist, hand off (SPEC §2, §6).

`webhook_ingest` is the one path every signal takes — the HTTP view, the pages' "send a test
signal" and "replay" actions all call it. It never waits for an exchange: it commits the
WebhookEvent and its Orders, and only then (on commit) enqueues one task per account.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_ratelimit.core import get_usage
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from live.bus import group_send
from orders.models import Order
from orders.selectors import order_summary
from orders.services import orders_dispatch
from quanttrade.logging import redact
from quanttrade.rates import rate_item, rate_seconds
from quanttrade.vocabulary import OrderStatus
from strategies.addressing import sample_payload
from strategies.models import Strategy, StrategyAccount
from webhooks.models import IdempotencyKey, WebhookEvent, WebhookOutcome
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
) -> IngestResult:
    """Process one webhook body. Returns the HTTP status and JSON body to send back.

    Accepted webhooks are committed (event + orders) before this returns; every rejection is
    recorded as a WebhookEvent too, so the log shows what was refused and why.
    """
    state = _IngestState(raw_body=raw_body, source_ip=source_ip, replay_of=replay_of)
    try:
        return _ingest(state, idempotency_header)
    except WebhookError as error:
        log.error("웹훅 처리 실패: [%s] %s", error.code, error.message)
        event = _record_rejection(state, error)
        return IngestResult(error.status, error.envelope(), event.id if event else None)


@dataclass
class _IngestState:
    raw_body: bytes
    source_ip: str | None
    replay_of: WebhookEvent | None
    payload: dict[str, Any] | None = None
    redacted: dict[str, Any] | None = None  # the payload with its token replaced: logs, the event
    strategy: Strategy | None = None


def _ingest(state: _IngestState, idempotency_header: str | None) -> IngestResult:
    if len(state.raw_body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise payload_too_large()
    payload = parse_body(state.raw_body)
    state.payload, state.redacted = payload, redact_payload(payload)
    log.info("웹훅 수신: %s", state.redacted)

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
    strategy = Strategy.objects.filter(group_name=group_name).first()
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
    _check_rate_limit(strategy)

    key = _idempotency_key(payload, idempotency_header)
    if key:
        replayed = _idempotent_replay(strategy, key, state)
        if replayed:
            return replayed

    deprecated = [name for name in DEPRECATED_FIELDS if name in payload]
    if deprecated:
        raise WebhookError(deprecated_message(deprecated), code="deprecated_fields")
    message = validate_message(payload, strategy.market_type, strategy.default_currency)
    links = list(
        StrategyAccount.objects.filter(strategy=strategy, is_active=True, account__is_active=True)
        .select_related("account")
        .order_by("account__name")
    )
    if not links:
        raise WebhookError(_("No accounts are linked to the strategy"), code="no_accounts")
    return _accept(state, strategy, message, [link.account for link in links], key)


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


# Used only while the shared cache cannot be reached: each process then limits on its own.
_local_limiter = FixedWindowRateLimiter(MemoryStorage())


def _check_rate_limit(strategy: Strategy) -> None:
    rate = strategy.rate_limit or settings.WEBHOOK_RATE_LIMIT
    try:
        rate_seconds(rate)
    except ValueError:  # stored before the admin validated it: the default still protects
        log.error(
            "전략 %s의 요청 한도 형식 오류 (%r): 기본값 %s 사용",
            strategy.group_name,
            rate,
            settings.WEBHOOK_RATE_LIMIT,
        )
        rate = settings.WEBHOOK_RATE_LIMIT
    try:
        usage = get_usage(
            None, group="webhook", key=lambda _g, _r: f"strategy:{strategy.pk}", rate=rate, increment=True
        )
        limited = bool(usage and usage["should_limit"])
    except Exception as exc:  # the shared cache (Redis) is down: limit in this process instead
        log.warning("요청 한도 저장소 연결 실패, 프로세스 내 한도로 대체: %s", exc)
        limited = not _local_limiter.hit(rate_item(rate), "webhook", str(strategy.pk))
    if limited:
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
    log.info("웹훅 중복 수신 (idempotency_key=%s): 최초 응답을 반환합니다", key)
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
    orders = _build_orders(event, strategy, message, accounts)
    # The stored response is built before the insert, so the event is written once.
    event.response = body = _accepted_body(event, strategy, orders, message.warnings)
    account_ids = [account.pk for account in accounts]
    try:
        with transaction.atomic():
            event.save(force_insert=True)
            if key:
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
            Order.objects.bulk_create(orders)
            transaction.on_commit(lambda: orders_dispatch(event.id, account_ids))
            transaction.on_commit(lambda: broadcast_webhook(event))
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
    for order in orders:
        log.info(
            "주문 생성: order_id=%s account=%s %s %s %s qty_per=%s",
            order.id,
            order.account.name,
            order.symbol or "*",
            order.side or "-",
            order.order_type,
            order.qty_per,
        )
    return IngestResult(202, body, event.id)


def _build_orders(
    event: WebhookEvent, strategy: Strategy, message: WebhookMessage, accounts: list[Any]
) -> list[Order]:
    orders: list[Order] = []
    for account in accounts:
        for sequence, spec in enumerate(message.orders):
            order = Order(
                webhook=event,
                strategy=strategy,
                account=account,
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
                status=OrderStatus.QUEUED,
            )
            order.client_order_id = "qt" + order.id.hex
            orders.append(order)
    return orders


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
        if not value.is_finite():
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
    if state.strategy is None:
        if _refusals_over_limit(state.source_ip):
            return None
        _cap_unauthenticated(state)
    try:
        event = _record_event(state, outcome=WebhookOutcome.REJECTED, http_status=error.status, error=error)
    except Exception:
        log.exception("웹훅 거부 기록 실패")
        return None
    broadcast_webhook(event)
    return event


def _refusals_over_limit(source_ip: str | None) -> bool:
    try:
        usage = get_usage(
            None,
            group="webhook-refused",
            key=lambda _g, _r: f"ip:{source_ip or '-'}",
            rate=settings.WEBHOOK_REFUSED_RECORD_LIMIT,
            increment=True,
        )
    except Exception as exc:  # the cache may be down: storing a refusal beats losing it
        log.warning("거부 기록 한도 확인 실패: %s", exc)
        return False
    if usage and usage["should_limit"]:
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
