"""Venue simulators on 127.0.0.1 (a fresh one per test) and accounts pointed at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strategies.models import Account
from venuesim.binance import BinanceSim
from venuesim.bitget import BitgetSim
from venuesim.bybit import BybitSim
from venuesim.kis import KisSim
from venuesim.okx import OkxSim
from venuesim.upbit import UpbitSim


@pytest.fixture
def binance_sim() -> Iterator[BinanceSim]:
    sim = BinanceSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def binance_account(make_account: Callable[..., Account], binance_sim: BinanceSim) -> Callable[..., Account]:
    def make(name: str = "binance-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="BINANCE",
            api_key="sim-key",
            api_secret="sim-secret",
            settings={
                "api_base_url": binance_sim.base_url,
                "timeout_seconds": 2,
                "enable_rate_limit": False,
                **settings,
            },
        )

    return make


@pytest.fixture
def kis_sim() -> Iterator[KisSim]:
    sim = KisSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def kis_account(make_account: Callable[..., Account], kis_sim: KisSim) -> Callable[..., Account]:
    def make(name: str = "kis-1", product_code: str = "01", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="KIS",
            api_key="sim-appkey",
            api_secret="sim-appsecret",
            settings={
                "api_base_url": kis_sim.base_url,
                "account_number": f"12345678-{product_code}",
                "timeout_seconds": 2,
                "rate_limit_per_second": 50,
                **settings,
            },
        )

    return make


@pytest.fixture
def upbit_sim() -> Iterator[UpbitSim]:
    sim = UpbitSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def upbit_account(make_account: Callable[..., Account], upbit_sim: UpbitSim) -> Callable[..., Account]:
    def make(name: str = "upbit-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="UPBIT",
            api_key="sim-access",
            api_secret="sim-secret",
            settings={
                "api_base_url": upbit_sim.base_url,
                "timeout_seconds": 2,
                "enable_rate_limit": False,
                **settings,
            },
        )

    return make


@pytest.fixture
def bybit_sim() -> Iterator[BybitSim]:
    sim = BybitSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def bybit_account(make_account: Callable[..., Account], bybit_sim: BybitSim) -> Callable[..., Account]:
    def make(name: str = "bybit-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="BYBIT",
            api_key="sim-bybit-key",
            api_secret="sim-bybit-secret",
            settings={
                "api_base_url": bybit_sim.base_url,
                "timeout_seconds": 2,
                "enable_rate_limit": False,
                **settings,
            },
        )

    return make


@pytest.fixture
def okx_sim() -> Iterator[OkxSim]:
    sim = OkxSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def okx_account(make_account: Callable[..., Account], okx_sim: OkxSim) -> Callable[..., Account]:
    def make(name: str = "okx-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="OKX",
            api_key="sim-key",
            api_secret="sim-secret",
            passphrase="sim-pass",
            settings={
                "api_base_url": okx_sim.base_url,
                "timeout_seconds": 2,
                "enable_rate_limit": False,
                **settings,
            },
        )

    return make


@pytest.fixture
def bitget_sim() -> Iterator[BitgetSim]:
    sim = BitgetSim()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def bitget_account(make_account: Callable[..., Account], bitget_sim: BitgetSim) -> Callable[..., Account]:
    def make(name: str = "bitget-1", **settings: Any) -> Account:
        return make_account(
            name=name,
            exchange="BITGET",
            api_key="sim-key",
            api_secret="sim-secret",
            passphrase="sim-pass",
            settings={
                "api_base_url": bitget_sim.base_url,
                "timeout_seconds": 2,
                "enable_rate_limit": False,
                **settings,
            },
        )

    return make
