"""Price pages: the live watchlist dashboard and the per-instrument chart."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from prices.watchlist import DEMO_INSTRUMENTS


def default_watchlist() -> list[str]:
    """Demo instruments (feeds.universe) followed by settings.PRICE_WATCHLIST, without duplicates."""
    seen: dict[str, None] = {}
    for instrument in (*DEMO_INSTRUMENTS, *settings.PRICE_WATCHLIST):
        instrument = instrument.strip()
        if instrument:
            seen.setdefault(instrument, None)
    return list(seen)


def live_context() -> dict[str, object]:
    """What every page's live connection needs (the server's ping interval, for the watchdog)."""
    return {"ws_ping_interval": settings.WS_PING_INTERVAL_SECONDS}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request, "pages/dashboard.html", {"default_watchlist": default_watchlist(), **live_context()}
    )


@login_required
def instrument_detail(request: HttpRequest, instrument: str) -> HttpResponse:
    # The price layer's ids are upper case (the /ws consumer and REST normalize the same way).
    instrument = instrument.strip().upper()
    return render(request, "pages/instrument.html", {"instrument": instrument, **live_context()})
