"""Admin for strategies and accounts. Credentials are write-only and shown masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from strategies.addressing import sample_payload, tradingview_template, webhook_url
from strategies.models import Account, Strategy, StrategyAccount

CREDENTIAL_FIELDS = ("api_key", "api_secret", "passphrase")
RISK_FIELDS = [
    "max_order_notional",
    "max_position_notional",
    "max_open_orders",
    "max_orders_per_minute",
    "max_daily_loss",
    "allowed_symbols",
    "trading_hours",
]
PAUSE_FIELDS = ["is_paused", "paused_reason", "paused_at", "paused_until"]


def mask(secret: str) -> str:
    """Show that a secret is set without showing it: '••••••••wxyz'."""
    if not secret:
        return "—"
    return "••••••••" + (secret[-4:] if len(secret) >= 12 else "")


class StrategyAccountInline(admin.TabularInline):
    model = StrategyAccount
    extra = 1
    autocomplete_fields = ["account"]


class RequestDisplay:
    """A read-only admin field bound to one request.

    The ModelAdmin instance is shared by every request and thread, so what depends on the
    request (the absolute webhook URL, whether the token may be shown) travels with the field
    built for that request, never with the admin. Two fields are equal when they show the same
    thing for the same request, which is how Django matches fieldsets to readonly fields.
    """

    def __init__(self, name: str, render: Callable[[Strategy, HttpRequest], str], request: HttpRequest):
        self.__name__ = name  # the CSS class and label fallback Django derives for a callable
        self.short_description = getattr(render, "short_description", name)
        self._render = render
        self._request = request

    def __call__(self, obj: Strategy) -> str:
        return self._render(obj, self._request)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RequestDisplay)
            and other.__name__ == self.__name__
            and other._request is self._request
        )

    def __hash__(self) -> int:
        return hash((self.__name__, id(self._request)))


def _can_see_token(request: HttpRequest) -> bool:
    return bool(request.user.is_superuser)


@admin.display(description=_("webhook URL"))
def _webhook_endpoint(obj: Strategy, request: HttpRequest) -> str:
    return format_html("<code>{}</code>", webhook_url(request))


@admin.display(description=_("sample payload"))
def _sample(obj: Strategy, request: HttpRequest) -> str:
    if not obj.pk:
        return "—"
    token = obj.token if _can_see_token(request) else "<token>"
    return format_html(
        "<pre>{}</pre>", json.dumps(sample_payload(obj, token=token), ensure_ascii=False, indent=2)
    )


@admin.display(description=_("TradingView alert message"))
def _tradingview_message(obj: Strategy, request: HttpRequest) -> str:
    if not obj.pk:
        return "—"
    token = obj.token if _can_see_token(request) else "<token>"
    return format_html("<pre>{}</pre>", tradingview_template(obj, token=token))


# Field name -> renderer; the name keeps the page's CSS classes (field-sample, ...) as they were.
REQUEST_DISPLAYS: dict[str, Callable[[Strategy, HttpRequest], str]] = {
    "webhook_endpoint": _webhook_endpoint,
    "sample": _sample,
    "tradingview_message": _tradingview_message,
}


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["group_name", "market_type", "is_active", "is_paused", "account_count", "created_at"]
    list_filter = ["market_type", "is_active"]
    search_fields = ["group_name", "description"]
    inlines = [StrategyAccountInline]
    actions = ["regenerate_tokens"]  # + pause, resume, flatten: webhooks/admin.py (the kill switch)
    readonly_fields = ["masked_token", "paused_at"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "group_name",
                    "description",
                    "market_type",
                    "default_currency",
                    "is_active",
                    "rate_limit",
                ]
            },
        ),
        (
            _("Risk limits and kill switch"),
            {"fields": [*RISK_FIELDS, "max_signal_age_seconds", *PAUSE_FIELDS], "classes": ["risk-limits"]},
        ),
        (_("Webhook"), {"fields": ["masked_token", *REQUEST_DISPLAYS]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Strategy]:
        return super().get_queryset(request).prefetch_related("strategy_accounts")

    @admin.display(description=_("accounts"))
    def account_count(self, obj: Strategy) -> int:
        return sum(1 for link in obj.strategy_accounts.all() if link.is_active)

    @admin.display(description=_("webhook token"))
    def masked_token(self, obj: Strategy) -> str:
        return mask(obj.token) if obj.pk else str(_("generated on save"))

    def _bind(self, fields: Any, request: HttpRequest) -> list[Any]:
        """The request-dependent field names replaced by displays bound to this request."""
        return [
            RequestDisplay(name, REQUEST_DISPLAYS[name], request) if name in REQUEST_DISPLAYS else name
            for name in fields
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), *self._bind(REQUEST_DISPLAYS, request)]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return [
            (title, {**options, "fields": self._bind(options["fields"], request)})
            for title, options in super().get_fieldsets(request, obj)
        ]

    @admin.action(description=_("Regenerate webhook token"))
    def regenerate_tokens(self, request: HttpRequest, queryset: QuerySet[Strategy]) -> None:
        for strategy in queryset:
            strategy.regenerate_token()
        self.message_user(
            request, _("Tokens regenerated: %(count)d") % {"count": queryset.count()}, messages.SUCCESS
        )


class AccountForm(forms.ModelForm):
    """Credentials are write-only: the form never shows them; blank keeps the stored value."""

    api_key = forms.CharField(
        label=_("API key"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    api_secret = forms.CharField(
        label=_("API secret"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    passphrase = forms.CharField(
        label=_("passphrase"), required=False, widget=forms.PasswordInput(render_value=False)
    )
    clear_credentials = forms.BooleanField(label=_("clear stored credentials"), required=False)

    class Meta:
        model = Account
        fields = [
            "name",
            "exchange",
            "is_active",
            "is_testnet",
            "settings",
            *CREDENTIAL_FIELDS,
            *RISK_FIELDS,
            "market_timezone",
            "loss_reset_time",
            "is_paused",
            "paused_reason",
            "paused_until",
        ]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name in CREDENTIAL_FIELDS:
            self.initial[name] = ""
            if self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text = _("Stored: %(masked)s — leave blank to keep it.") % {
                    "masked": mask(getattr(self.instance, name))
                }

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("clear_credentials"):
            for name in CREDENTIAL_FIELDS:
                cleaned[name] = ""
        elif self.instance.pk:
            stored = Account.objects.get(pk=self.instance.pk)
            for name in CREDENTIAL_FIELDS:
                if not cleaned.get(name):
                    cleaned[name] = getattr(stored, name)
        return cleaned


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = ["name", "exchange", "is_active", "is_testnet", "is_paused", "masked_api_key"]
    list_filter = ["exchange", "is_active", "is_testnet", "is_paused"]
    search_fields = ["name"]
    # Actions pause, resume and flatten: webhooks/admin.py (the kill switch lives a layer up).
    readonly_fields = ["paused_at"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "exchange",
                    "is_active",
                    "is_testnet",
                    "settings",
                    *CREDENTIAL_FIELDS,
                    "clear_credentials",
                ]
            },
        ),
        (
            _("Risk limits and kill switch"),
            {"fields": [*RISK_FIELDS, "market_timezone", "loss_reset_time", *PAUSE_FIELDS]},
        ),
    ]

    @admin.display(description=_("API key"))
    def masked_api_key(self, obj: Account) -> str:
        return mask(obj.api_key)
