"""The startup heap, frozen out of the garbage collector's way.

Python's cyclic garbage collector walks every tracked object of the generation it collects; the
oldest generation holds everything a process allocated while starting (modules, models, URL
patterns, settings, translations: a few hundred thousand objects for this product). A request
that allocates a lot, such as a webhook fanned out to 1,000 accounts (~100,000 objects), sets off
collections of that generation, each walking the whole startup heap again: measured, 50–90 ms of
such a request's 160–230 ms of CPU (docs/benchmarks-speed.md). ``gc.freeze()`` moves everything
alive at the end of startup into a permanent generation the collector never walks; what requests
allocate is collected as before. Python's documentation recommends it for exactly this case.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("quanttrade")


def startup_heap_freeze() -> int:
    """Load what the first request would load (the URLconf and every view it imports), collect
    the garbage startup left, then freeze what is alive. Returns how many objects were frozen."""
    from django.urls import get_resolver  # noqa: PLC0415 - after django.setup()

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and the views now
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("startup heap frozen: %d objects", frozen)
    return frozen
