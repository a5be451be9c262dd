"""Two-factor login for staff: the page login and the admin login (access/views.py)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.access.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def password_step(client: Client, username: str, path: str = "/accounts/login/", **extra: str) -> Any:
    return client.post(path, {"username": username, "password": PASSWORD, **extra})


def logged_in(client: Client) -> bool:
    return client.get("/").status_code == 200


def test_superuser_without_device_is_sent_to_enrolment_when_required(
    superuser: User, settings: Any, code_for: Callable[[TOTPDevice], str], frozen_clock: Any
) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    client = Client()
    response = password_step(client, "root", next="/orders/")
    assert response.status_code == 302 and response["Location"] == "/accounts/otp/enrol/"
    assert not logged_in(client)

    page = client.get("/accounts/otp/enrol/").content.decode()
    device = TOTPDevice.objects.get(user=superuser, confirmed=False)
    assert "관리자는 일회용 코드로 로그인해야 합니다" in page
    assert "otpauth://totp/QuantTrade%3Aroot?secret=" in page and "<svg" in page

    assert client.post("/accounts/otp/enrol/", {"code": "000000"}).status_code == 200
    assert not logged_in(client)
    frozen_clock.shift(dt.timedelta(seconds=2))  # django-otp waits a second after a wrong code
    confirmed = client.post("/accounts/otp/enrol/", {"code": code_for(device)})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/orders/"
    assert logged_in(client)
    assert TOTPDevice.objects.get(pk=device.pk).confirmed


def test_superuser_without_device_logs_in_with_the_password_when_not_required(
    superuser: User, settings: Any
) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False
    client = Client()
    response = password_step(client, "root")
    assert response.status_code == 302 and response["Location"] == "/"
    assert logged_in(client)


def test_staff_with_a_device_must_give_a_valid_code(
    device: TOTPDevice, settings: Any, code_for: Callable[[TOTPDevice], str], frozen_clock: Any
) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False  # a device is enough to require the code
    client = Client()
    fixed = client.session  # a session id someone could have planted before the password
    fixed.save()
    before = client.cookies["sessionid"].value
    response = password_step(client, "ops")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/otp/"
    assert client.cookies["sessionid"].value != before
    assert not logged_in(client)

    wrong = client.post("/accounts/login/otp/", {"code": "123456"})
    assert wrong.status_code == 200 and "코드가 맞지 않거나" in wrong.content.decode()
    assert not logged_in(client)

    frozen_clock.shift(dt.timedelta(seconds=2))  # django-otp waits a second after a wrong code
    right = client.post("/accounts/login/otp/", {"code": code_for(device)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert logged_in(client)


def test_the_code_step_is_english_on_request(device: TOTPDevice) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    password_step(client, "ops")
    page = client.post("/accounts/login/otp/", {"code": "123456"}).content.decode()
    assert "The code is not right" in page and "Two-factor login" in page


def test_the_admin_login_asks_for_the_code_too(
    device: TOTPDevice, code_for: Callable[[TOTPDevice], str]
) -> None:
    client = Client()
    assert client.get("/admin/").status_code == 302
    response = password_step(client, "ops", path="/admin/login/", next="/admin/")
    assert response["Location"] == "/accounts/login/otp/"
    assert client.get("/admin/").status_code == 302
    assert client.post("/accounts/login/otp/", {"code": code_for(device)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_session_of_a_device_holder_without_the_code_is_logged_out(device: TOTPDevice, staff: User) -> None:
    client = Client()
    client.force_login(staff)  # as a session from before the device, or another login path
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_code_step_needs_a_fresh_password_step(device: TOTPDevice, frozen_clock: Any) -> None:
    client = Client()
    password_step(client, "ops")
    frozen_clock.shift(dt.timedelta(minutes=6))
    assert client.get("/accounts/login/otp/")["Location"] == "/accounts/login/"


def test_staff_enrol_a_device_from_their_session(
    staff: User, code_for: Callable[[TOTPDevice], str], frozen_clock: Any
) -> None:
    client = Client()
    client.force_login(staff)
    assert "otpauth://totp/" in client.get("/accounts/otp/enrol/").content.decode()
    device = TOTPDevice.objects.get(user=staff)
    response = client.post("/accounts/otp/enrol/", {"code": code_for(device)})
    assert response.status_code == 302 and logged_in(client)  # this session is now verified

    fresh = Client()
    assert password_step(fresh, "ops")["Location"] == "/accounts/login/otp/"
    frozen_clock.shift(dt.timedelta(seconds=30))  # the next code: a code is accepted once
    assert fresh.post("/accounts/login/otp/", {"code": code_for(device)}).status_code == 302


def test_otp_reset_removes_the_devices(device: TOTPDevice, settings: Any) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False
    out = io.StringIO()
    call_command("otp_reset", "ops", stdout=out)
    assert "1개를 삭제했습니다" in out.getvalue() and not TOTPDevice.objects.exists()
    client = Client()
    assert password_step(client, "ops")["Location"] == "/"
