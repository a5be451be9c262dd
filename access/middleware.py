"""A session is worth only what its login proved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

from access.policy import confirmed_devices


def _enforce(request: HttpRequest) -> None:
    """Log out a user who has a confirmed TOTP device but whose session was not verified with it
    (a session from before the device, or from any login path that skipped the code)."""
    user: Any = request.user
    if user.is_authenticated and not user.is_verified() and confirmed_devices(user):
        logout(request)


class OtpSessionMiddleware:
    """Runs after django-otp's OTPMiddleware (which sets ``user.is_verified()``). Requests
    without a session cookie (webhooks, API tokens) pass without a query or a thread switch."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            _enforce(request)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            await sync_to_async(_enforce)(request)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response
