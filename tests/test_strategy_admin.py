"""StrategyAdmin is one instance shared by every request: a page is rendered from its own request."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Permission
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.test import RequestFactory

from strategies.models import Strategy

pytestmark = pytest.mark.django_db

TOKEN = "tok-secret-0123456789abcdef"


@pytest.fixture(autouse=True)
def _hosts(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["root.example", "staff.example"]


def _request(user: AbstractUser, host: str) -> HttpRequest:
    request = RequestFactory().get("/admin/", HTTP_HOST=host)
    request.user = user
    return request


@pytest.fixture
def superuser() -> AbstractUser:
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def staff() -> AbstractUser:
    """Staff who may edit strategies but is not a superuser: never shown the token."""
    user = get_user_model().objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_strategy", "change_strategy"]))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: no stale permission cache


def _change_page(request: HttpRequest, strategy: Strategy) -> TemplateResponse:
    """The change page, not yet rendered: the display fields run at render time."""
    response = admin.site._registry[Strategy].change_view(request, str(strategy.pk))
    assert isinstance(response, TemplateResponse) and not response.is_rendered
    return response


def test_a_staff_page_interleaved_with_a_superuser_request_does_not_show_the_token(
    make_strategy: Any, superuser: AbstractUser, staff: AbstractUser
) -> None:
    strategy = make_strategy(token=TOKEN)
    model_admin = admin.site._registry[Strategy]
    staff_page = _change_page(_request(staff, "staff.example"), strategy)
    # Another thread serves the superuser on the same admin instance before the staff page renders.
    model_admin.get_readonly_fields(_request(superuser, "root.example"), strategy)
    body = staff_page.render().content.decode()
    assert TOKEN not in body
    assert "&lt;token&gt;" in body and "http://staff.example/api/webhook" in body
    assert "root.example" not in body


def test_a_superuser_page_interleaved_with_a_staff_request_keeps_the_token(
    make_strategy: Any, superuser: AbstractUser, staff: AbstractUser
) -> None:
    strategy = make_strategy(token=TOKEN)
    model_admin = admin.site._registry[Strategy]
    root_page = _change_page(_request(superuser, "root.example"), strategy)
    model_admin.get_readonly_fields(_request(staff, "staff.example"), strategy)
    body = root_page.render().content.decode()
    assert TOKEN in body and "http://root.example/api/webhook" in body
    assert "staff.example" not in body


def test_the_webhook_fields_are_read_only_and_labelled(make_strategy: Any, superuser: AbstractUser) -> None:
    strategy = make_strategy(token=TOKEN)
    body = _change_page(_request(superuser, "root.example"), strategy).render().content.decode()
    assert 'name="masked_token"' not in body and 'name="sample"' not in body
    for css in ("field-masked_token", "field-webhook_endpoint", "field-sample", "field-tradingview_message"):
        assert css in body
    assert "웹훅 URL" in body and "샘플 페이로드" in body
