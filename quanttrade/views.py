from __future__ import annotations

from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

from quanttrade.errors import ApiError, error_response


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and the CI smoke test."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def _api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler400``: the API's JSON envelope under /api/ (a webhook from a host not in
    ALLOWED_HOSTS included: the sender is told why), Django's page elsewhere."""
    if not _api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        host = str(request.META.get("HTTP_HOST", ""))[:100]
        message = _("This server does not answer for the host %(host)s (ALLOWED_HOSTS)") % {"host": host}
        return error_response(ApiError(message, code="host_not_allowed", status=400))
    return error_response(ApiError(_("Bad request"), code="bad_request", status=400))


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: the JSON envelope under /api/, Django's page elsewhere."""
    if not _api(request):
        return defaults.page_not_found(request, exception)
    return error_response(ApiError(_("Not found."), code="not_found", status=404))
