"""How events read: one short line each (plus a link), in the destination's language."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from notify.models import EventKind
from quanttrade.logging import redact

APP = "[QuantTrade]"
# A message lists at most this many events; the rest are counted ("… and 12 more").
MAX_LINES = 20
MAX_DETAIL_CHARS = 300

HEADINGS: dict[str, Any] = {
    EventKind.ORDER_FILLED: pgettext_lazy("notification", "Filled"),
    EventKind.ORDER_FAILED: gettext_lazy("Order failed"),
    EventKind.ORDER_UNCERTAIN: gettext_lazy("Order placement uncertain — check the venue"),
    EventKind.ORDER_CANCEL_UNCONFIRMED: gettext_lazy("Cancel not applied yet — check the venue"),
    EventKind.WEBHOOK_REFUSED: gettext_lazy("Webhook refused"),
    EventKind.RISK_LIMIT_HIT: gettext_lazy("Risk limit hit"),
    EventKind.KILL_SWITCH: gettext_lazy("Kill switch"),
    EventKind.FEED_DOWN: gettext_lazy("Price feed down"),
    EventKind.FEED_UP: gettext_lazy("Price feed back up"),
    EventKind.CONNECTION_FAILED: gettext_lazy("Venue connection test failed"),
    EventKind.APPROVAL_PENDING: gettext_lazy("Waiting for approval"),
}
SIDES: dict[str, Any] = {"BUY": gettext_lazy("buy"), "SELL": gettext_lazy("sell")}


def number(value: str) -> str:
    """'50000.00000000' -> '50,000'; '0.01000000' -> '0.01'; anything else as given."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        return value
    if not amount.is_finite():
        return value
    return f"{amount.normalize():,f}"


def _absolute(path: str) -> str:
    if path.startswith(("http://", "https://")):
        return path
    base = (settings.PUBLIC_BASE_URL or "").rstrip("/")
    return f"{base}{path}" if base else path


def _link(fields: dict[str, str]) -> str:
    """The page to open: the order, else the webhook, else the caller's link."""
    try:
        if fields.get("order_id"):
            return _absolute(reverse("order-detail", args=[fields["order_id"]]))
        if fields.get("webhook_id"):
            return _absolute(reverse("webhook-detail", args=[fields["webhook_id"]]))
    except NoReverseMatch:
        return ""
    return _absolute(fields["link"]) if fields.get("link") else ""


def event_line(kind: str, fields: dict[str, str]) -> str:
    """'체결: demo_spot / paper-1 BTC/USDT 매수 0.01 @ 50,000 — detail' and the link below it."""
    heading = str(HEADINGS.get(kind, kind))
    subject = " / ".join(fields[name] for name in ("strategy", "account") if fields.get(name))
    parts = [subject, fields.get("feed", ""), fields.get("symbol", "")]
    side = fields.get("side", "")
    parts.append(str(SIDES.get(side.upper(), side)) if side else "")
    if fields.get("quantity"):
        parts.append(number(fields["quantity"]))
    if fields.get("price"):
        parts.append(f"@ {number(fields['price'])}")
    text = " ".join(part for part in parts if part)
    detail = redact(fields.get("message", ""))[:MAX_DETAIL_CHARS]
    if text and detail:
        line = f"{heading}: {text} — {detail}"
    elif text or detail:
        line = f"{heading}: {text or detail}"
    else:
        line = heading
    link = _link(fields)
    return f"{line}\n{link}" if link else line


def batch_render(events: Sequence[tuple[str, dict[str, str]]], language: str) -> tuple[str, str]:
    """(title, body) of one message carrying ``events`` (kind, fields), oldest first."""
    with translation.override(language):
        if len(events) == 1:
            kind, fields = events[0]
            return f"{APP} {HEADINGS.get(kind, kind)}", event_line(kind, fields)
        lines = [event_line(kind, fields) for kind, fields in events[:MAX_LINES]]
        if len(events) > MAX_LINES:
            lines.append(_("… and %(count)d more") % {"count": len(events) - MAX_LINES})
        title = _("%(app)s %(count)d notifications") % {"app": APP, "count": len(events)}
        return title, "\n\n".join(lines)


def sample_message(language: str) -> tuple[str, str]:
    with translation.override(language):
        return (
            _("%(app)s Test notification") % {"app": APP},
            _("This destination receives QuantTrade notifications."),
        )
