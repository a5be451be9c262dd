"""The latency trail of an order: when each stage of its way to the venue happened.

``Order.trail`` is a JSON object: ``t0`` is the wall-clock time the webhook was received
(microseconds since the Unix epoch, read once at the start of the request) and every stage is
an offset from it in microseconds::

    {"t0": 1764547200123456, "received": 0, "committed": 2140, "dispatched": 2210,
     "claimed": 4630, "sent": 5012, "answered": 6180}

Within one process offsets come from a monotonic clock (``time.perf_counter_ns``): the web
process measures ``committed`` and ``dispatched`` against the request's start, the worker
measures ``sent`` and ``answered`` against its ``claimed``. Between processes (web → worker)
only the wall clock is shared, so ``claimed`` is ``time.time_ns() - t0``: on one machine that
is exact to the microsecond; across machines it carries their clock skew. The trail is
monotonic-safe: a stage is never stored earlier than the stages before it (nor below 0); a
stage that had to be moved up is listed under ``clamped``.

Writing the trail costs no query of its own: the web process stores ``t0``/``received`` in the
order's INSERT and hands ``committed``/``dispatched`` to the worker in the task message; the
worker keeps every stage in memory and writes the trail with the UPDATE that records the
venue's answer (or puts the order back in the queue).
"""

from __future__ import annotations

import time
from typing import Any

STAGES: tuple[str, ...] = ("received", "committed", "dispatched", "claimed", "sent", "answered")
# Stages measured by the web process and carried to the worker in the task message.
WEB_STAGES: tuple[str, ...] = ("committed", "dispatched")


def wall_us() -> int:
    return time.time_ns() // 1000


class StageClock:
    """Marks the stages of one process. The first mark of a clock made without ``perf0``
    reads the wall clock (against ``t0``); every later mark adds the monotonic time elapsed
    since, so stages of one process are ordered and exact whatever the wall clock does."""

    def __init__(self, trail: dict[str, Any], *, t0: int | None = None, perf0: int | None = None):
        self.trail = trail
        if t0 is not None:
            trail["t0"] = t0
        self._base_offset: int | None = 0 if perf0 is not None else None
        self._base_perf = perf0 if perf0 is not None else 0

    @classmethod
    def start(cls) -> StageClock:
        """A clock for a request that starts now: ``received`` is 0."""
        clock = cls({}, t0=wall_us(), perf0=time.perf_counter_ns())
        clock.trail["received"] = 0
        return clock

    def offset(self) -> int:
        """Microseconds since ``t0`` now, by this clock."""
        perf = time.perf_counter_ns()
        if self._base_offset is None:
            self._base_offset = wall_us() - int(self.trail.get("t0") or 0)
            self._base_perf = perf
            return self._base_offset
        return self._base_offset + (perf - self._base_perf) // 1000

    def mark(self, stage: str, offset: int | None = None) -> int:
        """Store ``stage`` at ``offset`` (default: now), never before an earlier stage."""
        if "t0" not in self.trail:
            return 0  # an order stored before trails existed: nothing to measure against
        value = self.offset() if offset is None else offset
        return trail_set(self.trail, stage, value)


def trail_set(trail: dict[str, Any], stage: str, offset: int) -> int:
    """Store ``stage`` at ``offset``, moved up to the latest earlier stage (and 0) if needed."""
    floor = 0
    for earlier in STAGES[: STAGES.index(stage)]:
        value = trail.get(earlier)
        if isinstance(value, int) and value > floor:
            floor = value
    if offset < floor:
        clamped = trail.setdefault("clamped", [])
        if stage not in clamped:
            clamped.append(stage)
        offset = floor
    trail[stage] = int(offset)
    return int(offset)


def trail_merge(trail: dict[str, Any], carried: dict[str, Any] | None) -> None:
    """Take the web stages a task message carried, when they belong to this trail (same t0)
    and are not stored yet."""
    if not carried or not trail or carried.get("t0") != trail.get("t0"):
        return
    for stage in WEB_STAGES:
        value = carried.get(stage)
        if isinstance(value, int) and stage not in trail:
            trail_set(trail, stage, value)


def trail_rows(trail: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The stages in order for display: name, ms since received, ms since the previous stage."""
    if not trail or "t0" not in trail:
        return []
    rows: list[dict[str, Any]] = []
    previous: int | None = None
    clamped = set(trail.get("clamped") or [])
    for stage in STAGES:
        value = trail.get(stage)
        if not isinstance(value, int):
            continue
        rows.append(
            {
                "stage": stage,
                "ms": value / 1000,
                "step_ms": None if previous is None else (value - previous) / 1000,
                "clamped": stage in clamped,
            }
        )
        previous = value
    return rows
