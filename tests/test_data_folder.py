"""The data folder keeps its secrets to its owner, and its log survives several writers (#11)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.embedded import embedded_env

ROOT = Path(__file__).resolve().parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_embedded_data_folder_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=embedded_env(data, SECRET_KEY="", FIELD_ENCRYPTION_KEYS=""),
        check=True,
        timeout=120,
    )

    assert _mode(data) == 0o700 and _mode(data / "logs") == 0o700
    for name in ("db.sqlite3", "secret_key", "encryption_keys"):
        assert _mode(data / name) == 0o600, name


WRITER = """
import json, logging.config, sys, time
logging.config.dictConfig(json.loads(sys.argv[1]))
log = logging.getLogger("writer")
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # both writers start together
for i in range(int(sys.argv[3])):
    log.info("%s %05d %s", sys.argv[2], i, "x" * 200)
    time.sleep(0.001)
"""


def test_two_processes_share_one_rotating_log_without_losing_lines(tmp_path: Path) -> None:
    handler: dict[str, Any] = {
        **settings.LOGGING["handlers"]["file"],  # the configured file handler, as the processes use it
        "filename": str(tmp_path / "app.log"),
        "maxBytes": 50_000,
        "backupCount": 100,
        "filters": [],
    }
    handler.pop("formatter", None)
    config = {
        "version": 1,
        "handlers": {"file": handler},
        "loggers": {"writer": {"handlers": ["file"], "level": "INFO"}},
    }
    lines, start = 600, time.time() + 2
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, json.dumps(config), name, str(lines), str(start)], cwd=ROOT
        )
        for name in ("A", "B")
    ]
    for writer in writers:
        assert writer.wait(120) == 0

    files = [path.read_text(encoding="utf-8").splitlines() for path in tmp_path.glob("app.log*")
             if not path.name.endswith(".lock")]  # fmt: skip
    logged = [line for content in files for line in content]
    assert len(logged) == 2 * lines  # every line of both writers, none overwritten by a rotation
    assert len({line.split(" ")[0] + line.split(" ")[1] for line in logged}) == 2 * lines
    # After a rotation both write the new file: the files hold both writers' lines, interleaved
    # (with a per-process rotating handler each keeps writing to the file it had open).
    mixed = [content for content in files if {line[0] for line in content} == {"A", "B"}]
    assert len(mixed) > len(files) / 2, (len(mixed), len(files))
