"""Price REST endpoints. Thin: parse, call the price layer, render with prices.serializers.

Permissions (decided, see docs/reverse-proxy.md): market data (prices, daily bars) is readable
without login — it is public information and the dashboard/bots read it; the operational
views (feed status, gap report) are staff-only (session or API token).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from live import wsstats
from live.store import live_store
from prices import calendar
from prices.health import feed_statuses
from prices.models import DailyPrice, Instrument
from prices.records import instrument_normalize, is_kr_stock
from prices.serializers import bar_json, price_json
from prices.services import price_snapshot, price_snapshots
from prices.watchlist import watchlist
from quanttrade.errors import ApiError

MAX_TICKERS = 200
MAX_GAP_DAYS = 3650


def _id_list(raw: str | None, field: str) -> list[str]:
    items = list(dict.fromkeys(x.strip() for x in (raw or "").split(",") if x.strip()))
    if not items:
        raise ApiError(_("%(field)s is required (comma-separated).") % {"field": field}, code="missing_field")
    if len(items) > MAX_TICKERS:
        raise ApiError(
            _("At most %(limit)d tickers per request (got %(count)d).")
            % {"limit": MAX_TICKERS, "count": len(items)},
            code="too_many_tickers",
        )
    return items


def _prices_body(raw_ids: list[str]) -> dict[str, Any]:
    normalized = {raw: instrument_normalize(raw) for raw in raw_ids}
    records = price_snapshots([i for i in normalized.values() if i])
    prices: dict[str, Any] = {}
    missing: list[str] = []
    for raw, instrument in normalized.items():
        if instrument and instrument in records:
            prices[instrument] = price_json(records[instrument])
        else:
            missing.append(raw)
    return {"prices": prices, "missing": missing}


def _one_price(raw: str) -> dict[str, Any]:
    instrument = instrument_normalize(raw)
    record = price_snapshot(instrument) if instrument else None
    if record is None:
        raise ApiError(_("No price for %(ticker)s.") % {"ticker": raw}, code="price_not_found", status=404)
    return price_json(record)


PRICE_RECORD = OpenApiTypes.OBJECT
PRICES_RESPONSE = {200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT}


class KrRealtimePricesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="kr_realtime_prices",
        summary="Current prices of Korean tickers",
        parameters=[OpenApiParameter("tickers", str, required=True, description="Comma list, at most 200")],
        responses=PRICES_RESPONSE,
    )
    def get(self, request: Request) -> Response:
        return Response(_prices_body(_id_list(request.query_params.get("tickers"), "tickers")))


class KrRealtimePriceView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="kr_realtime_price",
        summary="Current price of one Korean ticker",
        responses={200: PRICE_RECORD, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, ticker: str) -> Response:
        return Response(_one_price(ticker))


class PricesView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="prices_list",
        summary="Current prices of any instruments (005930, BINANCE:BTC/USDT, NASD:AAPL)",
        parameters=[OpenApiParameter("ids", str, required=True, description="Comma list, at most 200")],
        responses=PRICES_RESPONSE,
    )
    def get(self, request: Request) -> Response:
        return Response(_prices_body(_id_list(request.query_params.get("ids"), "ids")))


class PriceView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="price_retrieve",
        summary="Current price of one instrument",
        responses={200: PRICE_RECORD, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, instrument: str) -> Response:
        return Response(_one_price(instrument))


def _date_param(request: Request, name: str, default: date) -> date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ApiError(
            _("%(field)s must be a date (YYYY-MM-DD), got %(value)s") % {"field": name, "value": raw[:20]},
            code="invalid_field",
        ) from exc


class DailyBarsView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="daily_bars",
        summary="Daily OHLCV bars for charts (oldest first)",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="Default: one year before `to`"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Default: today"),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, ticker: str) -> Response:
        instrument = instrument_normalize(ticker)
        if instrument is None:
            raise ApiError(
                _("No price for %(ticker)s.") % {"ticker": ticker}, code="price_not_found", status=404
            )
        end = _date_param(request, "to", timezone.localdate())
        # One year before `to`, or from the first day there is (a `to` in year 1: 0001-01-01).
        start = _date_param(request, "from", max(end, date.min + timedelta(days=365)) - timedelta(days=365))
        bars = DailyPrice.objects.filter(ticker=instrument, date__gte=start, date__lte=end).order_by("date")
        if not bars.exists() and not DailyPrice.objects.filter(ticker=instrument).exists():
            if price_snapshot(instrument) is None:
                raise ApiError(
                    _("No price for %(ticker)s.") % {"ticker": ticker}, code="price_not_found", status=404
                )
        return Response(
            {
                "ticker": instrument,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "bars": [bar_json(b) for b in bars],
            }
        )


class InstrumentDailyBarsView(DailyBarsView):
    """The same bars under the generic id form (``/api/prices/BINANCE:BTC/USDT/daily``)."""

    @extend_schema(
        operation_id="price_daily_bars",
        summary="Daily OHLCV bars of any instrument (oldest first)",
        parameters=[OpenApiParameter("from", OpenApiTypes.DATE), OpenApiParameter("to", OpenApiTypes.DATE)],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, ticker: str) -> Response:
        return super().get(request, ticker)


class PriceStatusView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="prices_status",
        summary="Feed health and WebSocket statistics (staff)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        return Response(price_status())


def price_status() -> dict[str, Any]:
    """Feeds (every process), WebSocket statistics and the cache size; shared with the admin."""
    return {
        "mode": "redis" if settings.REDIS_URL else "embedded",
        "configured_feeds": list(settings.PRICE_FEEDS),
        "feeds": feed_statuses(),
        "websocket": wsstats.total_stats(),
        "cache": {"instruments": len(live_store().instruments())},
    }


class PriceGapsView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="prices_gaps",
        summary="Data-gap report: Korean tickers with no daily bars or a last bar older than N trading days",
        parameters=[OpenApiParameter("days", int, description="Trading days (default 5)")],
        responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("days", "5")
        try:
            days = int(raw)
            if not 0 <= days <= MAX_GAP_DAYS:
                raise ValueError
        except ValueError as exc:
            raise ApiError(
                _("days must be a whole number from 0 to %(max)d.") % {"max": MAX_GAP_DAYS},
                code="invalid_field",
            ) from exc
        return Response(gap_report(days))


def gap_report(days: int, *, now: Any = None) -> dict[str, Any]:
    """Korean tickers (tracked instruments, watchlist, tickers with bars) whose data is missing
    or whose last bar is more than ``days`` KRX trading days behind the last closed session."""
    as_of = calendar.last_closed_trading_day(now or timezone.now())
    instruments = {i.ticker: i for i in Instrument.objects.all()}
    last_dates = dict(DailyPrice.objects.values("ticker").annotate(d=Max("date")).values_list("ticker", "d"))
    tickers = sorted(t for t in {*instruments, *last_dates, *watchlist()} if is_kr_stock(t))
    gaps = []
    for ticker in tickers:
        last = last_dates.get(ticker)
        behind = calendar.trading_days_between(last, as_of) if last else None
        if last is not None and behind is not None and behind <= days:
            continue
        info = instruments.get(ticker)
        gaps.append(
            {
                "ticker": ticker,
                "name": info.name if info else "",
                "last_date": last.isoformat() if last else None,
                "trading_days_behind": behind,
                "reason": "no_data" if last is None else "outdated",
                "halted": bool(info and info.halted),
                "halted_reason": info.halted_reason if info else "",
            }
        )
    return {"as_of": as_of.isoformat(), "days": days, "checked": len(tickers), "gaps": gaps}
