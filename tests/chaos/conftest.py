"""Print the chaos figures (webhooks sent, 5xx, lost, duplicated, slowest answer...) at the end."""

from __future__ import annotations

import pytest

from tests.chaos.harness import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("chaos figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
