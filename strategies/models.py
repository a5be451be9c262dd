"""Strategies (what a webhook names) and Accounts (where its orders go)."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime, time
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import ccxt
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from quanttrade.crypto import EncryptedTextField
from quanttrade.rates import validate_rate
from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType
from strategies.generation import strategies_changed


def generate_token() -> str:
    return secrets.token_urlsafe(32)


# --- risk limits (issue #14): the same fields on a Strategy and on an Account ------------------

HOURS_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def parse_trading_hours(text: str) -> list[tuple[time, time]]:
    """``"09:00-15:20, 22:00-02:00"`` as (start, end) windows; a window whose end is before its
    start runs past midnight. Raises ValueError naming the bad part."""
    windows: list[tuple[time, time]] = []
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if not HOURS_PATTERN.match(part):
            raise ValueError(part)
        start, end = part.split("-")
        windows.append((time.fromisoformat(start), time.fromisoformat(end)))
    return windows


def parse_symbols(text: str) -> set[str]:
    """The allow-list as upper-case symbols (comma, space or newline separated)."""
    return {part.upper() for part in re.split(r"[,\s]+", text.strip()) if part}


def validate_trading_hours(value: str) -> None:
    try:
        parse_trading_hours(value)
    except ValueError as error:
        raise ValidationError(
            _("Trading hours are windows like 09:00-15:20, comma separated; not %(part)s")
            % {"part": error.args[0]}
        ) from None


def validate_timezone(value: str) -> None:
    if value and value not in available_timezones():
        raise ValidationError(_("Unknown time zone: %(zone)s") % {"zone": value})


def _money_limit(
    label: StrOrPromise, help_text: StrOrPromise
) -> models.DecimalField[Decimal | None, Decimal | None]:
    """An optional amount limit (blank = no limit), with the digits of every money field."""
    return models.DecimalField(
        label, max_digits=30, decimal_places=10, null=True, blank=True, help_text=help_text
    )


class RiskLimits(models.Model):
    """Limits checked before anything reaches a venue (orders/risk.py). Blank = no limit.
    Where a strategy and an account both set one, the stricter applies."""

    max_order_notional = _money_limit(
        _("max order notional"), _("Largest value of one order (quantity × price, quote currency).")
    )
    max_position_notional = _money_limit(
        _("max position notional per symbol"),
        _("Largest value of the position in one symbol after an order."),
    )
    max_open_orders = models.PositiveIntegerField(_("max open orders"), null=True, blank=True)
    max_orders_per_minute = models.PositiveIntegerField(_("max orders per minute"), null=True, blank=True)
    max_daily_loss = _money_limit(
        _("max daily realised loss"), _("Reaching it pauses trading until it is resumed (a positive amount).")
    )
    # Database defaults on the new non-null columns: rows written by code that predates them
    # (a rolling deploy, an older migration state) still insert.
    allowed_symbols = models.TextField(
        _("allowed symbols"),
        blank=True,
        db_default="",
        help_text=_("Only these symbols may be traded (comma or space separated); blank allows all."),
    )
    trading_hours = models.CharField(
        _("trading hours"),
        max_length=200,
        blank=True,
        db_default="",
        validators=[validate_trading_hours],
        help_text=_("Windows when orders may be placed, e.g. 09:00-15:20 (market time zone); blank: always."),
    )
    is_paused = models.BooleanField(
        _("paused"),
        default=False,
        db_default=False,
        help_text=_("Kill switch: new signals are refused while paused."),
    )
    paused_reason = models.CharField(_("pause reason"), max_length=300, blank=True, db_default="")
    paused_at = models.DateTimeField(_("paused at"), null=True, blank=True)
    paused_until = models.DateTimeField(
        _("paused until"),
        null=True,
        blank=True,
        help_text=_(
            "The pause lifts itself then (a daily-loss pause, at the next reset); blank: until resumed."
        ),
    )

    PAUSE_FIELDS = ("is_paused", "paused_reason", "paused_at", "paused_until")

    class Meta:
        abstract = True

    def pause(self, reason: str = "", until: datetime | None = None) -> bool:
        """Pause (the kill switch), until resumed or until ``until``; False when it already was.
        Writes only the pause fields."""
        updated = (
            type(self)
            ._default_manager.filter(pk=self.pk, is_paused=False)
            .update(is_paused=True, paused_reason=reason[:300], paused_at=timezone.now(), paused_until=until)
        )
        strategies_changed()  # a queryset update sends no post_save
        self.refresh_from_db(fields=list(self.PAUSE_FIELDS))
        return bool(updated)

    def resume(self) -> None:
        type(self)._default_manager.filter(pk=self.pk).update(
            is_paused=False, paused_reason="", paused_at=None, paused_until=None
        )
        strategies_changed()
        self.refresh_from_db(fields=list(self.PAUSE_FIELDS))

    def paused_now(self, now: datetime | None = None) -> bool:
        """Whether the pause holds at ``now``; a pause past its ``paused_until`` is lifted here."""
        if not self.is_paused:
            return False
        if self.paused_until is not None and (now or timezone.now()) >= self.paused_until:
            self.resume()
            return False
        return True


class Strategy(RiskLimits):
    group_name = models.CharField(_("group name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    market_type = models.CharField(_("market type"), max_length=32, choices=MarketType.choices)
    # Stored encrypted (staff can reveal it in the pages); a blank one is generated on save.
    token = EncryptedTextField(_("webhook token"), blank=True)
    default_currency = models.CharField(
        _("default currency"),
        max_length=16,
        blank=True,
        help_text=_("Quote currency used when a crypto webhook omits `currency`."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    rate_limit = models.CharField(
        _("rate limit"),
        max_length=16,
        blank=True,
        validators=[validate_rate],
        help_text=_("Webhooks allowed per period, e.g. 60/m; blank uses WEBHOOK_RATE_LIMIT."),
    )
    max_signal_age_seconds = models.PositiveIntegerField(
        _("max signal age (seconds)"),
        null=True,
        blank=True,
        help_text=_("A webhook whose `timestamp` is older than this is refused; blank: no limit."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # --- approval (semi-automatic mode) ---
    approval_required = models.BooleanField(
        _("approve first"),
        # A database default too: rows written by code that predates the column (a rolling
        # deploy, historical migration states) still insert.
        default=False,
        db_default=False,
        help_text=_("Orders wait in the approval queue until a staff user approves them."),
    )
    approval_timeout_seconds = models.PositiveIntegerField(
        _("approval timeout (seconds)"),
        default=60,
        db_default=60,
        validators=[MinValueValidator(1)],
        help_text=_("An order not approved within this time is dropped, never sent."),
    )
    accounts: models.ManyToManyField[Account, StrategyAccount] = models.ManyToManyField(
        "Account", through="StrategyAccount", related_name="strategies"
    )

    class Meta:
        ordering = ["group_name"]
        verbose_name = _("strategy")
        verbose_name_plural = _("strategies")

    def __str__(self) -> str:
        return self.group_name

    def save(self, *args: object, **kwargs: object) -> None:
        if not self.token:
            self.token = generate_token()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def token_matches(self, candidate: str) -> bool:
        """Constant-time comparison of a presented token with this strategy's token."""
        return hmac.compare_digest(self.token.encode(), candidate.encode())

    def regenerate_token(self) -> str:
        self.token = generate_token()
        self.save(update_fields=["token", "updated_at"])
        return self.token


class Exchange(models.TextChoices):
    PAPER = "PAPER", _("Paper (simulated)")
    BINANCE = "BINANCE", "Binance"
    BYBIT = "BYBIT", "Bybit"
    UPBIT = "UPBIT", "Upbit"
    OKX = "OKX", "OKX"
    BITGET = "BITGET", "Bitget"
    KIS = "KIS", _("Korea Investment & Securities")
    KIWOOM = "KIWOOM", _("Kiwoom Securities")


# Venues that authenticate with a key/secret pair (every venue but the paper one).
# OKX and Bitget also need the passphrase chosen when the key was made.
PASSPHRASE_EXCHANGES = frozenset({Exchange.OKX, Exchange.BITGET})
BROKERS = frozenset({Exchange.KIS, Exchange.KIWOOM})
# A KIS/Kiwoom account number: 8 digits (CANO), optionally "-" and the 2-digit product code.
ACCOUNT_NUMBER = re.compile(r"^\d{8}-?\d{2}$")


@cache
def ccxt_codes() -> frozenset[str]:
    """ccxt's own exchange ids, upper-cased as Account.exchange stores them."""
    return frozenset(ccxt_id.upper() for ccxt_id in ccxt.exchanges)


def is_known_exchange(code: str) -> bool:
    return code in Exchange.values or code in ccxt_codes()


def exchange_choices() -> list[tuple[Any, list[tuple[str, Any]]]]:
    """Grouped choices for a select: the venues with their own adapter, then other ccxt ids."""
    ours = [(str(code), label) for code, label in Exchange.choices]
    others = [
        (ccxt_id.upper(), ccxt_id) for ccxt_id in ccxt.exchanges if ccxt_id.upper() not in Exchange.values
    ]
    return [(_("Supported venues"), ours), (_("Other ccxt exchanges"), others)]


@cache
def has_testnet(code: str) -> bool:
    """Whether ccxt can switch ``code``'s client to the venue's testnet (Upbit cannot)."""
    try:
        getattr(ccxt, code.lower())().set_sandbox_mode(True)
    except Exception:  # ccxt raises NotSupported, or TypeError where no test URL exists
        return False
    return True


def validate_exchange(value: str) -> None:
    """Refuse an exchange code that is neither ours nor a ccxt id (a typo cannot be saved)."""
    if not is_known_exchange(str(value).strip().upper()):
        raise ValidationError(
            _("Unknown exchange %(exchange)s: choose PAPER, a supported venue or a ccxt exchange id"),
            code="unknown_exchange",
            params={"exchange": value},
        )


class Account(RiskLimits):
    name = models.CharField(_("name"), max_length=100, unique=True)
    exchange = models.CharField(
        _("exchange"),
        max_length=32,
        default=Exchange.PAPER,
        validators=[validate_exchange],
        help_text=_("PAPER, BINANCE, BYBIT, UPBIT, OKX, BITGET, KIS, KIWOOM, or another ccxt id."),
    )
    api_key = EncryptedTextField(_("API key"), blank=True)
    api_secret = EncryptedTextField(_("API secret"), blank=True)
    passphrase = EncryptedTextField(_("passphrase"), blank=True)
    is_testnet = models.BooleanField(
        _("testnet / virtual"), default=False, help_text=_("Testnet (crypto) or 모의투자 (KIS).")
    )
    settings = models.JSONField(
        _("venue settings"),
        default=dict,
        blank=True,
        help_text=_(
            "Per-venue options: leverage, margin_mode, account_number, product_code, price_exchange …"
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    market_timezone = models.CharField(
        _("market time zone"),
        max_length=64,
        blank=True,
        db_default="",
        validators=[validate_timezone],
        help_text=_("Time zone of trading hours and the daily-loss reset; blank: the market's own."),
    )
    loss_reset_time = models.TimeField(
        _("daily loss reset time"),
        default=time(0, 0),
        db_default=time(0, 0),
        help_text=_("When the daily realised loss starts again from zero (market time zone)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # --- approval (semi-automatic mode) ---
    approval_required = models.BooleanField(
        _("approve first"),
        default=False,
        db_default=False,
        help_text=_(
            "Orders for this account wait in the approval queue (the strategy's approval timeout applies)."
        ),
    )
    # --- connection test (orders.connection.account_check) ---------------------------
    connection_ok = models.BooleanField(_("connection OK"), null=True, blank=True, editable=False)
    # db_default: rows written by code that predates these columns (a rolling deploy) stay valid.
    connection_message = models.TextField(
        _("connection test result"), blank=True, default="", db_default="", editable=False
    )
    connection_checked_at = models.DateTimeField(
        _("connection tested at"), null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return f"{self.name} ({self.exchange})"

    def save(self, *args: object, **kwargs: object) -> None:
        self.exchange = self.exchange.strip().upper()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @property
    def is_paper(self) -> bool:
        return self.exchange == Exchange.PAPER

    def clean(self) -> None:
        """What the venue needs to authenticate, refused at save when missing."""
        super().clean()
        self.exchange = (self.exchange or "").strip().upper()
        errors = credential_problems(self.exchange, self.api_key, self.api_secret, self.passphrase)
        number = str((self.settings or {}).get("account_number") or "")
        # KIS needs the number in every account request; Kiwoom's token names the account,
        # so there it is optional (but a wrong one is still refused).
        if (self.exchange == Exchange.KIS or number) and self.exchange in BROKERS:
            if not ACCOUNT_NUMBER.match(number):
                errors.setdefault("settings", []).append(account_number_problem())
        crypto = self.exchange not in BROKERS and self.exchange != Exchange.PAPER
        if (
            self.is_testnet
            and crypto
            and self.exchange.lower() in ccxt.exchanges
            and not has_testnet(self.exchange)
        ):
            errors.setdefault("is_testnet", []).append(
                str(_("%(exchange)s has no testnet: untick testnet / 모의투자") % {"exchange": self.exchange})
            )
        if errors:
            raise ValidationError(errors)


def account_number_problem() -> str:
    return str(_("Account number: 8 digits, then the 2-digit product code (e.g. 12345678-01)"))


def credential_problems(
    exchange: str, api_key: str, api_secret: str, passphrase: str
) -> dict[str, list[str]]:
    """Field -> what is missing for ``exchange`` to authenticate (nothing for the paper venue)."""
    exchange = exchange.upper()
    errors: dict[str, list[str]] = {}
    if exchange == Exchange.PAPER:
        return errors
    key_label, secret_label = (
        (_("app key"), _("app secret")) if exchange in BROKERS else (_("API key"), _("API secret"))
    )
    if not api_key:
        errors["api_key"] = [
            str(_("%(field)s is required for %(exchange)s") % {"field": key_label, "exchange": exchange})
        ]
    if not api_secret:
        errors["api_secret"] = [
            str(_("%(field)s is required for %(exchange)s") % {"field": secret_label, "exchange": exchange})
        ]
    if exchange in PASSPHRASE_EXCHANGES and not passphrase:
        errors["passphrase"] = [
            str(
                _("%(field)s is required for %(exchange)s") % {"field": _("passphrase"), "exchange": exchange}
            )
        ]
    return errors


class StrategyAccount(models.Model):
    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="strategy_accounts")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="strategy_accounts")
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["strategy", "account"], name="uniq_strategy_account")]
        verbose_name = _("linked account")
        verbose_name_plural = _("linked accounts")

    def __str__(self) -> str:
        return f"{self.strategy} → {self.account}"

    def clean(self) -> None:
        """Refuse a link whose account cannot trade the strategy's market at all (the admin
        shows it on the form), rather than failing every order of every webhook later."""
        super().clean()
        try:
            strategy, account = self.strategy, self.account
        except ObjectDoesNotExist:
            return
        problem = link_problem(account.exchange, strategy.market_type)
        if problem:
            raise ValidationError({"account": problem})


def link_problem(exchange: str, market_type: str) -> str | None:
    """Why an account on ``exchange`` cannot trade ``market_type``, or None when it can."""
    exchange = exchange.upper()
    if exchange == Exchange.PAPER:
        return None
    market = MarketType(market_type).label if market_type in MarketType.values else market_type
    crypto = market_type in CRYPTO_MARKETS
    if exchange == Exchange.KIWOOM and market_type != MarketType.DOMESTIC_STOCK:
        return str(_("A Kiwoom account trades domestic stocks only, not %(market)s") % {"market": market})
    if exchange == Exchange.KIS and crypto:
        return str(_("A KIS account trades stocks and futures/options, not %(market)s") % {"market": market})
    if exchange not in (Exchange.KIS, Exchange.KIWOOM) and not crypto:
        return str(_("A crypto exchange account cannot trade %(market)s") % {"market": market})
    if exchange == Exchange.UPBIT and market_type == MarketType.FUTURES:
        return str(_("Upbit has no futures market"))
    return None
