"""The webhook spool: signals accepted while the database could not be written.

When the database is unreachable (SPEC §7a: a PostgreSQL restart must not lose a signal nor
answer 5xx), the intake writes the raw body to one file per webhook under
``QT_DATA_DIR/spool/`` and answers 202 with ``"status": "spooled"``. Each file is written to a
temporary name, fsync'd, renamed into place and the folder fsync'd, owner-only (0600): once
the 202 is sent, the signal survives a crash of the process or the machine.

A replayer thread in every web process (and ``manage.py replay_spool``) feeds the files back
through the normal intake once the database answers again. The file name carries the
``webhook_id`` the sender was given; the replay stores the WebhookEvent under that very id in the
same transaction as its orders, so a file is ingested exactly once: a replayer that crashes
after the commit but before deleting the file finds the event already there next time, and two
processes never work on one file at once (an exclusive ``flock`` per file).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings

log = logging.getLogger("quanttrade.webhook")

SUFFIX = ".json"


class SpoolFullError(Exception):
    """WEBHOOK_SPOOL_MAX_FILES signals are already waiting."""


@dataclass(frozen=True)
class SpooledWebhook:
    webhook_id: UUID
    raw_body: bytes
    source_ip: str | None
    idempotency_header: str | None
    received_at: str
    verified: bool  # the strategy's token was checked (from the in-process cache) at intake


def spool_dir() -> Path:
    path = Path(settings.DATA_DIR) / "spool"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def spool_write(item: SpooledWebhook) -> Path:
    """Store one webhook durably (fsync'd file, fsync'd folder) before it is answered."""
    folder = spool_dir()
    if spool_count(folder) >= settings.WEBHOOK_SPOOL_MAX_FILES:
        raise SpoolFullError
    record = {
        "webhook_id": str(item.webhook_id),
        "body": base64.b64encode(item.raw_body).decode(),
        "source_ip": item.source_ip,
        "idempotency_header": item.idempotency_header,
        "received_at": item.received_at,
        "verified": item.verified,
    }
    # Names sort in arrival order, so the replay keeps the senders' order.
    name = f"{time.time_ns():020d}-{item.webhook_id}"
    temporary = folder / f".{name}.tmp"
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, json.dumps(record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    final = folder / f"{name}{SUFFIX}"
    os.replace(temporary, final)
    _fsync_dir(folder)
    return final


def spool_count(folder: Path | None = None) -> int:
    return sum(1 for _ in (folder or spool_dir()).glob(f"*{SUFFIX}"))


def spool_waiting() -> bool:
    """Whether any webhook waits in the spool: one directory read, no folder made (the intake
    asks on every signal)."""
    try:
        with os.scandir(Path(settings.DATA_DIR) / "spool") as entries:
            return any(entry.name.endswith(SUFFIX) for entry in entries)
    except FileNotFoundError:
        return False


def spool_files() -> list[Path]:
    """Waiting files, oldest first."""
    return sorted(spool_dir().glob(f"*{SUFFIX}"))


def spool_read(path: Path) -> SpooledWebhook:
    record: dict[str, Any] = json.loads(path.read_bytes())
    return SpooledWebhook(
        webhook_id=UUID(record["webhook_id"]),
        raw_body=base64.b64decode(record["body"]),
        source_ip=record.get("source_ip"),
        idempotency_header=record.get("idempotency_header"),
        received_at=str(record.get("received_at") or ""),
        verified=bool(record.get("verified")),
    )


@contextlib.contextmanager
def spool_claim(path: Path) -> Iterator[bool]:
    """Hold an exclusive lock on ``path``; yields False when another process holds it or the
    file is already gone (done by someone else)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        # Another process may have finished and unlinked it between our listing and the lock.
        yield path.exists()
    finally:
        os.close(fd)


def spool_done(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    _fsync_dir(path.parent)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
