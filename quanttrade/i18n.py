"""Compile the gettext catalogs (.po -> .mo) when they are missing or stale.

The .mo files are build output and stay out of git; compiling them here with polib means a
fresh clone needs no system gettext tools and can never run with an outdated catalog.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import polib


def compile_catalogs(locale_paths: Iterable[Path]) -> list[Path]:
    """Compile every stale catalog under ``locale_paths``; returns the .mo files written.

    Called from settings, before Django loads any app: a catalog Django loads before its .mo
    exists stays English for the life of the process."""
    written: list[Path] = []
    for root in locale_paths:
        for po_path in Path(root).glob("*/LC_MESSAGES/*.po"):
            mo_path = po_path.with_suffix(".mo")
            if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            # A private temporary name: several processes may compile at the same moment.
            tmp = mo_path.with_name(f"{mo_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            polib.pofile(str(po_path)).save_as_mofile(str(tmp))
            tmp.replace(mo_path)
            written.append(mo_path)
    return written
