"""The webhook's fast lane: POST /api/webhook past the middleware made for browsers.

A signal is a machine's POST with its token in the body: no session, no login, no CSRF token
(the view is exempt), no flash messages, no login lockout, no static file. Yet every middleware
of the stack ran for it, each a call or two and some a lookup, and DRF's view wrapped the
request again for a view that authenticates nothing: measured through the web servers, a share
of the accept path's CPU beyond the intake itself (docs/benchmarks-speed.md, round 30).

This middleware sits right after Django's SecurityMiddleware (its HTTPS redirect and headers
still apply) and hands such a POST straight to :func:`webhooks.views.webhook_receive`, doing
itself the little the skipped middleware did that a webhook's answer shows: the language from
``Accept-Language`` for the error messages (LocaleMiddleware: ``Content-Language``,
``Vary: Accept-Language``), ``Content-Length`` (CommonMiddleware) and ``X-Frame-Options``
(XFrameOptionsMiddleware); and an exception the view raises gets the JSON envelope DRF's
exception handler gives it (``quanttrade.errors.raised_response``). Any other method or path goes
down the whole stack as before (a GET on the webhook still gets DRF's 405).
``tests/webhook/test_fast_lane.py`` compares both lanes' answers."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.utils.cache import patch_vary_headers

from quanttrade.errors import raised_response
from webhooks.views import webhook_receive

WEBHOOK_PATHS = frozenset({"/api/webhook", "/api/webhook/"})


class WebhookFastLane:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method != "POST" or request.path_info not in WEBHOOK_PATHS:
            return self.get_response(request)
        # As LocaleMiddleware would (no i18n_patterns in the URLconf, so only the cookie and
        # Accept-Language decide); activated for this thread, as it does, for every request.
        language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        try:
            response: HttpResponse = webhook_receive(request)
        except Exception as exc:  # as DRF's handler answers it: the JSON envelope, never a page
            response = raised_response(exc)
        patch_vary_headers(response, ("Accept-Language",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        if not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        response.headers.setdefault("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper())
        return response
