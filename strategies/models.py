"""Strategies (what a webhook names) and Accounts (where its orders go)."""

from __future__ import annotations

import hmac
import secrets

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from quanttrade.crypto import EncryptedTextField
from quanttrade.rates import validate_rate
from quanttrade.vocabulary import CRYPTO_MARKETS, MarketType


def generate_token() -> str:
    return secrets.token_urlsafe(32)


class Strategy(models.Model):
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


class Account(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    exchange = models.CharField(
        _("exchange"),
        max_length=32,
        default=Exchange.PAPER,
        help_text=_("PAPER, BINANCE, BYBIT, UPBIT, OKX, BITGET, KIS, or another ccxt id."),
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
