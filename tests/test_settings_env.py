"""Settings refuse a boolean or number they cannot read instead of guessing (quanttrade/settings.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from quanttrade.settings import StrictEnv
from tests.embedded import run_embedded

ROOT = Path(__file__).resolve().parent.parent
PRINT = "import django; django.setup(); from django.conf import settings as s; print({!r}.format(s))"


def start(tmp_path: Path, show: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh embedded-mode process, as the server does at start."""
    return run_embedded(tmp_path, PRINT.format(show), **variables)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SESSION_COOKIE_SECURE", "treu", "SESSION_COOKIE_SECURE must be true or false, got 'treu'"),
        ("ORDER_MAX_ATTEMPTS", "five", "ORDER_MAX_ATTEMPTS must be a whole number, got 'five'"),
        ("PAPER_MATCH_INTERVAL_SECONDS", "1s", "PAPER_MATCH_INTERVAL_SECONDS must be a number, got '1s'"),
        (
            "ORDER_FANOUT_TASKS",
            "0",
            "ORDER_FANOUT_TASKS must be \"auto\" or a whole number of at least 1, got '0'",
        ),
        ("WEBHOOK_THREADS", "0", "WEBHOOK_THREADS must be a whole number of at least 1, got '0'"),
        ("EMBEDDED_ORDER_TURNS", "0", "EMBEDDED_ORDER_TURNS must be a whole number of at least 1, got '0'"),
        (
            "EMBEDDED_ORDER_TURNS",
            "all",
            "EMBEDDED_ORDER_TURNS must be a whole number of at least 1, got 'all'",
        ),
    ],
)
def test_an_unreadable_value_stops_the_start_naming_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    result = start(tmp_path, "{0.DEBUG}", **{variable: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_readable_values_still_start(tmp_path: Path) -> None:
    result = start(
        tmp_path,
        "{0.SESSION_COOKIE_SECURE} {0.CSRF_COOKIE_SECURE} {0.ORDER_MAX_ATTEMPTS} {0.PAPER_MATCH_INTERVAL_SECONDS}"
        " {0.ORDER_FANOUT_TASKS} {0.WEBHOOK_THREADS} {0.EMBEDDED_ORDER_TURNS}",
        SESSION_COOKIE_SECURE="Yes",
        ORDER_MAX_ATTEMPTS=" 7 ",
        PAPER_MATCH_INTERVAL_SECONDS="0.5",
        ORDER_FANOUT_TASKS=" 16 ",
        WEBHOOK_THREADS="4",
        EMBEDDED_ORDER_TURNS=" 2 ",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "7", "0.5", "16", "4", "2"]
    defaults = start(tmp_path, "{0.EMBEDDED_ORDER_TURNS} {0.EMBEDDED_WORKER_CONCURRENCY}")
    assert defaults.returncode == 0, defaults.stderr
    assert defaults.stdout.split() == ["1", "4"]  # one order at a time; the Celery worker's four
    auto = start(tmp_path, "{0.ORDER_FANOUT_TASKS}", ORDER_FANOUT_TASKS="Auto")
    assert auto.returncode == 0, auto.stderr
    assert auto.stdout.split() == ["None"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[(word, True) for word in ("true", "TRUE", "1", "yes", "Yes", "on", " On ")],
        *[(word, False) for word in ("false", "False", "0", "no", "NO", "off")],
    ],
)
def test_booleans_accept_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("QT_TEST_FLAG", raw)
    assert StrictEnv().bool("QT_TEST_FLAG", default=not expected) is expected


@pytest.mark.parametrize("raw", ["treu", "", "y", "ok", "2", "enabled"])
def test_booleans_refuse_anything_else(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("QT_TEST_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=f"QT_TEST_FLAG must be true or false, got {raw!r}"):
        StrictEnv().bool("QT_TEST_FLAG", default=False)


@pytest.mark.parametrize(
    ("kind", "raw"), [("int", "1.5"), ("int", ""), ("int", "ten"), ("float", "nan"), ("float", "inf")]
)
def test_numbers_refuse_what_is_not_one(monkeypatch: pytest.MonkeyPatch, kind: str, raw: str) -> None:
    monkeypatch.setenv("QT_TEST_NUMBER", raw)
    with pytest.raises(ImproperlyConfigured, match="QT_TEST_NUMBER must be"):
        getattr(StrictEnv(), kind)("QT_TEST_NUMBER", default=1)


def test_unset_variables_keep_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QT_TEST_UNSET", raising=False)
    env = StrictEnv()
    assert (env.bool("QT_TEST_UNSET", default=True), env.int("QT_TEST_UNSET", default=3)) == (True, 3)
    assert env.float("QT_TEST_UNSET", default=1.5) == 1.5
    with pytest.raises(ImproperlyConfigured, match="Set the QT_TEST_UNSET environment variable"):
        env.int("QT_TEST_UNSET")


def test_the_fan_out_tasks_are_auto_unless_a_number_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from quanttrade.settings import _fanout_tasks

    def read() -> Any:
        return StrictEnv().strict("QT_TEST_TASKS", None, _fanout_tasks, "auto or a number")

    monkeypatch.delenv("QT_TEST_TASKS", raising=False)
    assert read() is None  # unset: auto
    for raw, expected in (("auto", None), (" AUTO ", None), ("16", 16), ("1", 1)):
        monkeypatch.setenv("QT_TEST_TASKS", raw)
        assert read() == expected
    for raw in ("0", "-4", "many", "", "8.5"):
        monkeypatch.setenv("QT_TEST_TASKS", raw)
        with pytest.raises(ImproperlyConfigured, match="QT_TEST_TASKS must be auto or a number"):
            read()
