"""Price feeds. Placeholder until the realtime price layer lands: nothing runs."""

from __future__ import annotations


def run_in_background() -> None:
    """Start the feeds named in settings.PRICE_FEEDS in daemon threads (embedded mode)."""
