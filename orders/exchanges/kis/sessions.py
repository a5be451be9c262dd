"""Korean market time for the KIS adapter: one injectable clock and the F&O sessions.

KRX futures and options trade in a day session and a night session (18:00 to 06:00 KST the
next morning). Which one an order, a lookup or a cancel-all belongs to is decided from a clock
the adapter holds (``KisAdapter.clock``), never read from the wall directly, so tests can
pin it and a night that crosses midnight is still one session.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
NIGHT_OPENS_HOUR = 18
NIGHT_CLOSES_HOUR = 6


def kst_now() -> datetime:
    return datetime.now(KST)


def fo_session(now: datetime) -> str:
    """Night from 18:00 to 06:00 KST, else day."""
    hour = now.astimezone(KST).hour
    return "night" if hour >= NIGHT_OPENS_HOUR or hour < NIGHT_CLOSES_HOUR else "day"


def night_session_start(now: datetime) -> date:
    """The KST calendar day on whose evening the current (or, by day, the latest) night session
    opened: after midnight that is yesterday, so an order placed at 23:00 is still found at 01:00."""
    local = now.astimezone(KST)
    return local.date() if local.hour >= NIGHT_OPENS_HOUR else local.date() - timedelta(days=1)
