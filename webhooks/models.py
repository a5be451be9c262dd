"""Webhook events (every signal received, accepted or not) and idempotency keys."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class WebhookOutcome(models.TextChoices):
    ACCEPTED = "accepted", _("accepted")
    REJECTED = "rejected", _("rejected")
    DUPLICATE = "duplicate", _("duplicate (idempotent replay)")


class WebhookEvent(models.Model):
    """One received webhook, accepted or not. The payload is stored with the token redacted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(
        "strategies.Strategy", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events"
    )
    group_name = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(null=True, blank=True)
    raw_body = models.TextField(
        blank=True, help_text=_("Body as received when it was not a JSON object (token redacted).")
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices, db_index=True)
    http_status = models.PositiveSmallIntegerField()
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    warnings = models.JSONField(default=list, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True, db_index=True)
    # The exact body returned for an accepted webhook, replayed for an idempotent repeat.
    response = models.JSONField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )

    class Meta:
        db_table = "orders_webhookevent"  # created by the orders app; the table kept its name
        ordering = ["-received_at"]
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")

    def __str__(self) -> str:
        return f"{self.group_name or '?'} {self.outcome} {self.received_at:%Y-%m-%d %H:%M:%S}"


class IdempotencyKey(models.Model):
    """First accepted webhook per (strategy, key); repeats within the TTL replay its response."""

    strategy = models.ForeignKey("strategies.Strategy", on_delete=models.CASCADE)
    key = models.CharField(max_length=200)
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "orders_idempotencykey"  # created by the orders app; the table kept its name
        constraints = [models.UniqueConstraint(fields=["strategy", "key"], name="uniq_idempotency_key")]

    def __str__(self) -> str:
        return self.key
