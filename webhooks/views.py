"""The webhook endpoint (thin: source checks and body size here, everything else in services)
and the results API of one webhook (GET /api/webhooks/<id>)."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.trail import StageClock
from quanttrade.errors import ApiError, error_response, json_response
from strategies.models import Account, Strategy
from strategies.net import client_ip, ip_allowed
from webhooks.kill_switch import account_flatten, kill_switch_pause, kill_switch_resume, strategy_flatten
from webhooks.models import WebhookEvent
from webhooks.selectors import webhook_result
from webhooks.services import payload_too_large, webhook_ingest

ERROR_ENVELOPE = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}, "code": {"type": "string"}},
    "required": ["error", "status", "code"],
}


def webhook_receive(request: HttpRequest) -> JsonResponse:
    """POST /api/webhook itself: the source checks and the body size, then the intake.

    Reached through :class:`WebhookView` (the schema, and any route the fast lane does not
    take) or straight from :class:`webhooks.middleware.WebhookFastLane`."""
    clock = StageClock.start()  # the latency trail's "received"
    source_ip = client_ip(request, tuple(settings.TRUSTED_PROXIES))
    if not ip_allowed(source_ip, tuple(settings.WEBHOOK_IP_ALLOWLIST)):
        return error_response(
            ApiError(
                _("Webhooks are not accepted from %(ip)s") % {"ip": source_ip},
                code="ip_not_allowed",
                status=403,
            )
        )
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES:
            return error_response(payload_too_large())
        body = request.body
    except (RequestDataTooBig, ValueError):
        return error_response(payload_too_large())
    result = webhook_ingest(
        body,
        source_ip=source_ip,
        idempotency_header=request.headers.get("Idempotency-Key"),
        clock=clock,
    )
    return json_response(result.body, result.status)


class WebhookView(APIView):
    """Receive a trading signal (SPEC §2). JSON as application/json or text/plain."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="webhook_receive",
        summary="Receive a webhook signal",
        request={"application/json": OpenApiTypes.OBJECT, "text/plain": OpenApiTypes.STR},
        responses={
            202: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Accepted: orders queued per linked account"
            ),
            400: OpenApiResponse(
                ERROR_ENVELOPE, description="Invalid message, risk_limit (a strategy limit) or signal_stale"
            ),
            401: OpenApiResponse(ERROR_ENVELOPE, description="Token invalid"),
            403: OpenApiResponse(
                ERROR_ENVELOPE, description="Strategy inactive or paused (strategy_paused), or IP not allowed"
            ),
            404: OpenApiResponse(ERROR_ENVELOPE, description="Strategy not found"),
            413: OpenApiResponse(ERROR_ENVELOPE, description="Body over 64 KiB"),
            429: OpenApiResponse(ERROR_ENVELOPE, description="Rate limited"),
        },
        examples=[
            OpenApiExample(
                "Spot market buy",
                value={
                    "group_name": "my_strategy",
                    "token": "your_webhook_token",
                    "symbol": "BTC/USDT",
                    "currency": "USDT",
                    "order_type": "MARKET",
                    "side": "buy",
                    "qty_per": 10,
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> JsonResponse:
        return webhook_receive(request._request)


class WebhookResultView(APIView):
    """The accepted response of one webhook with each order's current status (staff or API token)."""

    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="webhook_result", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, webhook_id: UUID) -> Response:
        event = get_object_or_404(WebhookEvent, pk=webhook_id)
        return Response(webhook_result(event))


# --- the kill switch (issue #14): staff session or API token ----------------------------------


def _who(request: Request) -> str:
    user = getattr(request, "user", None)
    return f"api:{getattr(user, 'username', '') or '?'}"


def _flag(request: Request, name: str) -> bool:
    data = request.data if isinstance(request.data, dict) else {}
    value = data.get(name, False)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _reason(request: Request) -> str:
    data = request.data if isinstance(request.data, dict) else {}
    return str(data.get("reason") or "")[:300]


KILL_SWITCH_RESPONSES = {
    202: OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="Accepted: one order per action (a cancel per market, a close per position), "
        "queued; follow them with GET /api/webhooks/<webhook_id>",
    ),
    404: OpenApiResponse(ERROR_ENVELOPE, description="No such account or strategy"),
}


class AccountFlattenView(APIView):
    """Cancel every open order of the account and close every position it holds."""

    @extend_schema(operation_id="account_flatten", request=None, responses=KILL_SWITCH_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        account = get_object_or_404(Account, pk=pk)
        result = account_flatten(account, source=_who(request))
        return Response(result.body, status=202)


class StrategyFlattenView(APIView):
    """Flatten every account linked to the strategy."""

    @extend_schema(operation_id="strategy_flatten", request=None, responses=KILL_SWITCH_RESPONSES)
    def post(self, request: Request, pk: int) -> Response:
        strategy = get_object_or_404(Strategy, pk=pk)
        result = strategy_flatten(strategy, source=_who(request))
        return Response(result.body, status=202)


class PauseView(APIView):
    """POST pauses (body: ``reason``, ``cancel_open`` to also cancel the open orders); DELETE
    resumes. Answers the paused state, and the cancel's ``webhook_id`` when there was one."""

    model: type[Account] | type[Strategy] = Account

    def _target(self, pk: int) -> Account | Strategy:
        if self.model is Strategy:
            return get_object_or_404(Strategy, pk=pk)
        return get_object_or_404(Account, pk=pk)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(ERROR_ENVELOPE)},
    )
    def post(self, request: Request, pk: int) -> Response:
        target = self._target(pk)
        cancel = kill_switch_pause(
            target, reason=_reason(request), cancel_open=_flag(request, "cancel_open"), source=_who(request)
        )
        body: dict[str, object] = {"paused": True, "reason": target.paused_reason}
        if cancel is not None:
            body.update({"webhook_id": str(cancel.event_id), "orders": cancel.body["orders"]})
        return Response(body)

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(ERROR_ENVELOPE)})
    def delete(self, request: Request, pk: int) -> Response:
        target = self._target(pk)
        kill_switch_resume(target, source=_who(request))
        return Response({"paused": False})


class AccountPauseView(PauseView):
    model = Account


class StrategyPauseView(PauseView):
    model = Strategy
