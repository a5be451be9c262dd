"""Daily bars and per-instrument reference data (halted flag) of the price layer."""

from __future__ import annotations

from typing import Final, TypedDict

from django.db import models
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class _Digits(TypedDict):
    """The ``max_digits``/``decimal_places`` pair of a DecimalField, typed so ``**`` spreads check."""

    max_digits: int
    decimal_places: int


PRICE: Final[_Digits] = {"max_digits": 24, "decimal_places": 8}


class DailyPriceQuerySet(models.QuerySet["DailyPrice"]):
    def latest_bars(self, tickers: list[str]) -> list[DailyPrice]:
        """Each ticker's newest bar, annotated with ``prev_close`` (the bar before it), in two queries."""
        latest = (
            self.filter(ticker__in=tickers)
            .values("ticker")
            .annotate(d=Max("date"))
            .values_list("ticker", "d")
        )
        wanted = Q()
        for ticker, day in latest:
            wanted |= Q(ticker=ticker, date=day)
        if not wanted:
            return []
        previous = (
            DailyPrice.objects.filter(ticker=OuterRef("ticker"), date__lt=OuterRef("date"))
            .order_by("-date")
            .values("close")[:1]
        )
        return list(self.filter(wanted).annotate(prev_close=Subquery(previous)))


class DailyPrice(models.Model):
    """One daily OHLCV bar. ``ticker`` is the price-layer instrument id (005930, BINANCE:BTC/USDT)."""

    ticker = models.CharField(_("ticker"), max_length=64)
    date = models.DateField(pgettext_lazy("price bar", "date"))
    open = models.DecimalField(pgettext_lazy("price bar", "open"), **PRICE)
    high = models.DecimalField(pgettext_lazy("price bar", "high"), **PRICE)
    low = models.DecimalField(pgettext_lazy("price bar", "low"), **PRICE)
    close = models.DecimalField(pgettext_lazy("price bar", "close"), **PRICE)
    volume = models.DecimalField(
        pgettext_lazy("price bar", "volume"), max_digits=30, decimal_places=8, default=0
    )
    source = models.CharField(_("source"), max_length=16, blank=True, help_text=_("csv, kis, ccxt"))

    objects = DailyPriceQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticker", "date"], name="uniq_daily_price")]
        indexes = [models.Index(fields=["ticker", "-date"])]
        ordering = ["ticker", "-date"]
        verbose_name = _("daily price")
        verbose_name_plural = _("daily prices")

    def __str__(self) -> str:
        return f"{self.ticker} {self.date} {self.close}"


class Instrument(models.Model):
    """An instrument the operator tracks: name, and whether trading in it is halted."""

    ticker = models.CharField(_("ticker"), max_length=64, primary_key=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    halted = models.BooleanField(_("trading halted"), default=False)
    halted_reason = models.CharField(_("halt reason"), max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ticker"]
        verbose_name = _("instrument")
        verbose_name_plural = _("instruments")

    def __str__(self) -> str:
        return f"{self.ticker} {self.name}".strip()
