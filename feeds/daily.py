"""Daily bars: collection from a CSV file, ccxt OHLCV, the KIS or the Kiwoom daily chart, stored
idempotently."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings

from feeds.kiwoom import kiwoom_credentials
from orders.exchanges.base import VenueError
from orders.exchanges.kis.client import KisClient
from orders.exchanges.kiwoom.client import KST, KiwoomClient
from prices.models import DailyPrice
from prices.records import instrument_normalize

BAR_FIELDS = ["open", "high", "low", "close", "volume", "source"]


@dataclass(frozen=True)
class Bar:
    ticker: str
    date: date
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    source: str


def daily_store(bars: Iterable[Bar]) -> int:
    """Insert or update bars (unique per ticker and date); returns how many were written."""
    rows = [DailyPrice(**bar.__dict__) for bar in bars]
    if rows:
        DailyPrice.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["ticker", "date"],
            update_fields=BAR_FIELDS,
            batch_size=500,
        )
    return len(rows)


def _number(value: Any) -> Decimal:
    return Decimal(repr(value) if isinstance(value, float) else str(value).replace(",", "").strip())


def bars_from_csv(path: Path, *, ticker: str | None = None) -> list[Bar]:
    """Rows with columns ``ticker,date,open,high,low,close,volume`` (``ticker`` optional when
    given on the command line). Raises ValueError naming the first bad line."""
    bars: list[Bar] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                raw_ticker = ticker or row["ticker"]
                instrument = instrument_normalize(raw_ticker)
                if instrument is None:
                    raise ValueError(f"bad ticker {raw_ticker!r}")
                bars.append(
                    Bar(
                        ticker=instrument,
                        date=date.fromisoformat(row["date"].strip()),
                        open=_number(row["open"]),
                        high=_number(row["high"]),
                        low=_number(row["low"]),
                        close=_number(row["close"]),
                        volume=_number(row.get("volume") or 0),
                        source="csv",
                    )
                )
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
    return bars


def bars_from_ccxt(exchange: Any, exchange_code: str, symbol: str, *, days: int) -> list[Bar]:
    """Daily candles from a (sync) ccxt exchange, for the instrument ``EXCHANGE:SYMBOL``."""
    since = int((datetime.now(UTC) - timedelta(days=days)).timestamp() * 1000)
    candles = exchange.fetch_ohlcv(symbol, "1d", since=since, limit=days + 1)
    ticker = f"{exchange_code.upper()}:{symbol.upper()}"
    return [
        Bar(
            ticker=ticker,
            date=datetime.fromtimestamp(ts / 1000, UTC).date(),
            open=_number(o),
            high=_number(h),
            low=_number(lo),
            close=_number(c),
            volume=_number(v or 0),
            source="ccxt",
        )
        for ts, o, h, lo, c, v in candles
    ]


def bars_from_kis(tickers: list[str], *, days: int, rest_url: str | None = None) -> list[Bar]:
    """Daily bars from the KIS domestic daily chart (FHKST03010100; up to 100 bars a call).

    Goes through the trading adapter's KisClient, so the access token is the one shared (and
    cached) by every process, and the per-app-key rate limit applies.
    """
    app_key, app_secret = settings.KIS_APP_KEY, settings.KIS_APP_SECRET
    if not app_key or not app_secret:
        raise ValueError("KIS_APP_KEY and KIS_APP_SECRET are required")
    client = KisClient(
        app_key=app_key,
        app_secret=app_secret,
        base_url=rest_url or settings.KIS_REST_URL,
    )
    end = date.today()
    start = end - timedelta(days=days)
    bars: list[Bar] = []
    for ticker in tickers:
        try:
            body = client.request(
                "GET",
                "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice",
                "FHKST03010100",
                params={
                    "FID_COND_MRKT_DIV_CODE": "J",
                    "FID_INPUT_ISCD": ticker,
                    "FID_INPUT_DATE_1": start.strftime("%Y%m%d"),
                    "FID_INPUT_DATE_2": end.strftime("%Y%m%d"),
                    "FID_PERIOD_DIV_CODE": "D",
                    "FID_ORG_ADJ_PRC": "0",
                },
            )
        except VenueError as error:
            raise ValueError(f"{ticker}: {error.message}") from error
        for row in body.get("output2") or []:
            if not row.get("stck_bsop_date"):
                continue
            bars.append(
                Bar(
                    ticker=ticker,
                    date=datetime.strptime(row["stck_bsop_date"], "%Y%m%d").date(),
                    open=_number(row["stck_oprc"]),
                    high=_number(row["stck_hgpr"]),
                    low=_number(row["stck_lwpr"]),
                    close=_number(row["stck_clpr"]),
                    volume=_number(row.get("acml_vol") or 0),
                    source="kis",
                )
            )
    return bars


# Kiwoom 주식일봉차트조회요청 (kiwoom_api_spec.json, Kiwoom-Securities/Kiwoom-REST-API).
KIWOOM_DAILY_API, KIWOOM_CHART_PATH, KIWOOM_DAILY_LIST = (
    "ka10081",
    "/api/dostk/chart",
    "stk_dt_pole_chart_qry",
)


def _kiwoom_number(value: Any) -> Decimal:
    """A Kiwoom chart number: possibly zero-padded or signed (``+70100``, ``-69900``: the sign
    is the direction, the value its absolute value)."""
    text = str(value or "").replace(",", "").strip()
    return abs(Decimal(text)) if text else Decimal(0)


def read_kiwoom_daily(ticker: str, rows: Iterable[dict[str, Any]]) -> list[Bar]:
    """ka10081 rows (``dt`` YYYYMMDD, ``open_pric``, ``high_pric``, ``low_pric``, ``cur_prc`` the
    close, ``trde_qty``) as bars; rows without a date are skipped."""
    bars = []
    for row in rows:
        day = str(row.get("dt") or "").strip()
        if not day:
            continue
        bars.append(
            Bar(
                ticker=ticker,
                date=datetime.strptime(day[:8], "%Y%m%d").date(),
                open=_kiwoom_number(row.get("open_pric")),
                high=_kiwoom_number(row.get("high_pric")),
                low=_kiwoom_number(row.get("low_pric")),
                close=_kiwoom_number(row.get("cur_prc")),
                volume=_kiwoom_number(row.get("trde_qty")),
                source="kiwoom",
            )
        )
    return bars


def bars_from_kiwoom(tickers: list[str], *, days: int, rest_url: str | None = None) -> list[Bar]:
    """Daily bars from Kiwoom's 주식일봉차트조회요청 (ka10081, adjusted prices), newest first from
    today (KST), following ``cont-yn``/``next-key`` pages until the chart reaches ``days`` back.

    Goes through the trading adapter's KiwoomClient (the shared, cached token and the per-app-key
    rate limit) with the first active KIWOOM account's credentials, as the realtime feed.
    """
    credentials = kiwoom_credentials()
    if credentials is None:
        raise ValueError("an active KIWOOM account with an app key is required")
    client = KiwoomClient(
        app_key=credentials.app_key,
        secret_key=credentials.secret_key,
        base_url=rest_url or credentials.rest_url,
    )
    today = datetime.now(KST).date()
    start = today - timedelta(days=days)

    def reaches_start(page: dict[str, Any]) -> bool:
        dates = [str(row.get("dt") or "")[:8] for row in page.get(KIWOOM_DAILY_LIST) or []]
        return any(d and d <= start.strftime("%Y%m%d") for d in dates)

    bars: list[Bar] = []
    for ticker in tickers:
        body = {"stk_cd": ticker, "base_dt": today.strftime("%Y%m%d"), "upd_stkpc_tp": "1"}
        try:
            pages = client.pages(KIWOOM_DAILY_API, KIWOOM_CHART_PATH, body, enough=reaches_start)
        except VenueError as error:
            raise ValueError(f"{ticker}: {error.message}") from error
        for page in pages:
            bars += [
                b for b in read_kiwoom_daily(ticker, page.get(KIWOOM_DAILY_LIST) or []) if b.date >= start
            ]
    return bars
