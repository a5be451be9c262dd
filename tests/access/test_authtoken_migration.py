"""Keys of rest_framework.authtoken (plain text) are hashed into ApiToken by
access/migrations/0002 and keep authenticating; the plain keys are deleted."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

BEFORE = [("access", "0001_initial")]
OLD_KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"  # authtoken's format: 40 hex characters


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_an_old_plain_authtoken_key_still_authenticates_after_the_migration(make_strategy: object) -> None:
    _migrate(BEFORE)
    staff = User.objects.create_user("bot-owner", password="x", is_staff=True)
    with connection.cursor() as cursor:
        # The table rest_framework.authtoken left behind (the app is no longer installed).
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, "created" timestamp NOT NULL, '
            '"user_id" integer NOT NULL)'
        )
        cursor.execute(
            'INSERT INTO authtoken_token ("key", "created", "user_id") VALUES (%s, %s, %s)',
            [OLD_KEY, dt.datetime(2025, 1, 2, 3, 4, 5), staff.pk],
        )
    try:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

        from access.models import ApiToken

        token = ApiToken.objects.get(user=staff)
        assert token.prefix == OLD_KEY[:12] and OLD_KEY not in token.digest
        assert token.created_at == dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM authtoken_token")
            assert cursor.fetchone()[0] == 0

        make_strategy()
        body = {"group_name": "my_strategy", "token": "test-token", "order_type": "CANCEL_ALL_ORDER"}
        client = Client()
        accepted = client.post("/api/webhook", data=json.dumps(body), content_type="application/json")
        url = f"/api/webhooks/{accepted.json()['webhook_id']}"
        assert client.get(url, HTTP_AUTHORIZATION=f"Token {OLD_KEY}").status_code == 200
        assert client.get(url, HTTP_AUTHORIZATION=f"Token {OLD_KEY[:-1]}0").status_code == 401
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE authtoken_token")
