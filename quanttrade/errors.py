"""The one error envelope: ``{"error": <message>, "status": <http status>, "code": <code>}``.

Domain code raises :class:`ApiError` (or a subclass) carrying a stable ``code`` and an HTTP
``status``; the DRF exception handler below turns it, and DRF's own exceptions, into the
envelope. Nothing else reaches the client: no tracebacks, no HTML error pages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, JsonResponse
from django.utils.encoding import force_str
from django.utils.translation import gettext as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

log = logging.getLogger("quanttrade.errors")


class ApiError(Exception):
    """An error with a stable machine code, an HTTP status and a user-facing message."""

    code = "error"
    status = 400

    def __init__(self, message: Any, *, code: str | None = None, status: int | None = None):
        self.message = force_str(message)
        if code:
            self.code = code
        if status:
            self.status = status
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status, "code": self.code}


def json_response(body: dict[str, Any], status: int) -> JsonResponse:
    """A JSON answer (Korean kept readable); a 429 tells the sender when to try again."""
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    if status == 429:
        response["Retry-After"] = "60"
    return response


def error_response(error: ApiError) -> JsonResponse:
    return json_response(error.envelope(), error.status)


def request_too_large() -> ApiError:
    """A request body past HTTP_MAX_BODY_BYTES, on any path (the servers' limit; a webhook has
    its own, smaller one: ``webhooks.services.payload_too_large``)."""
    return ApiError(_("The request body is too large"), code="payload_too_large", status=413)


_DRF_CODES = {
    drf_exceptions.NotAuthenticated: ("not_authenticated", lambda e: _("Authentication is required.")),
    drf_exceptions.AuthenticationFailed: ("authentication_failed", lambda e: _("Authentication failed.")),
    drf_exceptions.PermissionDenied: (
        "permission_denied",
        lambda e: _("You do not have permission to do this."),
    ),
    drf_exceptions.NotFound: ("not_found", lambda e: _("Not found.")),
    drf_exceptions.MethodNotAllowed: ("method_not_allowed", lambda e: _("Method not allowed.")),
    drf_exceptions.UnsupportedMediaType: ("unsupported_media_type", lambda e: _("Unsupported media type.")),
    drf_exceptions.Throttled: ("rate_limited", lambda e: _("Too many requests.")),
    drf_exceptions.ParseError: ("invalid_json", lambda e: _("The request body is not valid JSON.")),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing the envelope for every error."""
    if isinstance(exc, ApiError):
        return Response(exc.envelope(), status=exc.status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    if isinstance(exc, drf_exceptions.APIException):
        for cls, (code, message) in _DRF_CODES.items():
            if isinstance(exc, cls):
                body = {"error": force_str(message(exc)), "status": exc.status_code, "code": code}
                break
        else:
            detail = exc.detail
            text = detail if isinstance(detail, str) else force_str(detail)
            body = {"error": text, "status": exc.status_code, "code": "invalid_request"}
        response = Response(body, status=exc.status_code)
        if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
            response.status_code = 401
            body["status"] = 401
        return response
    log.exception("처리되지 않은 오류: %s", type(exc).__name__)
    return Response(_internal_error(), status=500)


def _internal_error() -> dict[str, Any]:
    return {"error": _("Internal server error."), "status": 500, "code": "internal_error"}


def raised_response(exc: Exception) -> JsonResponse:
    """The envelope :func:`exception_handler` gives a DRF view, for an exception raised by a view
    reached outside DRF (the webhook's fast lane, webhooks/middleware.py): an ApiError's own,
    anything else logged and answered as an internal error."""
    if isinstance(exc, ApiError):
        return error_response(exc)
    log.exception("처리되지 않은 오류: %s", type(exc).__name__)
    return json_response(_internal_error(), 500)
