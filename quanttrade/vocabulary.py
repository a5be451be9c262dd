"""The shared words of the product: market types, order types, sides, order statuses, and the
one way a number becomes a Decimal and a Decimal becomes text.

Every layer (prices, strategies, orders, webhooks) imports these from here and nowhere else;
this module imports nothing of the project's.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, overload

from django.db import models
from django.utils.translation import gettext_lazy as _


class MarketType(models.TextChoices):
    SPOT = "SPOT", _("Crypto spot")
    FUTURES = "FUTURES", _("Crypto futures")
    DOMESTIC_STOCK = "DOMESTIC_STOCK", _("Korean stocks")
    OVERSEAS_STOCK = "OVERSEAS_STOCK", _("Overseas stocks")
    DOMESTIC_FUTUREOPTION = "DOMESTIC_FUTUREOPTION", _("Korean futures/options")
    OVERSEAS_FUTUREOPTION = "OVERSEAS_FUTUREOPTION", _("Overseas futures/options")


CRYPTO_MARKETS = frozenset({MarketType.SPOT, MarketType.FUTURES})


class OrderType(models.TextChoices):
    MARKET = "MARKET", "MARKET"
    LIMIT = "LIMIT", "LIMIT"
    STOP_MARKET = "STOP_MARKET", "STOP_MARKET"
    STOP_LIMIT = "STOP_LIMIT", "STOP_LIMIT"
    CANCEL_ALL_ORDER = "CANCEL_ALL_ORDER", "CANCEL_ALL_ORDER"
    # Korean stock order kinds (KIS): 조건부지정가, 최유리지정가, 장전/장후 시간외.
    CONDITIONAL_LIMIT = "CONDITIONAL_LIMIT", "CONDITIONAL_LIMIT"
    BEST_LIMIT = "BEST_LIMIT", "BEST_LIMIT"
    PRE_MARKET = "PRE_MARKET", "PRE_MARKET"
    AFTER_MARKET = "AFTER_MARKET", "AFTER_MARKET"


class Side(models.TextChoices):
    BUY = "BUY", _("buy")
    SELL = "SELL", _("sell")


class OrderStatus(models.TextChoices):
    # Held for a staff user's approval (semi-automatic mode): never sent until approved.
    PENDING_APPROVAL = "pending_approval", _("pending approval")
    QUEUED = "queued", _("queued")
    SUBMITTED = "submitted", _("submitted")
    OPEN = "open", _("open")
    PARTIALLY_FILLED = "partially_filled", _("partially filled")
    FILLED = "filled", _("filled")
    CANCELLED = "cancelled", _("cancelled")
    REJECTED = "rejected", _("rejected")
    FAILED = "failed", _("failed")


ZERO = Decimal(0)

# Statuses the venue may still change (resting orders).
LIVE_STATUSES = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})


@overload
def to_decimal(value: Any, default: Decimal) -> Decimal: ...
@overload
def to_decimal(value: Any, default: None = None) -> Decimal | None: ...
def to_decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    """A venue's or a form's number (str, int, float, Decimal) as a Decimal, through its string
    form so floats keep the digits they print; blank, None or not a finite number -> ``default``."""
    if value is None or isinstance(value, bool):
        return default
    text = str(value).strip()
    if not text:
        return default
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return default
    return number if number.is_finite() else default


@overload
def decimal_str(value: Decimal | None, default: str) -> str: ...
@overload
def decimal_str(value: Decimal | None, default: None = None) -> str | None: ...
def decimal_str(value: Decimal | None, default: str | None = None) -> str | None:
    """A Decimal as a plain string without trailing zeros or exponent ("0.0010000000" -> "0.001",
    1E+2 -> "100"); None -> ``default``."""
    if value is None:
        return default
    if value == 0:
        return "0"
    return format(value.normalize(), "f")
