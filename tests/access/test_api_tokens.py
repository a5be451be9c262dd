"""API tokens: `Authorization: Token <key>` as before, the key stored only as a digest."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core import serializers
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from access.models import ApiToken
from access.services import api_token_create

pytestmark = pytest.mark.django_db


def webhook_id(make_strategy: Any) -> str:
    make_strategy()
    body = {"group_name": "my_strategy", "token": "test-token", "order_type": "CANCEL_ALL_ORDER"}
    return (
        Client()
        .post("/api/webhook", data=json.dumps(body), content_type="application/json")
        .json()["webhook_id"]
    )


def test_an_api_token_reads_results_and_records_its_last_use(staff: User, make_strategy: Any) -> None:
    token, key = api_token_create(staff, "bot")
    url = f"/api/webhooks/{webhook_id(make_strategy)}"
    assert token.last_used_at is None
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at == timezone.now()


@pytest.mark.parametrize("header", ["Token wrong", "Token qt_" + "x" * 43, "Token", "Token a b"])
def test_a_wrong_token_is_refused_with_401(staff: User, make_strategy: Any, header: str) -> None:
    api_token_create(staff)
    response = Client().get(f"/api/webhooks/{webhook_id(make_strategy)}", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


def test_a_token_of_a_non_staff_user_is_403(db: None, make_strategy: Any) -> None:
    key = api_token_create(User.objects.create_user("viewer", password="x"))[1]
    response = Client().get(f"/api/webhooks/{webhook_id(make_strategy)}", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 403


def test_the_key_is_stored_nowhere_in_the_database(staff: User) -> None:
    token, key = api_token_create(staff)
    assert key.startswith("qt_") and len(key) >= 43 and token.prefix == key[:12]
    dump = "".join(serializers.serialize("json", model.objects.all()) for model in apps.get_models())
    assert token.digest in dump and key not in dump and key[12:] not in dump


def test_create_api_token_prints_a_working_key_once(staff: User, make_strategy: Any) -> None:
    out = io.StringIO()
    call_command("create_api_token", "ops", "--name", "grafana", stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    assert ApiToken.objects.get(user=staff).name == "grafana"
    url = f"/api/webhooks/{webhook_id(make_strategy)}"
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_the_admin_shows_a_new_key_once(superuser: User) -> None:
    client = Client()
    client.force_login(superuser)
    response = client.post("/admin/access/apitoken/add/", {"user": superuser.pk, "name": "bot"}, follow=True)
    token = ApiToken.objects.get()
    [key] = [word for m in response.context["messages"] for word in str(m).split() if word.startswith("qt_")]
    assert key.startswith(token.prefix) and token.name == "bot"
    assert key not in client.get(f"/admin/access/apitoken/{token.pk}/change/").content.decode()
