"""Rates written as ``N/u`` (``120/m``, ``5/s``, ``300/5m``): a strategy's webhook limit, checked
before it is stored, and turned into the `limits` item the intake counts against."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from limits import RateLimitItem, RateLimitItemPerSecond

RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_seconds(text: str) -> tuple[int, int]:
    """(count, period in seconds) of a rate; ValueError when it is not one."""
    match = RATE.match(text or "")
    if match is None or int(match[1]) < 1:
        raise ValueError(f"not a rate: {text!r} (use N/s, N/m, N/h, N/d or N/<k>m, e.g. 120/m)")
    return int(match[1]), int(match[2] or 1) * UNIT_SECONDS[match[3]]


def rate_item(text: str) -> RateLimitItem:
    count, seconds = rate_seconds(text)
    return RateLimitItemPerSecond(count, seconds)


def validate_rate(value: str) -> None:
    """Django validator: blank is allowed (the field's own blank rule decides)."""
    if not value:
        return
    try:
        rate_seconds(value)
    except ValueError:
        raise ValidationError(
            _("Enter a rate such as 60/m: a whole number, '/', then s, m, h or d (e.g. 120/m, 5/s, 300/5m)."),
            code="invalid_rate",
        ) from None
