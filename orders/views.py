"""Webhook results for staff and API clients (GET /api/webhooks/<id>)."""

from __future__ import annotations

from uuid import UUID

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import WebhookEvent


class WebhookResultView(APIView):
    """The accepted response of one webhook with each order's current status (staff or API token)."""

    permission_classes = [IsAdminUser]

    @extend_schema(operation_id="webhook_result", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, webhook_id: UUID) -> Response:
        from orders.selectors import webhook_result

        event = get_object_or_404(WebhookEvent, pk=webhook_id)
        return Response(webhook_result(event))
