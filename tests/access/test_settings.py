"""OTP_REQUIRED_FOR_SUPERUSERS: on outside embedded mode, off in it, strict when set."""

from __future__ import annotations

from pathlib import Path

from tests.test_settings_env import start

SHOW = "{0.OTP_REQUIRED_FOR_SUPERUSERS} {0.AXES_FAILURE_LIMIT} {0.AXES_COOLOFF_TIME}"


def test_embedded_mode_does_not_require_totp_for_superusers(tmp_path: Path) -> None:
    result = start(tmp_path, SHOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "5", "0:15:00"]


def test_distributed_mode_requires_totp_for_superusers_unless_told_not_to(tmp_path: Path) -> None:
    distributed = {"REDIS_URL": "redis://127.0.0.1:1/0", "QT_ALLOW_LOCAL_SECRETS": "1"}
    assert start(tmp_path, SHOW, **distributed).stdout.split()[0] == "True"
    off = start(tmp_path, SHOW, OTP_REQUIRED_FOR_SUPERUSERS="off", LOGIN_LOCKOUT_MINUTES="30", **distributed)
    assert off.stdout.split() == ["False", "5", "0:30:00"]


def test_an_unreadable_value_stops_the_start(tmp_path: Path) -> None:
    result = start(tmp_path, SHOW, OTP_REQUIRED_FOR_SUPERUSERS="maybe")
    assert result.returncode != 0
    assert "OTP_REQUIRED_FOR_SUPERUSERS must be true or false, got 'maybe'" in result.stderr
