"""Admin: daily bars, tracked instruments (halted flag) and a read-only price-layer status page."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext_lazy as _

from prices.models import DailyPrice, Instrument
from prices.views import price_status


@admin.register(DailyPrice)
class DailyPriceAdmin(admin.ModelAdmin):
    list_display = ("ticker", "date", "open", "high", "low", "close", "volume", "source")
    list_filter = ("source",)
    search_fields = ("ticker",)
    date_hierarchy = "date"


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("ticker", "name", "halted", "halted_reason", "updated_at")
    list_filter = ("halted",)
    search_fields = ("ticker", "name")
    list_editable = ("halted",)
    actions = ["mark_halted", "mark_trading"]
    change_list_template = "admin/prices/instrument/change_list.html"

    @admin.action(description=_("Mark selected instruments as halted"))
    def mark_halted(self, request: HttpRequest, queryset: Any) -> None:
        queryset.update(halted=True)

    @admin.action(description=_("Mark selected instruments as trading"))
    def mark_trading(self, request: HttpRequest, queryset: Any) -> None:
        queryset.update(halted=False, halted_reason="")

    def get_urls(self) -> list[Any]:
        status = path("status/", self.admin_site.admin_view(self.status_view), name="prices_status")
        return [status, *super().get_urls()]

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """Feed health and WebSocket statistics, the same data as GET /api/prices/status."""
        status = price_status()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Price feeds and WebSocket status"),
            "status": status,
            "status_json": json.dumps(status, indent=2, ensure_ascii=False),
        }
        return TemplateResponse(request, "admin/prices/status.html", context)
