"""Fixtures for operator logins: users, TOTP devices and codes at a fixed moment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

PASSWORD = "correct-horse-42"
# TOTP codes depend on the time: every test runs at this moment, frozen.
MOMENT = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[Any]:
    with time_machine.travel(MOMENT, tick=False) as traveller:
        yield traveller


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def staff(db: None) -> User:
    return User.objects.create_user("ops", password=PASSWORD, is_staff=True)


@pytest.fixture
def device(staff: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)


@pytest.fixture
def code_for() -> Callable[[TOTPDevice], str]:
    """The code the device's authenticator app shows now (django-otp's own TOTP)."""

    def code(device: TOTPDevice) -> str:
        device.refresh_from_db()
        return f"{TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token():06d}"

    return code
