"""Orders (one per account and webhook entry) and the paper venue's own book."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Final, TypedDict

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from orders.trail import StageClock
from quanttrade.vocabulary import MarketType, OrderStatus, OrderType, Side


class _Digits(TypedDict):
    """The ``max_digits``/``decimal_places`` pair of a DecimalField, typed so ``**`` spreads check."""

    max_digits: int
    decimal_places: int


MONEY: Final[_Digits] = {"max_digits": 30, "decimal_places": 10}


class OrderOrigin(models.TextChoices):
    SIGNAL = "signal", _("signal")
    FLATTEN = "flatten", _("flatten (kill switch)")


class Order(models.Model):
    """One order for one account, created from one webhook (or one entry of a batch)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey("webhooks.WebhookEvent", on_delete=models.CASCADE, related_name="orders")
    strategy = models.ForeignKey("strategies.Strategy", on_delete=models.PROTECT, related_name="orders")
    account = models.ForeignKey("strategies.Account", on_delete=models.PROTECT, related_name="orders")
    # Position in this account's execution sequence for the webhook (priority order, 0-based).
    sequence = models.PositiveSmallIntegerField()
    # 1-based position of the order in the webhook (the batch index the sender sees).
    batch_index = models.PositiveSmallIntegerField(default=1)
    market_type = models.CharField(max_length=32, choices=MarketType.choices)
    symbol = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=16, blank=True)
    side = models.CharField(max_length=4, blank=True, choices=Side.choices)
    order_type = models.CharField(max_length=32, choices=OrderType.choices)
    qty_per = models.DecimalField(null=True, blank=True, **MONEY)
    price = models.DecimalField(null=True, blank=True, **MONEY)
    stop_price = models.DecimalField(null=True, blank=True, **MONEY)
    params = models.JSONField(default=dict, blank=True)
    client_order_id = models.CharField(max_length=36, unique=True)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.QUEUED, db_index=True
    )
    quantity = models.DecimalField(null=True, blank=True, **MONEY)
    filled_qty = models.DecimalField(default=Decimal("0"), **MONEY)
    avg_price = models.DecimalField(null=True, blank=True, **MONEY)
    # Fees the venue charged for this order's fills, where it reports them (null: unknown).
    fee = models.DecimalField(null=True, blank=True, **MONEY)
    fee_currency = models.CharField(max_length=16, blank=True)
    exchange_order_id = models.CharField(max_length=128, blank=True)
    message = models.TextField(blank=True)
    cancelled_orders = models.PositiveIntegerField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The attempt whose placement's fate was unknown (timeout, lost answer, 5xx): from then on
    # the order is only looked up by client id, never sent again where the venue could take a
    # repeat as a second order; null while every answer was certain.
    uncertain_attempt = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # When the live refresh last asked the venue about this order while it rested there
    # (orders.services.live_orders_refresh): the least recently asked go first, so every resting
    # order is reached however many there are. Null: never asked.
    checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the order's fills were last recorded (set whenever filled_qty grows): the day a fill
    # counts for in the daily loss (orders.risk.realised_pnl). Null: nothing filled yet, or
    # filled before this was kept (its send time stands in).
    filled_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A cancel the venue accepted while still showing the order live (an acceptance is not the
    # cancel): when it was last sent, and how many times the live refresh sent it again since
    # (orders.services.live_orders_refresh: after ORDER_CANCEL_RESEND_SECONDS with the order
    # still live at its venue, at most ORDER_CANCEL_RESENDS times, the operator told). Null: no
    # such cancel outstanding.
    cancel_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancel_resends = models.PositiveSmallIntegerField(default=0, editable=False)
    # --- approval (semi-automatic mode) ---
    # Until when a `pending_approval` order may be approved (null: it never needed approval).
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approved_orders",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # The latency trail (orders/trail.py): t0 = received (µs since the epoch), and each stage
    # (committed, dispatched, claimed, sent, answered) in µs since then.
    trail = models.JSONField(default=dict, blank=True)
    # Not a field: the executing worker's clock for this order's stages (set by order_claim).
    stage_clock: StageClock | None = None
    # Not a field: when the executing worker read the order with its strategy and account
    # (time.monotonic()); their pause flags are fresh enough to judge it for a moment.
    loaded_at: float | None = None
    # Not a field: this attempt recorded that its request may leave (orders.services: an error
    # after that point may have left an order at the venue).
    send_marked: bool = False
    # Flatten orders (kill switch) pass the pause and the risk limits: they only reduce risk.
    origin = models.CharField(
        max_length=16, choices=OrderOrigin.choices, default=OrderOrigin.SIGNAL, db_default=OrderOrigin.SIGNAL
    )

    class Meta:
        ordering = ["created_at", "account_id", "sequence"]
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            # An account's live orders (the worker's read of a task's orders and its "anything
            # earlier pending?" check, the open-orders limit): without it those read every order
            # the account ever had (20,000 orders: 7 ms per order on SQLite, against 0.1).
            models.Index(fields=["account", "status"], name="order_account_status_idx"),
            # An account's orders sent in the last minute (the orders-per-minute limit, checked
            # before every order when set): by the account alone, its whole history again.
            models.Index(fields=["account", "submitted_at"], name="order_account_submitted_idx"),
        ]
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return f"{self.order_type} {self.side} {self.symbol} @{self.account_id} [{self.status}]"


# --- the paper venue's own state (it plays an exchange, so it keeps its own book) -----------


class PaperBalance(models.Model):
    account = models.ForeignKey("strategies.Account", on_delete=models.CASCADE, related_name="paper_balances")
    asset = models.CharField(max_length=16)
    free = models.DecimalField(default=Decimal("0"), **MONEY)
    locked = models.DecimalField(default=Decimal("0"), **MONEY)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "asset"], name="uniq_paper_balance")]
        verbose_name = _("paper balance")

    def __str__(self) -> str:
        return f"{self.asset} {self.free}"


class PaperPosition(models.Model):
    """A derivative or stock position; quantity is signed (negative = short)."""

    account = models.ForeignKey(
        "strategies.Account", on_delete=models.CASCADE, related_name="paper_positions"
    )
    symbol = models.CharField(max_length=64)
    market_type = models.CharField(max_length=32, choices=MarketType.choices)
    quantity = models.DecimalField(default=Decimal("0"), **MONEY)
    entry_price = models.DecimalField(default=Decimal("0"), **MONEY)
    currency = models.CharField(max_length=16)
    # Margin held in the quote balance's `locked` for a derivative position (0 for stocks).
    margin = models.DecimalField(default=Decimal("0"), **MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol", "market_type"], name="uniq_paper_position")
        ]
        verbose_name = _("paper position")

    def __str__(self) -> str:
        return f"{self.symbol} {self.quantity}"


class PaperOrder(models.Model):
    """An order resting on the paper venue (LIMIT/STOP) or filled by it."""

    account = models.ForeignKey("strategies.Account", on_delete=models.CASCADE, related_name="paper_orders")
    client_order_id = models.CharField(max_length=36, unique=True)
    venue_order_id = models.CharField(max_length=40, unique=True)
    market_type = models.CharField(max_length=32, choices=MarketType.choices)
    symbol = models.CharField(max_length=64)
    instrument = models.CharField(max_length=80)
    currency = models.CharField(max_length=16)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=32, choices=OrderType.choices)
    amount = models.DecimalField(**MONEY)
    price = models.DecimalField(null=True, blank=True, **MONEY)
    stop_price = models.DecimalField(null=True, blank=True, **MONEY)
    reduce_only = models.BooleanField(default=False)
    # Funds moved from `free` to `locked` of `reserved_asset` while the order rests.
    reserved = models.DecimalField(default=Decimal("0"), **MONEY)
    reserved_asset = models.CharField(max_length=16, blank=True)
    triggered = models.BooleanField(default=False)
    status = models.CharField(max_length=20, default="open", db_index=True)
    filled = models.DecimalField(default=Decimal("0"), **MONEY)
    avg_price = models.DecimalField(null=True, blank=True, **MONEY)
    # The price feed whose tick filled it (simulated, kis, ccxt, manual…): a fill at a made-up
    # price must say so.
    priced_by = models.CharField(max_length=32, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("paper order")

    def __str__(self) -> str:
        return f"{self.order_type} {self.side} {self.symbol} {self.amount} [{self.status}]"


class EquitySnapshot(models.Model):
    """An account's equity at the end of a day, per currency (the equity curve's points).

    ``equity`` is cash plus the marked value of holdings (spot coins, stocks) plus the
    unrealised PnL of margin positions, in ``currency``; one row per account, day and currency."""

    account = models.ForeignKey(
        "strategies.Account", on_delete=models.CASCADE, related_name="equity_snapshots"
    )
    day = models.DateField()
    currency = models.CharField(max_length=16)
    equity = models.DecimalField(**MONEY)
    unrealised_pnl = models.DecimalField(default=Decimal("0"), **MONEY)
    realised_pnl = models.DecimalField(default=Decimal("0"), **MONEY)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "day", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "currency"], name="uniq_equity_snapshot")
        ]
        verbose_name = _("equity snapshot")
        verbose_name_plural = _("equity snapshots")

    def __str__(self) -> str:
        return f"{self.account_id} {self.day} {self.equity} {self.currency}"
