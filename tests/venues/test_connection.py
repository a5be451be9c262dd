"""The connection test (orders.connection.account_check) through the real adapters against the
venue simulators over HTTP: what passes, what fails and how plainly it says so, what is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone, translation

from notify.models import EventKind, Notification, NotificationDestination
from orders.connection import account_check, explain
from orders.exchanges.base import PermanentVenueError
from orders.exchanges.kiwoom import KiwoomAdapter
from strategies.models import Account
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim
from venuesim.kiwoom import KiwoomSim

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _korean() -> Iterator[None]:
    with translation.override("ko"):
        yield


def _stored(account: Account) -> Account:
    return Account.objects.get(pk=account.pk)


def test_a_good_binance_key_passes_and_the_result_is_stored(binance_account: Callable[..., Account]) -> None:
    account = binance_account()
    before = timezone.now()
    result = account_check(account)
    assert result.ok, result.message
    assert "연결 성공" in result.message and "USDT 10000" in result.message
    stored = _stored(account)
    assert stored.connection_ok is True and stored.connection_message == result.message
    assert (
        stored.connection_checked_at is not None and before <= stored.connection_checked_at <= timezone.now()
    )


def test_a_wrong_binance_key_fails_saying_the_key_ip_or_permission_was_refused(
    binance_account: Callable[..., Account],
) -> None:
    account = binance_account()
    Account.objects.filter(pk=account.pk).update(api_key="not-the-key")
    result = account_check(_stored(account))
    assert not result.ok
    assert "API 키가 거부되었습니다" in result.message and "허용 IP" in result.message
    assert "Invalid API-key, IP, or permissions" in result.message  # the venue's own words after it
    stored = _stored(account)
    assert stored.connection_ok is False and stored.connection_message == result.message


def test_a_failed_connection_test_is_notified_without_the_key(
    binance_account: Callable[..., Account], django_capture_on_commit_callbacks: Any
) -> None:
    destination = NotificationDestination.objects.create(
        name="ops", url="json://127.0.0.1:9/hook", events=[EventKind.CONNECTION_FAILED]
    )
    account = binance_account()
    assert account_check(_stored(account)).ok
    Account.objects.filter(pk=account.pk).update(api_key="not-the-key")
    with django_capture_on_commit_callbacks(execute=True):
        result = account_check(_stored(account))
    (queued,) = Notification.objects.filter(destination=destination)  # the passing test sent nothing
    assert queued.kind == EventKind.CONNECTION_FAILED
    assert queued.fields["account"] == account.name and queued.fields["message"] == result.message
    assert "not-the-key" not in str(queued.fields)


def test_a_wrong_binance_secret_fails_naming_the_secret(binance_account: Callable[..., Account]) -> None:
    account = binance_account()
    Account.objects.filter(pk=account.pk).update(api_secret="not-the-secret")
    result = account_check(_stored(account))
    assert not result.ok
    assert "API 시크릿이 틀렸습니다" in result.message and "Signature" in result.message


def test_a_key_without_futures_permission_is_named_when_a_futures_strategy_uses_the_account(
    binance_account: Callable[..., Account], binance_sim: BinanceSim, make_strategy: Callable[..., Any]
) -> None:
    account = binance_account()
    make_strategy(group_name="spot", market_type="SPOT", accounts=[account])
    make_strategy(group_name="perp", market_type="FUTURES", accounts=[account])
    for version in ("v2", "v3"):
        binance_sim.inject("auth", f"/fapi/{version}/account", count=5)
        binance_sim.inject("auth", f"/fapi/{version}/balance", count=5)
    result = account_check(account)
    assert not result.ok
    assert "현물은 되지만 선물이 거부되었습니다" in result.message, result.message


def test_a_wrong_okx_passphrase_is_named(okx_account: Callable[..., Account]) -> None:
    account = okx_account()
    assert account_check(account).ok
    Account.objects.filter(pk=account.pk).update(passphrase="not-the-passphrase")
    result = account_check(_stored(account))
    assert not result.ok and "패스프레이즈가 틀렸습니다" in result.message, result.message


def test_a_wrong_bybit_key_and_a_wrong_bitget_secret_are_named(
    bybit_account: Callable[..., Account], bitget_account: Callable[..., Account]
) -> None:
    bybit, bitget = bybit_account(), bitget_account()
    Account.objects.filter(pk=bybit.pk).update(api_key="not-the-key")
    Account.objects.filter(pk=bitget.pk).update(api_secret="not-the-secret")
    wrong_key = account_check(_stored(bybit))
    wrong_secret = account_check(_stored(bitget))
    assert not wrong_key.ok and "API 키가 틀렸거나" in wrong_key.message, wrong_key.message
    assert not wrong_secret.ok and "API 시크릿이 틀렸습니다" in wrong_secret.message, wrong_secret.message


def test_an_ip_outside_the_keys_whitelist_is_named_by_the_venues_code() -> None:
    cause = ccxt.PermissionDenied(
        'bybit {"retCode":10010,"retMsg":"Unmatched IP, please check your API key\'s bound IP addresses."}'
    )
    error = PermanentVenueError("Bybit API 오류: Unmatched IP")
    error.__cause__ = cause
    assert explain("BYBIT", error).startswith(
        "이 서버의 IP 주소가 API 키의 허용 IP 목록에 없습니다. Bybit API 오류"
    )
    # The same code from another venue means something else: only ccxt's class is used there.
    assert explain("KRAKEN", error).startswith("API 키에 필요한 권한")


def test_a_venue_that_cannot_be_reached_says_so(binance_account: Callable[..., Account]) -> None:
    account = binance_account(api_base_url="http://127.0.0.1:9")  # nothing listens on port 9
    result = account_check(account)
    assert not result.ok
    assert "거래소에 연결할 수 없습니다" in result.message, result.message


def test_kis_passes_with_its_app_key_and_reads_the_cash(kis_account: Callable[..., Account]) -> None:
    result = account_check(kis_account())
    assert result.ok, result.message
    assert "KRW" in result.message


def test_kis_refusing_the_token_is_named_as_such(
    kis_account: Callable[..., Account], kis_sim: KisSim
) -> None:
    account = kis_account()
    Account.objects.filter(pk=account.pk).update(api_key="wrong-appkey")
    result = account_check(_stored(account))
    assert not result.ok
    assert "한국투자증권이 접근 토큰 발급을 거부했습니다" in result.message
    assert "유효하지 않은 AppKey" in result.message  # KIS's own words (EGW00103)
    assert not kis_sim.seen("/uapi/")  # nothing else was asked with a refused key


def test_a_kis_account_without_account_number_fails_plainly(kis_account: Callable[..., Account]) -> None:
    account = kis_account()
    Account.objects.filter(pk=account.pk).update(settings={"api_base_url": account.settings["api_base_url"]})
    result = account_check(_stored(account))
    assert not result.ok and "account_number" in result.message


@pytest.fixture
def kiwoom_sim() -> Iterator[KiwoomSim]:
    sim = KiwoomSim()
    sim.start()
    yield sim
    sim.stop()


def test_kiwoom_passes_and_a_wrong_secret_is_a_refused_token(
    make_account: Callable[..., Account], kiwoom_sim: KiwoomSim
) -> None:
    account = make_account(
        name="kiwoom-1",
        exchange="KIWOOM",
        api_key="sim-appkey",
        api_secret="sim-secretkey",
        settings={"api_base_url": kiwoom_sim.base_url, "timeout_seconds": 2},
    )
    good = account_check(account)
    assert good.ok, good.message
    assert "KRW" in good.message
    # A changed secret does not reuse the token issued with the old one; a new one is asked
    # for, once the broker's one-a-minute limit allows it.
    Account.objects.filter(pk=account.pk).update(api_secret="wrong")
    too_soon = account_check(_stored(account))
    assert not too_soon.ok and "1분" in too_soon.message, too_soon.message
    cache.delete(KiwoomAdapter(_stored(account)).client.tokens.issued_key)  # the minute has passed
    bad = account_check(_stored(account))
    assert not bad.ok and "키움증권이 접근 토큰 발급을 거부했습니다" in bad.message, bad.message


def test_kiwoom_with_a_wrong_secret_from_the_start_is_a_refused_token(
    make_account: Callable[..., Account], kiwoom_sim: KiwoomSim
) -> None:
    account = make_account(
        name="kiwoom-2",
        exchange="KIWOOM",
        api_key="sim-appkey",
        api_secret="typo",
        settings={"api_base_url": kiwoom_sim.base_url, "timeout_seconds": 2},
    )
    result = account_check(account)
    assert not result.ok and "키움증권이 접근 토큰 발급을 거부했습니다" in result.message


def test_a_paper_account_always_passes(make_account: Callable[..., Account]) -> None:
    empty = account_check(make_account(name="paper-empty"))
    funded = account_check(make_account(name="paper-funded", balances={"USDT": "1000", "BTC": "0.25"}))
    assert empty.ok and "잔고 없음" in empty.message
    assert funded.ok and "USDT 1000" in funded.message and "BTC 0.25" in funded.message


def test_a_stored_unknown_exchange_fails_without_raising(make_account: Callable[..., Account]) -> None:
    account = make_account(name="legacy", exchange="NOTAVENUE", api_key="k", api_secret="s")
    result = account_check(account)
    assert not result.ok and "NOTAVENUE" in result.message


def test_the_command_prints_each_result_and_fails_when_one_failed(
    binance_account: Callable[..., Account], make_account: Callable[..., Account], capsys: Any
) -> None:
    good = binance_account()
    make_account(name="paper-cmd")
    call_command("account_check", good.name, "paper-cmd")
    out = capsys.readouterr().out
    assert f"OK      {good}" in out and "OK      paper-cmd (PAPER)" in out
    assert _stored(good).connection_ok is True
    Account.objects.filter(pk=good.pk).update(api_key="not-the-key")
    with pytest.raises(CommandError, match="binance-1"):
        call_command("account_check", good.name)
    assert "FAILED  " in capsys.readouterr().out and _stored(good).connection_ok is False
    with pytest.raises(CommandError, match="unknown account: nope"):
        call_command("account_check", "nope")
    with pytest.raises(CommandError, match=r"connection test failed: binance-1$"):
        call_command("account_check", "--all")  # the paper one passes, the Binance one not
    with pytest.raises(CommandError, match="name at least one account"):
        call_command("account_check")


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_user("ops", "o@example.com", "pw", is_staff=True))
    return client


def test_the_button_posts_the_check_and_returns_with_the_result(
    binance_account: Callable[..., Account], staff_client: Client
) -> None:
    account = binance_account()
    assert staff_client.get(f"/accounts/{account.pk}/check/").status_code == 405
    response = staff_client.post(f"/accounts/{account.pk}/check/", {"next": "/strategies/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/strategies/"
    shown = [str(m) for m in response.context["messages"]]
    assert any("binance-1 연결 테스트: 연결 성공" in m for m in shown), shown
    assert _stored(account).connection_ok is True
    # An outside "next" is not followed: back to the account's admin page instead.
    response = staff_client.post(f"/accounts/{account.pk}/check/", {"next": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == f"/admin/strategies/account/{account.pk}/change/"


def test_the_check_is_for_staff_only(make_account: Callable[..., Account], client: Client) -> None:
    account = make_account()
    assert client.post(f"/accounts/{account.pk}/check/").status_code == 302  # to the login page
    client.force_login(get_user_model().objects.create_user("viewer", "v@example.com", "pw"))
    assert client.post(f"/accounts/{account.pk}/check/").status_code == 403
    assert _stored(account).connection_checked_at is None
