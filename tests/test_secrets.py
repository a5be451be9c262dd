"""Secrets at rest and in the admin: encrypted columns, key rotation, masking, write-only forms."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from quanttrade.logging import redact
from strategies.models import Account, Strategy

pytestmark = pytest.mark.django_db


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_credentials_and_tokens_are_encrypted_at_rest() -> None:
    account = Account.objects.create(
        name="bn", exchange="binance", api_key="AKIA-plain-key", api_secret="s3cr3t-value"
    )
    strategy = Strategy.objects.create(group_name="s", market_type="SPOT", token="tok-plain")
    assert "AKIA-plain-key" not in raw("strategies_account", "api_key", account.pk)
    assert "s3cr3t-value" not in raw("strategies_account", "api_secret", account.pk)
    assert "tok-plain" not in raw("strategies_strategy", "token", strategy.pk)
    fresh = Account.objects.get(pk=account.pk)
    assert fresh.api_key == "AKIA-plain-key" and fresh.exchange == "BINANCE"
    assert Strategy.objects.get(pk=strategy.pk).token_matches("tok-plain")


def test_blank_token_is_generated_and_regenerated() -> None:
    strategy = Strategy.objects.create(group_name="s", market_type="SPOT")
    first = strategy.token
    assert len(first) >= 32
    assert strategy.regenerate_token() != first
    assert not Strategy.objects.get(pk=strategy.pk).token_matches(first)


def test_key_rotation_keeps_secrets_readable(settings: Any) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    account = Account.objects.create(name="bn", exchange="BINANCE", api_key="key-1")
    before = raw("strategies_account", "api_key", account.pk)
    new_key = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key, old_key]):
        call_command("rotate_credentials")
        after = raw("strategies_account", "api_key", account.pk)
        assert after != before
        assert Account.objects.get(pk=account.pk).api_key == "key-1"
    with override_settings(FIELD_ENCRYPTION_KEYS=[new_key]):
        assert Account.objects.get(pk=account.pk).api_key == "key-1"


def test_admin_masks_credentials_and_never_renders_them(admin_client: Client) -> None:
    account = Account.objects.create(
        name="bn", exchange="BINANCE", api_key="AKIA1234567890WXYZ", api_secret="topsecretvalue99"
    )
    listing = admin_client.get("/admin/strategies/account/").content.decode()
    assert "AKIA1234567890WXYZ" not in listing and "WXYZ" in listing
    page = admin_client.get(f"/admin/strategies/account/{account.pk}/change/").content.decode()
    assert "AKIA1234567890WXYZ" not in page and "topsecretvalue99" not in page


def test_admin_blank_credential_keeps_the_stored_one(admin_client: Client) -> None:
    account = Account.objects.create(
        name="bn", exchange="BINANCE", api_key="keep-me-1234", api_secret="old-secret"
    )
    response = admin_client.post(
        f"/admin/strategies/account/{account.pk}/change/",
        {
            "name": "bn",
            "exchange": "BINANCE",
            "is_active": "on",
            "settings": "{}",
            "api_key": "",
            "api_secret": "new-secret",
            "passphrase": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.api_key == "keep-me-1234" and account.api_secret == "new-secret"


def test_admin_strategy_page_shows_webhook_url_and_sample(admin_client: Client, make_strategy: Any) -> None:
    strategy = make_strategy(group_name="kospi", market_type="DOMESTIC_STOCK")
    page = admin_client.get(f"/admin/strategies/strategy/{strategy.pk}/change/").content.decode()
    assert "/api/webhook" in page and "005930" in page and "{{strategy.order.action}}" in page


def test_admin_regenerate_token_action(admin_client: Client, make_strategy: Any) -> None:
    strategy = make_strategy()
    admin_client.post(
        "/admin/strategies/strategy/", {"action": "regenerate_tokens", "_selected_action": [strategy.pk]}
    )
    assert not Strategy.objects.get(pk=strategy.pk).token_matches("test-token")


@pytest.mark.parametrize(
    "line",
    [
        "{'group_name': 'x', 'token': 'abc123'}",
        '{"token": "abc123", "symbol": "BTC/USDT"}',
        "api_secret=abc123 other",
        "Authorization: Bearer abc123",
    ],
)
def test_log_redaction(line: str) -> None:
    assert "abc123" not in redact(line)


def test_a_record_is_redacted_once_and_every_handler_writes_it_redacted() -> None:
    import io
    import logging

    from quanttrade.logging import RedactSecretsFilter

    searched: list[str] = []

    def counting_redact(text: str) -> str:
        searched.append(text)
        return redact(text)

    streams = [io.StringIO(), io.StringIO()]
    logger = logging.getLogger("quanttrade.test-redaction")
    logger.propagate, logger.level = False, logging.INFO
    handlers = [logging.StreamHandler(stream) for stream in streams]
    for handler in handlers:
        handler.addFilter(RedactSecretsFilter())
        logger.addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("quanttrade.logging.redact", counting_redact)
            logger.info("payload %s", {"token": "abc123", "symbol": "BTC/USDT"})
            logger.info("plain %s", "no secret here")
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    assert len(searched) == 2  # one search a record, not one a handler
    for stream in streams:
        text = stream.getvalue()
        assert "abc123" not in text and "'token': '***'" in text and "plain no secret here" in text
