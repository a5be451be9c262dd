"""User-facing messages are Korean by default (SPEC): every message the product code marks for
translation has a Korean translation in one of the catalogs under locale/."""

from __future__ import annotations

import ast
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("quanttrade", "live", "notify", "prices", "strategies", "orders", "webhooks", "feeds")
GETTEXT = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy", "ngettext", "ngettext_lazy"}


def _marked_messages() -> dict[str, str]:
    """msgid -> where it is first marked, for every literal passed to a gettext function."""
    found: dict[str, str] = {}
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name not in GETTEXT:
                    continue
                arg = node.args[1] if name.startswith("pgettext") else node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def _korean_catalog() -> dict[str, str]:
    translated: dict[str, str] = {}
    for po_path in sorted((ROOT / "locale").glob("*/ko/LC_MESSAGES/*.po")):
        for entry in polib.pofile(str(po_path)):
            if entry.msgstr or entry.msgstr_plural:
                translated[entry.msgid] = entry.msgstr
    return translated


def test_every_marked_message_has_a_korean_translation() -> None:
    catalog = _korean_catalog()
    missing = {msgid: where for msgid, where in _marked_messages().items() if msgid not in catalog}
    assert not missing, "\n".join(f"{where}: {msgid!r}" for msgid, where in sorted(missing.items()))


def test_a_message_reads_the_same_in_every_catalog() -> None:
    """Catalogs are kept per area; one English message must not get two Korean wordings (which
    one Django picks depends on the order the catalogs load)."""
    seen: dict[tuple[str | None, str], dict[str, str]] = {}
    for po_path in sorted((ROOT / "locale").glob("*/ko/LC_MESSAGES/*.po")):
        for entry in polib.pofile(str(po_path)):
            if entry.msgstr and not entry.obsolete:
                seen.setdefault((entry.msgctxt, entry.msgid), {})[po_path.parts[-4]] = entry.msgstr
    differing = {key: where for key, where in seen.items() if len(set(where.values())) > 1}
    assert not differing, differing
