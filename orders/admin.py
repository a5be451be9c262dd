"""Admin: webhook events and orders are records (read-only, filterable); paper balances are
the starting capital of paper accounts (editable inline on the Account page)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from orders.models import Order, PaperBalance, PaperPosition, WebhookEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: viewable and filterable, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "account",
        "sequence",
        "symbol",
        "side",
        "order_type",
        "status",
        "filled_qty",
        "avg_price",
        "message",
    )
    readonly_fields = fields
    ordering = ("account__name", "sequence")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "group_name", "outcome", "http_status", "error_code", "source_ip")
    list_filter = ("outcome", "http_status", "strategy", "received_at")
    search_fields = ("group_name", "error_code", "error_message", "idempotency_key", "id")
    date_hierarchy = "received_at"
    readonly_fields = (
        "id",
        "strategy",
        "group_name",
        "received_at",
        "source_ip",
        "outcome",
        "http_status",
        "error_code",
        "error_message",
        "warnings",
        "idempotency_key",
        "replay_of",
        "payload_pretty",
        "raw_body",
        "response_pretty",
    )
    fields = readonly_fields
    inlines = [OrderInline]

    @admin.display(description=_("payload (token redacted)"))
    def payload_pretty(self, obj: WebhookEvent) -> str:
        return _pretty(obj.payload)

    @admin.display(description=_("response"))
    def response_pretty(self, obj: WebhookEvent) -> str:
        return _pretty(obj.response)


def _pretty(value: Any) -> str:
    if value is None:
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "symbol",
        "side",
        "order_type",
        "status",
        "quantity",
        "filled_qty",
        "avg_price",
        "short_message",
    )
    list_filter = (
        "status",
        "account__exchange",
        "strategy",
        "account",
        "market_type",
        "order_type",
        "created_at",
    )
    search_fields = ("id", "client_order_id", "exchange_order_id", "symbol", "message")
    date_hierarchy = "created_at"
    list_select_related = ("account", "strategy")
    readonly_fields = [f.name for f in Order._meta.fields]

    @admin.display(description=_("message"))
    def short_message(self, obj: Order) -> str:
        return obj.message[:80]


class PaperBalanceInline(admin.TabularInline):
    """Starting (and current) balances of a paper account, per asset."""

    model = PaperBalance
    extra = 1
    fields = ("asset", "free", "locked")
    readonly_fields = ("locked",)
    verbose_name = _("paper balance")
    verbose_name_plural = _("paper balances (starting capital: set `free` per asset)")


class PaperPositionInline(admin.TabularInline):
    """Open positions and stock holdings of a paper account (signed: negative = short)."""

    model = PaperPosition
    extra = 0
    fields = ("market_type", "symbol", "quantity", "entry_price", "currency", "margin")
    readonly_fields = ("margin",)
    verbose_name = _("paper position")
    verbose_name_plural = _("paper positions")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PaperPosition]:
        return super().get_queryset(request).exclude(quantity=0)
