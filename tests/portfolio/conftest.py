"""The venue simulators' fixtures (tests/venues) reused for the portfolio reads."""

from __future__ import annotations

from tests.venues.conftest import (  # noqa: F401 - fixtures
    binance_account,
    binance_sim,
    bitget_account,
    bitget_sim,
    bybit_account,
    bybit_sim,
    kis_account,
    kis_sim,
    okx_account,
    okx_sim,
    upbit_account,
    upbit_sim,
)
