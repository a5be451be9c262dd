"""Waiting for a server a test started to answer /healthz (the product's readiness: it answers
200 once its database and broker do), shared by every test that starts one."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable
from typing import Any


def healthz(base_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """/healthz's JSON when it answers 200; None while it does not listen or is not ready."""
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=timeout) as response:
            return dict(json.loads(response.read() or b"{}"))
    except (OSError, ValueError, http.client.HTTPException):  # not listening, not ready, not JSON yet
        return None


def wait_healthy(
    base_url: str,
    timeout: float = 60.0,
    *,
    process: subprocess.Popen[Any] | None = None,
    alive: Callable[[], bool] | None = None,
    log: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Return /healthz's JSON once it answers 200. Fails at once if ``process`` (the server)
    exits first, or ``alive`` (for a server this process did not start) says it has, and after
    ``timeout`` seconds otherwise; ``log`` adds the server's log to the error."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            detail = f":\n{log()}" if log else ""
            raise RuntimeError(f"the server exited ({process.returncode}) before it was ready{detail}")
        if alive is not None and not alive():
            detail = f":\n{log()}" if log else ""
            raise RuntimeError(f"the server exited before it was ready{detail}")
        answer = healthz(base_url)
        if answer is not None:
            return answer
        if time.monotonic() >= deadline:
            detail = f":\n{log()}" if log else ""
            raise TimeoutError(f"{base_url}/healthz did not answer 200 within {timeout:.0f} s{detail}")
        time.sleep(0.1)
