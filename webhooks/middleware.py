"""The webhook's fast lane: POST /api/webhook past the middleware made for browsers.

A signal is a machine's POST with its token in the body: no session, no login, no CSRF token
(the view is exempt), no flash messages, no login lockout, no static file. Yet every middleware
of the stack ran for it, each a call or two and some a lookup, and DRF's view wrapped the
request again for a view that authenticates nothing: measured through the web servers, a share
of the accept path's CPU beyond the intake itself (docs/benchmarks-speed.md, round 30).

This middleware sits right after Django's SecurityMiddleware (its HTTPS redirect and headers
still apply) and hands such a POST to :func:`webhooks.views.webhook_receive` through the
stack's own middleware that a webhook's answer shows, and only those (``LANE_MIDDLEWARE``):
LocaleMiddleware (the language of the error messages, ``Content-Language``, ``Vary``),
CommonMiddleware (``Content-Length``, ``DISALLOWED_USER_AGENTS``) and XFrameOptionsMiddleware.
An exception the view raises gets the JSON envelope DRF's exception handler gives it
(``quanttrade.errors.raised_response``). Any other method or path goes
down the whole stack as before (a GET on the webhook still gets DRF's 405).
``tests/webhook/test_fast_lane.py`` compares both lanes' answers."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.utils.deprecation import MiddlewareMixin

from quanttrade.errors import raised_response
from webhooks.paths import WEBHOOK_PATHS
from webhooks.views import webhook_receive

# The product stack's middleware a webhook goes through, in the stack's order.
LANE_MIDDLEWARE: tuple[type[MiddlewareMixin], ...] = (
    LocaleMiddleware,
    CommonMiddleware,
    XFrameOptionsMiddleware,
)


def _receive(request: HttpRequest) -> HttpResponse:
    try:
        return webhook_receive(request)
    except Exception as exc:  # as DRF's handler answers it: the JSON envelope, never a page
        return raised_response(exc)


class WebhookFastLane:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        lane: Callable[[HttpRequest], HttpResponseBase] = _receive
        for middleware in reversed(LANE_MIDDLEWARE):
            lane = middleware(lane)  # type: ignore[assignment]  # a MiddlewareMixin is the callable
        self.lane = lane

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method != "POST" or request.path_info not in WEBHOOK_PATHS:
            return self.get_response(request)
        return self.lane(request)
