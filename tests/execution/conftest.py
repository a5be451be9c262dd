from __future__ import annotations

from collections.abc import Iterator

import pytest

from orders import liveness


@pytest.fixture
def no_heartbeat_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No heartbeat thread of this process beats behind the test's back: an earlier test's is
    stopped, and none is started; the test beats by hand (``liveness.beat``)."""
    with liveness._lock:
        running = liveness._started.pop(liveness.os.getpid(), None)
    if running is not None:
        running.set()
    monkeypatch.setattr(liveness, "start_heartbeat", lambda: None)
    yield
