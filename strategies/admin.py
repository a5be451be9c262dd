"""Admin for strategies and accounts. Credentials are write-only and shown masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from strategies.addressing import sample_payload, tradingview_template, webhook_url
from strategies.models import (
    ACCOUNT_NUMBER,
    Account,
    Strategy,
    StrategyAccount,
    account_number_problem,
    exchange_choices,
)

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
        (_("Approval"), {"fields": ["approval_required", "approval_timeout_seconds"]}),
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


# Account.settings keys the form edits through its own fields; the rest stay in the JSON box.
VENUE_SETTING_FIELDS = ("account_number", "leverage", "margin_mode", "api_base_url")
MANAGED_SETTINGS = (*VENUE_SETTING_FIELDS, "product_code")


# What the connection test depends on: changing one clears its stored result.
CONNECTION_INPUTS = ("exchange", "is_testnet", "settings", *CREDENTIAL_FIELDS)


class MarginMode(models.TextChoices):
    CROSS = "cross", _("cross")
    ISOLATED = "isolated", _("isolated")


class AccountForm(forms.ModelForm):
    """One account's venue, credentials and venue settings, field by field.

    Credentials are write-only: the form never shows them; blank keeps the stored value. The
    per-venue fields read and write ``Account.settings``; keys without a field of their own
    stay editable as JSON under "Other settings". The page's script (account_form.js) shows the
    fields the chosen venue uses; the server checks them whatever the page showed.
    """

    exchange = forms.ChoiceField(
        label=_("exchange"),
        choices=exchange_choices,
        help_text=_(
            "Venues with their own adapter first; any other ccxt exchange trades through the generic one."
        ),
    )
    api_key = forms.CharField(
        label=_("API key / app key"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Crypto: the exchange's API key. KIS / Kiwoom: the app key."),
    )
    api_secret = forms.CharField(
        label=_("API secret / app secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Crypto: the API secret. KIS: the app secret. Kiwoom: the secret key."),
    )
    passphrase = forms.CharField(
        label=_("passphrase"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("OKX and Bitget only: the passphrase chosen when the API key was created."),
    )
    clear_credentials = forms.BooleanField(label=_("clear stored credentials"), required=False)
    account_number = forms.CharField(
        label=_("account number"),
        required=False,
        max_length=11,
        help_text=_("KIS / Kiwoom: 8 digits and the 2-digit product code, e.g. 12345678-01."),
    )
    leverage = forms.IntegerField(
        label=_("leverage"),
        required=False,
        min_value=1,
        max_value=125,
        help_text=_("Crypto futures: set on each symbol before its first order; blank leaves the venue's."),
    )
    margin_mode = forms.ChoiceField(
        label=_("margin mode"),
        required=False,
        choices=[("", "—"), *MarginMode.choices],
        help_text=_("Crypto futures: cross or isolated; blank leaves the venue's."),
    )
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Only to point the account at a simulator or a proxy; blank uses the venue's own."),
    )

    class Meta:
        model = Account
        fields = [
            "name",
            "exchange",
            "is_active",
            "is_testnet",
            "settings",
            *CREDENTIAL_FIELDS,
            "approval_required",
            *RISK_FIELDS,
            "market_timezone",
            "loss_reset_time",
            "is_paused",
            "paused_reason",
            "paused_until",
        ]
        labels = {"settings": _("other settings"), "is_testnet": _("testnet / 모의투자")}
        help_texts = {
            "settings": _("Other venue options as JSON (timeout_seconds, rate limits, price_exchange …)."),
            "is_testnet": _("Crypto: the exchange's testnet. KIS / Kiwoom: 모의투자 (virtual trading)."),
        }

    class Media:
        js = ["qt/account_form.js"]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Left blank (a form that does not show the risk fields): midnight, the model's default.
        self.fields["loss_reset_time"].required = False
        for name in CREDENTIAL_FIELDS:
            self.initial[name] = ""
            if self.instance.pk and getattr(self.instance, name):
                self.fields[name].help_text = _("Stored: %(masked)s — leave blank to keep it.") % {
                    "masked": mask(getattr(self.instance, name))
                }
        stored = dict(self.instance.settings or {})
        self.initial["settings"] = {k: v for k, v in stored.items() if k not in MANAGED_SETTINGS}
        for name in VENUE_SETTING_FIELDS:
            if stored.get(name) not in (None, ""):
                self.initial[name] = stored[name]
        number = str(stored.get("account_number") or "")
        if len(number.replace("-", "")) == 8 and stored.get("product_code"):
            self.initial["account_number"] = f"{number}-{stored['product_code']}"

    def clean_account_number(self) -> str:
        number = str(self.cleaned_data.get("account_number") or "").strip()
        if number and not ACCOUNT_NUMBER.match(number):
            raise forms.ValidationError(account_number_problem())
        return number

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("loss_reset_time") is None and "loss_reset_time" not in self.errors:
            cleaned["loss_reset_time"] = Account._meta.get_field("loss_reset_time").get_default()
        if cleaned.get("clear_credentials"):
            for name in CREDENTIAL_FIELDS:
                cleaned[name] = ""
        elif self.instance.pk:
            stored = Account.objects.get(pk=self.instance.pk)
            for name in CREDENTIAL_FIELDS:
                if not cleaned.get(name):
                    cleaned[name] = getattr(stored, name)
        extra = cleaned.get("settings") or {}
        if "settings" in cleaned and not isinstance(extra, dict):
            self.add_error("settings", _("Other settings must be a JSON object."))
        elif "settings" in cleaned:
            merged = {k: v for k, v in extra.items() if k not in MANAGED_SETTINGS}
            for name in VENUE_SETTING_FIELDS:
                value = cleaned.get(name)
                if value not in (None, ""):
                    merged[name] = value
            cleaned["settings"] = merged
        return cleaned

    def save(self, commit: bool = True) -> Account:
        """A result of the connection test no longer holds once what it tested has changed."""
        account: Account = super().save(commit=False)
        stored = Account.objects.filter(pk=account.pk).first() if account.pk else None
        if stored is not None and any(getattr(stored, f) != getattr(account, f) for f in CONNECTION_INPUTS):
            account.connection_ok, account.connection_message, account.connection_checked_at = None, "", None
        if commit:
            account.save()
            self.save_m2m()
        return account

    def _update_errors(self, errors: ValidationError) -> None:
        """The model's complaint about settings["account_number"] belongs to that field here."""
        error_dict = getattr(errors, "error_dict", None)
        if error_dict and "settings" in error_dict and "account_number" in self.fields:
            moved = error_dict.pop("settings")
            if not self.has_error("account_number"):
                error_dict["account_number"] = moved
        super()._update_errors(errors)  # type: ignore[misc] # private in django-stubs


@admin.display(description=_("connection"))
def connection_badge(obj: Account) -> str:
    """✓ / ✗ with when and what the last connection test said (its message on hover)."""
    if obj.connection_ok is None or obj.connection_checked_at is None:
        return format_html('<span class="qt-conn qt-conn-none">{}</span>', _("not tested"))
    when = date_format(timezone.localtime(obj.connection_checked_at), "SHORT_DATETIME_FORMAT")
    css, mark = ("qt-conn-ok", "✓") if obj.connection_ok else ("qt-conn-fail", "✗")
    return format_html(
        '<span class="qt-conn {}" title="{}" style="color:{}">{} {}</span>',
        css,
        obj.connection_message,
        "#1a7f37" if obj.connection_ok else "#cf222e",
        mark,
        when,
    )


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountForm
    list_display = [
        "name",
        "exchange",
        "is_active",
        "is_testnet",
        "is_paused",
        "masked_api_key",
        connection_badge,
    ]
    list_filter = ["exchange", "is_active", "is_testnet", "is_paused", "connection_ok"]
    search_fields = ["name"]
    # Actions pause, resume and flatten: webhooks/admin.py (the kill switch lives a layer up).
    readonly_fields = ["connection_result", "paused_at"]
    fieldsets = [
        (None, {"fields": ["name", "exchange", "is_active", "is_testnet"]}),
        (
            _("Credentials"),
            {"fields": [*CREDENTIAL_FIELDS, "clear_credentials"], "classes": ["qt-venue-credentials"]},
        ),
        (_("Broker account"), {"fields": ["account_number"], "classes": ["qt-venue-broker"]}),
        (_("Crypto futures"), {"fields": ["leverage", "margin_mode"], "classes": ["qt-venue-crypto"]}),
        (_("Approval"), {"fields": ["approval_required"]}),
        (
            _("Risk limits and kill switch"),
            {"fields": [*RISK_FIELDS, "market_timezone", "loss_reset_time", *PAUSE_FIELDS]},
        ),
        (_("Connection test"), {"fields": ["connection_result"]}),
        (_("Advanced"), {"fields": ["api_base_url", "settings"], "classes": ["collapse"]}),
    ]

    @admin.display(description=_("API key"))
    def masked_api_key(self, obj: Account) -> str:
        return mask(obj.api_key)

    @admin.display(description=_("last connection test"))
    def connection_result(self, obj: Account) -> str:
        if not obj.pk or obj.connection_checked_at is None:
            return str(_("Not tested yet: save the account, then press “Test connection”."))
        return format_html(
            "{}<br><span>{}</span>",
            connection_badge(obj),
            obj.connection_message,
        )
