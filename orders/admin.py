"""Admin: webhook events and orders are records (read-only, filterable); paper balances are
the starting capital of paper accounts (editable inline on the Account page)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from orders.models import Order, PaperBalance, PaperPosition
from quanttrade.admin_helpers import ReadOnlyAdmin
from strategies.admin import AccountAdmin
from strategies.models import Account


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


class PaperAccountAdmin(AccountAdmin):
    """Accounts, with a paper account's balances and positions editable inline (the paper
    venue's book belongs to orders, so orders extends the registry's account admin)."""

    def get_inlines(self, request: HttpRequest, obj: Account | None) -> list[type]:
        return [PaperBalanceInline, PaperPositionInline] if obj is not None and obj.is_paper else []


admin.site.unregister(Account)
admin.site.register(Account, PaperAccountAdmin)
