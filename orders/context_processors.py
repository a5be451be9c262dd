"""What every page's header shows about orders (staff only): how many are still in progress."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from orders.selectors import orders_in_progress_count


def order_counts(request: HttpRequest) -> dict[str, Any]:
    """``orders_in_progress``: queued, submitted or resting orders, for the nav badge (which
    /ws `orders` updates keep current); nothing for visitors who may not see orders."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    return {"orders_in_progress": orders_in_progress_count()}
