"""Failed logins are throttled per username + client address (django-axes, settings.AXES_*)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.access.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def attempt(client: Client, username: str, password: str, path: str = "/accounts/login/") -> Any:
    return client.post(path, {"username": username, "password": password})


def test_the_sixth_wrong_password_is_locked_out_and_so_is_the_right_one(staff: User) -> None:
    client = Client()
    for _ in range(4):
        assert attempt(client, "ops", "wrong").status_code == 200  # the form, with its error
    assert attempt(client, "ops", "wrong").status_code == 429  # the 5th failure locks
    sixth = attempt(client, "ops", "wrong")
    assert sixth.status_code == 429
    assert "로그인에 5번 실패했습니다. 15분 후에 다시 시도하세요" in sixth.content.decode()
    assert attempt(client, "ops", PASSWORD).status_code == 429
    assert client.get("/").status_code == 302


def test_the_lockout_page_is_english_on_request(staff: User) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    for _ in range(5):
        attempt(client, "ops", "wrong")
    page = attempt(client, "ops", PASSWORD).content.decode()
    assert "Too many failed logins" in page and "Try again in 15 minutes" in page


def test_the_lock_is_per_username_and_address_and_ends_after_the_cool_off(
    staff: User, frozen_clock: Any
) -> None:
    User.objects.create_user("other", password=PASSWORD, is_staff=True)
    client = Client()
    for _ in range(5):
        attempt(client, "ops", "wrong")
    assert attempt(client, "other", PASSWORD).status_code == 302  # another user is not locked
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert attempt(elsewhere, "ops", PASSWORD).status_code == 302  # nor the user from elsewhere
    frozen_clock.shift(dt.timedelta(minutes=16))
    assert attempt(client, "ops", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled(staff: User) -> None:
    client = Client()
    for _ in range(5):
        attempt(client, "ops", "wrong", path="/admin/login/")
    assert attempt(client, "ops", PASSWORD, path="/admin/login/").status_code == 429


def test_wrong_codes_count_as_failed_logins(device: TOTPDevice, frozen_clock: Any) -> None:
    client = Client()
    assert attempt(client, "ops", PASSWORD)["Location"] == "/accounts/login/otp/"
    statuses = []
    for _ in range(6):
        frozen_clock.shift(dt.timedelta(seconds=20))  # past django-otp's own wait after a failure
        statuses.append(client.post("/accounts/login/otp/", {"code": "000000"}).status_code)
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert attempt(client, "ops", PASSWORD).status_code == 429
