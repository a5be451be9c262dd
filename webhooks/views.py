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
from strategies.net import client_ip, ip_allowed
from webhooks.models import WebhookEvent
from webhooks.selectors import webhook_result
from webhooks.services import payload_too_large, webhook_ingest

ERROR_ENVELOPE = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}, "code": {"type": "string"}},
    "required": ["error", "status", "code"],
}


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
            400: OpenApiResponse(ERROR_ENVELOPE, description="Invalid message"),
            401: OpenApiResponse(ERROR_ENVELOPE, description="Token invalid"),
            403: OpenApiResponse(ERROR_ENVELOPE, description="Strategy inactive or IP not allowed"),
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
        clock = StageClock.start()  # the latency trail's "received"
        django_request: HttpRequest = request._request
        source_ip = client_ip(django_request, tuple(settings.TRUSTED_PROXIES))
        if not ip_allowed(source_ip, tuple(settings.WEBHOOK_IP_ALLOWLIST)):
            return error_response(
                ApiError(
                    _("Webhooks are not accepted from %(ip)s") % {"ip": source_ip},
                    code="ip_not_allowed",
                    status=403,
                )
            )
        try:
            if int(django_request.META.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES:
                return error_response(payload_too_large())
            body = django_request.body
        except (RequestDataTooBig, ValueError):
            return error_response(payload_too_large())
        result = webhook_ingest(
            body,
            source_ip=source_ip,
            idempotency_header=django_request.headers.get("Idempotency-Key"),
            clock=clock,
        )
        return json_response(result.body, result.status)


class WebhookResultView(APIView):
    """The accepted response of one webhook with each order's current status (staff or API token)."""

    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="webhook_result", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, webhook_id: UUID) -> Response:
        event = get_object_or_404(WebhookEvent, pk=webhook_id)
        return Response(webhook_result(event))
