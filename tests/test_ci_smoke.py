"""The documentation that CI and newcomers rely on stays in sync with the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# env.str("NAME", …), env.db_url("NAME"), … and _secret("NAME", …) in settings.py.
ENV_READ = re.compile(r'(?:\benv\.\w+|\b_secret)\(\s*"([A-Z][A-Z0-9_]*)"')


def settings_variables() -> set[str]:
    return set(ENV_READ.findall((ROOT / "quanttrade" / "settings.py").read_text(encoding="utf-8")))


def test_settings_reads_the_variables_this_test_knows_how_to_find() -> None:
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"} <= settings_variables()


def test_readme_configuration_table_lists_every_variable_settings_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"`([A-Z][A-Z0-9_]*)`", table))
    assert sorted(settings_variables() - rows) == []


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = re.search(r'^TEST_CMD="([^"]+)"', ci, flags=re.MULTILINE)
    assert command is not None
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    test_section = readme.split("## Test it", 1)[1]
    assert f"```bash\n{command.group(1)}\n```" in test_section
