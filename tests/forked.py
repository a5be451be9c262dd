"""Checking what a forked child process sees (gunicorn's workers after --preload are forks)."""

from __future__ import annotations

import os
from collections.abc import Callable


def holds_in_a_forked_child(check: Callable[[], object]) -> bool:
    """Run ``check`` in a child forked from this process; whether it returned something true
    there (an exception counts as false). The child leaves with ``os._exit``: none of the
    parent's exit handlers (pytest's, the database's) run in it."""
    pid = os.fork()
    if pid == 0:
        try:
            ok = bool(check())
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
