"""The webhook log in the admin: read-only events with their orders."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from orders.models import Order
from quanttrade.admin_helpers import ReadOnlyAdmin, pretty_json
from webhooks.models import WebhookEvent


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
        return pretty_json(obj.payload)

    @admin.display(description=_("response"))
    def response_pretty(self, obj: WebhookEvent) -> str:
        return pretty_json(obj.response)
