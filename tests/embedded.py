"""Start fresh embedded-mode processes from tests, as a user's server starts.

The suite itself may run on PostgreSQL + Redis (CI does); a process started with
``embedded_env`` sees none of those variables, so it loads the settings exactly as the README's
first command does: SQLite and its secrets in the given data folder, in-process layers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What would take a started process out of embedded mode.
DISTRIBUTED_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")


def embedded_env(data_dir: Path, *, without: tuple[str, ...] = (), **variables: str) -> dict[str, str]:
    """This process's environment for an embedded-mode child keeping its data in ``data_dir``."""
    dropped = set(DISTRIBUTED_VARIABLES) | set(without)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env |= {"DJANGO_SETTINGS_MODULE": "quanttrade.settings", "QT_DATA_DIR": str(data_dir)}
    return env | variables


def run_embedded(data_dir: Path, code: str, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args…`` in a fresh embedded-mode process; its output as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=embedded_env(data_dir, **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )
