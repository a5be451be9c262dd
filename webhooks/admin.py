"""The webhook log in the admin: read-only events with their orders."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from orders.models import Order
from quanttrade.admin_helpers import ReadOnlyAdmin, pretty_json
from strategies.models import Account, Strategy
from webhooks.kill_switch import account_flatten, kill_switch_pause, kill_switch_resume, strategy_flatten
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


# --- the kill switch's flatten on the strategy and account admins (issue #14) -------------------
# Registered from here: flatten writes webhook events, a layer above the registry's admin.


@admin.action(description=_("Flatten: cancel every open order and close every position"))
def flatten_selected(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
) -> TemplateResponse | None:
    if request.POST.get("confirm") != "1":
        return TemplateResponse(
            request,
            "admin/flatten_confirm.html",
            {**modeladmin.admin_site.each_context(request), "queryset": queryset, "title": _("Flatten")},
        )
    source = f"admin:{request.user.get_username()}"
    for target in queryset:
        result = (
            strategy_flatten(target, source=source)
            if isinstance(target, Strategy)
            else account_flatten(target, source=source)
        )
        link = reverse("admin:webhooks_webhookevent_change", args=[result.event_id])
        modeladmin.message_user(
            request,
            format_html(
                '{}: <a href="{}">{}</a>',
                target,
                link,
                _("%(count)d orders sent") % {"count": len(result.body["orders"])},
            ),
            messages.WARNING,
        )
    return None


@admin.action(description=_("Pause (kill switch): refuse new opening signals"))
def pause_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    source = f"admin:{request.user.get_username()}"
    for target in queryset:
        kill_switch_pause(target, reason="", cancel_open=False, source=source)
    modeladmin.message_user(request, _("Paused: %(count)d") % {"count": len(queryset)}, messages.WARNING)


@admin.action(description=_("Resume (lift the pause)"))
def resume_selected(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    source = f"admin:{request.user.get_username()}"
    for target in queryset:
        kill_switch_resume(target, source=source)
    modeladmin.message_user(request, _("Resumed: %(count)d") % {"count": len(queryset)}, messages.SUCCESS)


for _model in (Strategy, Account):
    _registered = admin.site._registry.get(_model)
    if _registered is not None:
        _registered.actions = [
            *(_registered.actions or []),
            pause_selected,
            resume_selected,
            flatten_selected,
        ]
