"""Notification destinations (apprise URLs, stored encrypted) and the outbox of pending messages."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from quanttrade.crypto import EncryptedTextField


class EventKind(models.TextChoices):
    """What a destination can subscribe to. Stable strings: callers pass them to ``emit``."""

    ORDER_FILLED = "order_filled", _("order filled")
    ORDER_FAILED = "order_failed", _("order rejected or failed")
    ORDER_UNCERTAIN = "order_uncertain", _("placement uncertain (check the venue)")
    ORDER_CANCEL_UNCONFIRMED = "order_cancel_unconfirmed", _("cancel not applied (check the venue)")
    WEBHOOK_REFUSED = "webhook_refused", _("webhook refused")
    RISK_LIMIT_HIT = "risk_limit_hit", _("risk limit hit")
    KILL_SWITCH = "kill_switch", _("kill switch used")
    FEED_DOWN = "feed_down", _("price feed down")
    FEED_UP = "feed_up", _("price feed back up")
    CONNECTION_FAILED = "connection_failed", _("venue connection test failed")
    APPROVAL_PENDING = "approval_pending", _("orders waiting for approval")


class Language(models.TextChoices):
    KO = "ko", "한국어"
    EN = "en", "English"


class NotificationDestination(models.Model):
    """One place messages go (a Telegram chat, a Slack channel, an e-mail address, ...)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    # An apprise URL (https://github.com/caronc/apprise/wiki): it holds the destination's
    # tokens, so it is encrypted at rest and never shown again once saved.
    url = EncryptedTextField(_("apprise URL"))
    events = models.JSONField(_("events"), default=list, blank=True)
    language = models.CharField(_("language"), max_length=2, choices=Language.choices, default=Language.KO)
    is_active = models.BooleanField(_("active"), default=True)
    # A flush task is scheduled for this moment (None: none is); emit() schedules one only then.
    flush_due_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The earliest moment of the next message: the rate limit, and the backoff after a failure.
    next_send_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_ok = models.BooleanField(_("last send succeeded"), null=True, editable=False)
    last_result = models.CharField(_("last result"), max_length=300, blank=True, editable=False)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("notification destination")
        verbose_name_plural = _("notification destinations")

    def __str__(self) -> str:
        return self.name

    def wants(self, kind: str) -> bool:
        return kind in (self.events or [])


class NotificationState(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    FAILED = "failed", _("given up")


class Notification(models.Model):
    """One event waiting for its destination's next message (the outbox: it survives restarts
    and broker outages; a sent notification is deleted)."""

    destination = models.ForeignKey(
        NotificationDestination, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    # Plain values only (strings): rendered in the destination's language when sent.
    fields = models.JSONField(default=dict)
    state = models.CharField(
        max_length=16, choices=NotificationState.choices, default=NotificationState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["destination", "state"])]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")

    def __str__(self) -> str:
        return f"{self.kind} → {self.destination_id}"
