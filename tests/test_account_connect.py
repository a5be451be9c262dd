"""Connecting an account: the exchange is a choice, per-venue fields read and write settings,
what a venue needs is refused at save when missing, and a strategy page links an account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from strategies.models import Account, StrategyAccount, validate_exchange

pytestmark = pytest.mark.django_db

ADD = "/admin/strategies/account/add/"


@pytest.fixture
def admin_page(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.com", "pw"))
    return client


def form(**fields: Any) -> dict[str, Any]:
    return {
        "name": "acct",
        "exchange": "PAPER",
        "is_active": "on",
        "api_key": "",
        "api_secret": "",
        "passphrase": "",
        "account_number": "",
        "leverage": "",
        "margin_mode": "",
        "api_base_url": "",
        "settings": "{}",
        **fields,
    }


def errors_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form was accepted"
    return {name: list(errs) for name, errs in response.context["adminform"].form.errors.items()}


@pytest.mark.parametrize("code", ["PAPER", "BINANCE", "kiwoom", " okx ", "KRAKEN", "coinbase"])
def test_known_exchange_codes_are_valid(code: str) -> None:
    validate_exchange(code)


@pytest.mark.parametrize("code", ["BINANNCE", "KIS2", "", "paper trading"])
def test_a_typo_in_the_exchange_is_refused(code: str) -> None:
    with pytest.raises(ValidationError, match="알 수 없는 거래소"):
        validate_exchange(code)


def test_the_model_refuses_a_typo_and_missing_credentials_at_full_clean() -> None:
    with pytest.raises(ValidationError) as typo:
        Account(name="x", exchange="BINANNCE").full_clean()
    assert "exchange" in typo.value.message_dict
    with pytest.raises(ValidationError) as missing:
        Account(name="y", exchange="OKX", api_key="k", api_secret="s").full_clean()
    assert set(missing.value.message_dict) == {"passphrase"}
    Account(name="z", exchange="paper").full_clean()  # the paper venue needs nothing


def test_the_exchange_is_a_select_of_our_venues_and_ccxt_ids(admin_page: Client) -> None:
    body = admin_page.get(ADD).content.decode()
    assert '<select name="exchange"' in body
    assert '<option value="KIWOOM">' in body and '<option value="KRAKEN">' in body
    assert "qt/account_form.js" in body


def test_a_typo_in_the_exchange_cannot_be_saved(admin_page: Client) -> None:
    response = admin_page.post(ADD, form(exchange="BINANNCE"))
    assert "exchange" in errors_of(response)
    assert not Account.objects.exists()


def test_a_live_venue_without_key_and_secret_is_refused_with_a_clear_message(admin_page: Client) -> None:
    errors = errors_of(admin_page.post(ADD, form(exchange="BINANCE")))
    assert errors["api_key"] == ["BINANCE 계좌에는 API 키이(가) 필요합니다"]
    assert errors["api_secret"] == ["BINANCE 계좌에는 API 시크릿이(가) 필요합니다"]
    errors = errors_of(admin_page.post(ADD, form(exchange="BITGET", api_key="k", api_secret="s")))
    assert list(errors) == ["passphrase"]
    assert not Account.objects.exists()


@pytest.mark.parametrize("number", ["", "1234567", "1234-567801", "123456789", "12345678-1", "abcdefgh-01"])
def test_a_kis_account_number_must_be_8_and_2_digits(admin_page: Client, number: str) -> None:
    errors = errors_of(
        admin_page.post(ADD, form(exchange="KIS", api_key="app", api_secret="sec", account_number=number))
    )
    assert errors == {"account_number": ["계좌번호: 8자리 숫자와 2자리 상품코드 (예: 12345678-01)"]}


def test_a_kis_account_is_saved_with_its_fields_in_settings(admin_page: Client) -> None:
    response = admin_page.post(
        ADD,
        form(
            name="kis-virtual",
            exchange="KIS",
            api_key="app-key-123456",
            api_secret="app-secret-123456",
            account_number="12345678-01",
            is_testnet="on",
            settings='{"timeout_seconds": 5, "account_number": "ignored", "product_code": "03"}',
        ),
    )
    assert response.status_code == 302, errors_of(response)
    account = Account.objects.get(name="kis-virtual")
    assert account.exchange == "KIS" and account.is_testnet
    assert account.api_key == "app-key-123456" and account.api_secret == "app-secret-123456"
    # The field wins over the JSON box; product_code comes from the number (the box's is dropped).
    assert account.settings == {"timeout_seconds": 5, "account_number": "12345678-01"}


def test_kiwoom_needs_no_account_number_but_refuses_a_wrong_one(admin_page: Client) -> None:
    ok = admin_page.post(ADD, form(name="kw", exchange="KIWOOM", api_key="a", api_secret="s"))
    assert ok.status_code == 302
    errors = errors_of(
        admin_page.post(
            ADD, form(name="kw2", exchange="KIWOOM", api_key="a", api_secret="s", account_number="12")
        )
    )
    assert list(errors) == ["account_number"]


def test_crypto_futures_fields_and_advanced_settings_round_trip(admin_page: Client) -> None:
    response = admin_page.post(
        ADD,
        form(
            name="okx-1",
            exchange="OKX",
            api_key="key-abcdefgh1234",
            api_secret="S3CR3T-VALUE",
            passphrase="PASS-PHRASE-X",
            leverage="5",
            margin_mode="isolated",
            api_base_url="http://127.0.0.1:8123",
            settings='{"timeout_seconds": 3}',
        ),
    )
    assert response.status_code == 302, errors_of(response)
    account = Account.objects.get(name="okx-1")
    assert account.settings == {
        "timeout_seconds": 3,
        "leverage": 5,
        "margin_mode": "isolated",
        "api_base_url": "http://127.0.0.1:8123",
    }
    # The change page shows each value in its own field, the rest in the JSON box, no secret.
    page = admin_page.get(f"/admin/strategies/account/{account.pk}/change/").content.decode()
    assert 'name="leverage" value="5"' in page and 'value="http://127.0.0.1:8123"' in page
    assert "S3CR3T-VALUE" not in page and "PASS-PHRASE-X" not in page
    assert '<option value="isolated" selected>' in page
    assert "1234" in page and "key-abcdefgh1234" not in page  # masked
    assert 'id="account-check"' in page and f"/accounts/{account.pk}/check/" in page


def test_an_edit_keeps_stored_credentials_and_other_settings(admin_page: Client) -> None:
    account = Account.objects.create(
        name="bn",
        exchange="BINANCE",
        api_key="stored-key",
        api_secret="stored-secret",
        settings={"account_number": "x", "leverage": 3, "ccxt_options": {"a": 1}},
    )
    response = admin_page.post(
        f"/admin/strategies/account/{account.pk}/change/",
        form(name="bn", exchange="BINANCE", leverage="3", settings='{"ccxt_options": {"a": 1}}'),
    )
    assert response.status_code == 302, errors_of(response)
    account.refresh_from_db()
    assert account.api_key == "stored-key" and account.api_secret == "stored-secret"
    assert account.settings == {"ccxt_options": {"a": 1}, "leverage": 3}


def test_a_legacy_kis_number_without_its_product_code_is_shown_whole(admin_page: Client) -> None:
    account = Account.objects.create(
        name="kis-old",
        exchange="KIS",
        api_key="a",
        api_secret="s",
        settings={"account_number": "12345678", "product_code": "03"},
    )
    page = admin_page.get(f"/admin/strategies/account/{account.pk}/change/").content.decode()
    assert 'value="12345678-03"' in page


def test_the_account_list_shows_the_connection_result(admin_page: Client) -> None:
    from django.utils import timezone

    Account.objects.create(name="never", exchange="PAPER")
    Account.objects.create(
        name="broken",
        exchange="PAPER",
        connection_ok=False,
        connection_message="API 키가 거부되었습니다",
        connection_checked_at=timezone.now(),
    )
    body = admin_page.get("/admin/strategies/account/").content.decode()
    assert "qt-conn-none" in body and "qt-conn-fail" in body and 'title="API 키가 거부되었습니다"' in body


# --- linking from the strategy page ---------------------------------------------------------


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_user("ops", "o@example.com", "pw", is_staff=True))
    return client


def test_a_strategy_page_links_an_existing_account(
    staff_client: Client, make_strategy: Callable[..., Any], make_account: Callable[..., Account]
) -> None:
    strategy = make_strategy(group_name="s1", market_type="SPOT")
    extra = make_account(name="paper-extra")
    page = staff_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert f'<option value="{extra.pk}">paper-extra (PAPER)</option>' in page
    assert "s1-paper (PAPER)</option>" not in page  # already linked: not offered
    response = staff_client.post(f"/strategies/{strategy.pk}/accounts/", {"account": extra.pk}, follow=True)
    assert response.redirect_chain[-1][0] == f"/strategies/{strategy.pk}/"
    assert StrategyAccount.objects.filter(strategy=strategy, account=extra, is_active=True).exists()
    assert "paper-extra 계좌를 연결했습니다" in response.content.decode()


def test_an_incompatible_account_is_refused_with_the_admins_reason(
    staff_client: Client, make_strategy: Callable[..., Any], make_account: Callable[..., Account]
) -> None:
    strategy = make_strategy(group_name="s2", market_type="SPOT")
    kis = make_account(name="kis-x", exchange="KIS", api_key="a", api_secret="s")
    response = staff_client.post(f"/strategies/{strategy.pk}/accounts/", {"account": kis.pk}, follow=True)
    body = response.content.decode()
    assert "kis-x 계좌를 연결하지 못했습니다: 한투 계좌는 주식과 선물옵션만 거래합니다" in body, body
    assert not StrategyAccount.objects.filter(strategy=strategy, account=kis).exists()
    linked = strategy.accounts.get()
    again = staff_client.post(f"/strategies/{strategy.pk}/accounts/", {"account": linked.pk}, follow=True)
    assert "계좌를 연결하지 못했습니다" in again.content.decode()
    assert StrategyAccount.objects.filter(strategy=strategy).count() == 1
    bad = staff_client.post(f"/strategies/{strategy.pk}/accounts/", {"account": "x"}, follow=True)
    assert "연결할 계좌를 선택하세요" in bad.content.decode()


def test_linking_is_staff_only_and_post_only(
    client: Client, make_strategy: Callable[..., Any], make_account: Callable[..., Account]
) -> None:
    strategy = make_strategy(group_name="s3")
    extra = make_account(name="p3")
    url = f"/strategies/{strategy.pk}/accounts/"
    assert client.post(url, {"account": extra.pk}).status_code == 302  # to login
    client.force_login(get_user_model().objects.create_user("viewer", "v@example.com", "pw"))
    assert client.post(url, {"account": extra.pk}).status_code == 403
    client.force_login(get_user_model().objects.create_user("ops2", "o2@example.com", "pw", is_staff=True))
    assert client.get(url).status_code == 405
    assert not StrategyAccount.objects.filter(account=extra).exists()


def test_testnet_is_refused_where_the_venue_has_none(admin_page: Client) -> None:
    upbit = form(name="up", exchange="UPBIT", api_key="a", api_secret="s", is_testnet="on")
    assert list(errors_of(admin_page.post(ADD, upbit))) == ["is_testnet"]
    binance = form(name="bn-test", exchange="BINANCE", api_key="a", api_secret="s", is_testnet="on")
    assert admin_page.post(ADD, binance).status_code == 302
    assert Account.objects.get(name="bn-test").is_testnet


def test_a_changed_credential_clears_the_stored_connection_result(admin_page: Client) -> None:
    from django.utils import timezone

    account = Account.objects.create(
        name="bn2",
        exchange="BINANCE",
        api_key="k",
        api_secret="s",
        settings={"leverage": 2},
        connection_ok=True,
        connection_message="연결 성공",
        connection_checked_at=timezone.now(),
    )
    url = f"/admin/strategies/account/{account.pk}/change/"
    same = form(name="bn2", exchange="BINANCE", leverage="2", is_active="on")
    assert admin_page.post(url, same).status_code == 302
    assert Account.objects.get(pk=account.pk).connection_ok is True  # nothing it tested changed
    assert admin_page.post(url, {**same, "api_key": "new-key"}).status_code == 302
    stored = Account.objects.get(pk=account.pk)
    assert (
        stored.connection_ok is None and stored.connection_checked_at is None and stored.api_key == "new-key"
    )


def test_the_strategy_page_offers_incompatible_accounts_disabled_with_the_reason(
    staff_client: Client, make_strategy: Callable[..., Any], make_account: Callable[..., Account]
) -> None:
    strategy = make_strategy(group_name="s4", market_type="SPOT")
    kis = make_account(name="kis-y", exchange="KIS", api_key="a", api_secret="s")
    page = staff_client.get(f"/strategies/{strategy.pk}/").content.decode()
    assert f'<option value="{kis.pk}" disabled title="한투 계좌는 주식과 선물옵션만 거래합니다' in page
