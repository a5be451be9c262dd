"""The orders' API: the latency summary of the trail (GET /api/latency)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.selectors import LATENCY_MAX_HOURS, latency_summary
from quanttrade.errors import ApiError


def latency_hours(raw: str | None) -> float:
    """The ``hours`` query parameter: a number in (0, LATENCY_MAX_HOURS]; 24 when absent."""
    if raw in (None, ""):
        return 24.0
    try:
        hours = float(raw)
    except ValueError:
        hours = float("nan")
    if not 0 < hours <= LATENCY_MAX_HOURS:  # also refuses NaN
        raise ApiError(
            _("hours must be a number above 0 and at most %(max)d") % {"max": LATENCY_MAX_HOURS},
            code="invalid_field",
            status=400,
        )
    return hours


class LatencyView(APIView):
    """p50/p99 per venue and stage of the latency trail over the last hours (staff or API token)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="latency_summary",
        parameters=[OpenApiParameter("hours", OpenApiTypes.NUMBER, description="window, default 24")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(latency_summary(latency_hours(request.query_params.get("hours"))))
