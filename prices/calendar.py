"""KRX trading calendar: weekends plus the exchange holidays listed here (2025-2027).

The list is maintained by hand from the KRX annual notice (market closing days, including
substitute holidays, election days and the year-end closing day of 31 December). Outside the
covered years only weekends are known, so add the next year's notice before it starts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
# The regular session ends at 15:30 KST; a day's close exists only after that.
KRX_CLOSE = time(15, 30)

KRX_HOLIDAYS: frozenset[date] = frozenset(
    date.fromisoformat(d)
    for d in (
        # 2025
        "2025-01-01", "2025-01-27", "2025-01-28", "2025-01-29", "2025-01-30", "2025-03-03",
        "2025-05-01", "2025-05-05", "2025-05-06", "2025-06-03", "2025-06-06", "2025-08-15",
        "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08", "2025-10-09", "2025-12-25",
        "2025-12-31",
        # 2026
        "2026-01-01", "2026-02-16", "2026-02-17", "2026-02-18", "2026-03-02", "2026-05-01",
        "2026-05-05", "2026-05-25", "2026-06-03", "2026-08-17", "2026-09-24", "2026-09-25",
        "2026-10-05", "2026-10-09", "2026-12-25", "2026-12-31",
        # 2027
        "2027-01-01", "2027-02-08", "2027-02-09", "2027-03-01", "2027-05-05", "2027-05-13",
        "2027-08-16", "2027-09-14", "2027-09-15", "2027-09-16", "2027-10-04", "2027-10-11",
        "2027-12-27", "2027-12-31",
    )
)  # fmt: skip


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in KRX_HOLIDAYS


def previous_trading_day(day: date) -> date:
    """The last trading day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def last_closed_trading_day(now: datetime) -> date:
    """The most recent trading day whose regular session has ended at ``now``."""
    local = now.astimezone(KST)
    today = local.date()
    if is_trading_day(today) and local.time() >= KRX_CLOSE:
        return today
    return previous_trading_day(today)


def trading_days_between(start: date, end: date) -> int:
    """How many trading days lie in (start, end]; 0 when start >= end."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        if is_trading_day(day):
            count += 1
    return count


def close_time(day: date) -> datetime:
    """The moment a day's closing price is fixed (15:30 KST)."""
    return datetime.combine(day, KRX_CLOSE, tzinfo=KST)
