"""Who must give a TOTP code, and the client address failed logins are counted against."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django_otp.plugins.otp_totp.models import TOTPDevice

from strategies.net import client_ip


def confirmed_devices(user: Any) -> list[TOTPDevice]:
    """The user's confirmed TOTP devices (an enrolment not yet confirmed does not count)."""
    return list(TOTPDevice.objects.filter(user=user, confirmed=True))


def otp_enrolment_required(user: Any) -> bool:
    """True for a superuser without a device while ``OTP_REQUIRED_FOR_SUPERUSERS`` is on."""
    return bool(settings.OTP_REQUIRED_FOR_SUPERUSERS and user.is_superuser and not confirmed_devices(user))


def login_client_ip(request: HttpRequest) -> str | None:
    """The address django-axes counts failures for: X-Forwarded-For only from TRUSTED_PROXIES,
    so that behind a proxy one attacker does not lock everyone out (or nobody)."""
    return client_ip(request, tuple(settings.TRUSTED_PROXIES))
