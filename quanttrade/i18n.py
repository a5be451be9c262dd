"""Compile the gettext catalogs (.po -> .mo) when they are missing or stale.

The .mo files are build output and stay out of git; compiling them here with polib means a
fresh clone needs no system gettext tools and can never run with an outdated catalog.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import polib
from django.conf import settings


def compile_catalogs() -> list[Path]:
    """Compile every stale catalog under LOCALE_PATHS; returns the .mo files written."""
    written: list[Path] = []
    for root in settings.LOCALE_PATHS:
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
