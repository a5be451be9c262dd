"""Portfolio reads through every adapter against its venue simulator over real HTTP, and the
paper book: balances, positions (entry, leverage, mark), marking from the price layer, and a
venue's read failure shown in the portfolio rather than hidden."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, time
from decimal import Decimal
from typing import Any

import pytest

from orders.exchanges import adapter_for
from orders.exchanges.base import OrderRequest
from orders.exchanges.kis.sessions import KST
from orders.models import PaperBalance, PaperPosition
from orders.portfolio.records import Portfolio, PositionLine
from orders.portfolio.services import portfolio_read
from quanttrade.vocabulary import MarketType
from venuesim.binance import BinanceSim
from venuesim.kis import KisSim
from venuesim.kiwoom import KiwoomSim

pytestmark = pytest.mark.django_db

CCXT_FUTURES = ["binance", "bybit", "okx", "bitget"]


def _position(portfolio: Portfolio, market_type: str, symbol: str) -> PositionLine:
    found = [p for p in portfolio.positions if p.market_type == market_type and p.symbol == symbol]
    assert len(found) == 1, portfolio.positions
    return found[0]


def _cash(portfolio: Portfolio, market_type: str) -> dict[str, Decimal]:
    return {b.asset: b.total for b in portfolio.balances if b.market_type == market_type}


def _open_futures_long(account: Any, client_id: str) -> Any:
    return adapter_for(account).place_order(
        OrderRequest(
            client_order_id=client_id,
            market_type=MarketType.FUTURES,
            symbol="BTC/USDT",
            side="BUY",
            order_type="MARKET",
            qty_per=Decimal("10"),
        )
    )


@pytest.mark.parametrize("venue", CCXT_FUTURES)
def test_ccxt_futures_position_is_read_and_marked_from_the_price_layer(
    venue: str, request: pytest.FixtureRequest, publish_price: Callable[[str, Any], Any]
) -> None:
    account = request.getfixturevalue(f"{venue}_account")(portfolio_markets=["FUTURES"])
    placed = _open_futures_long(account, "qt" + "a" * 32)
    assert placed.filled_qty > 0 and placed.avg_price is not None
    mark = placed.avg_price + Decimal("1000")
    publish_price(f"{venue.upper()}:BTC/USDT", mark)

    portfolio = portfolio_read(account)

    assert portfolio.errors == []
    position = _position(portfolio, MarketType.FUTURES, "BTC/USDT")
    assert position.quantity == placed.filled_qty
    assert position.entry_price == placed.avg_price
    assert position.margin and position.leverage is not None and position.leverage > 0
    assert (position.mark_price, position.mark_source) == (mark, "price")
    assert position.unrealised_pnl == placed.filled_qty * Decimal("1000")
    usdt = portfolio.totals["USDT"]
    assert usdt.cash > 0
    assert usdt.margin_pnl == position.unrealised_pnl
    assert usdt.equity == usdt.cash + usdt.holdings_value + position.unrealised_pnl


def test_binance_spot_and_usdm_are_read_as_two_markets_and_coins_are_marked(
    binance_account: Callable[..., Any], binance_sim: BinanceSim, publish_price: Callable[[str, Any], Any]
) -> None:
    account = binance_account(portfolio_markets=["SPOT", "FUTURES"])
    publish_price("BINANCE:BTC/USDT", "60000")

    portfolio = portfolio_read(account)

    assert portfolio.errors == []
    spot_usdt = [b for b in portfolio.balances if b.market_type == "SPOT" and b.asset == "USDT"]
    futures_usdt = [b for b in portfolio.balances if b.market_type == "FUTURES" and b.asset == "USDT"]
    assert spot_usdt[0].total == binance_sim.spot_balances["USDT"]
    assert futures_usdt[0].total == binance_sim.futures_wallet
    btc = _position(portfolio, MarketType.SPOT, "BTC/USDT")
    assert btc.quantity == Decimal("0.5") and not btc.margin
    assert btc.value == Decimal("30000")
    # ETH has no price anywhere: shown, but not valued (never counted as zero silently).
    eth = _position(portfolio, MarketType.SPOT, "ETH/USDT")
    assert eth.mark_price is None and eth.value is None
    usdt = portfolio.totals["USDT"]
    assert usdt.cash == binance_sim.spot_balances["USDT"] + binance_sim.futures_wallet
    assert usdt.holdings_value == Decimal("30000")


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_unified_account_balance_is_counted_once(
    venue: str, request: pytest.FixtureRequest, no_prices: None
) -> None:
    account = request.getfixturevalue(f"{venue}_account")(portfolio_markets=["SPOT", "FUTURES"])
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert [b.market_type for b in portfolio.balances if b.asset == "USDT"] == ["SPOT"]


def test_upbit_krw_cash_and_coins_marked_in_won(
    upbit_account: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = upbit_account()
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert portfolio.totals["KRW"].cash > 0
    coins = [p for p in portfolio.positions if p.market_type == MarketType.SPOT]
    assert coins and all(p.symbol.endswith("/KRW") and p.currency == "KRW" for p in coins)
    symbol = coins[0].symbol
    publish_price(f"UPBIT:{symbol}", "1000")
    again = _position(portfolio_read(account), MarketType.SPOT, symbol)
    assert again.value == coins[0].quantity * 1000


def test_kis_domestic_stock_holdings_and_cash(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    account = kis_account(portfolio_markets=["DOMESTIC_STOCK"])
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert portfolio.totals["KRW"].cash == kis_sim.cash_krw
    samsung = _position(portfolio, MarketType.DOMESTIC_STOCK, "005930")
    assert samsung.quantity == Decimal("100") and samsung.currency == "KRW"
    # No tick in the price layer: the venue's 현재가 marks it, against its 매입평균가격.
    assert (samsung.mark_price, samsung.mark_source) == (Decimal("70000"), "venue")
    assert (samsung.entry_price, samsung.unrealised_pnl) == (Decimal("65000"), Decimal("500000"))
    assert portfolio.totals["KRW"].holdings_value == Decimal("7000000")


def test_kis_overseas_stock_holdings_in_usd(
    kis_account: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = kis_account(portfolio_markets=["OVERSEAS_STOCK"])
    publish_price("NASD:MSFT", "400")
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    msft = _position(portfolio, MarketType.OVERSEAS_STOCK, "MSFT")
    assert (msft.quantity, msft.currency, msft.instrument) == (Decimal("20"), "USD", "NASD:MSFT")
    assert (msft.mark_price, msft.mark_source) == (Decimal("400"), "price")
    brk = _position(portfolio, MarketType.OVERSEAS_STOCK, "BRK.B")
    assert brk.instrument == "NYSE:BRK.B" and brk.mark_price == Decimal("420.00")
    assert (brk.entry_price, brk.unrealised_pnl) == (Decimal("410"), Decimal("50"))
    # No USD/KRW rate in the price layer: the won total leaves USD out and says so.
    assert portfolio.unconverted == ["USD"]
    # USD cash from 체결기준현재잔고 (CTRP6504R output2 frcr_dncl_amt_2).
    assert _cash(portfolio, MarketType.OVERSEAS_STOCK) == {"USD": Decimal("100000")}
    assert portfolio.totals["USD"].cash == Decimal("100000")


def test_kis_overseas_usd_cash_follows_the_venue_after_a_buy(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    account = kis_account(portfolio_markets=["OVERSEAS_STOCK"])
    placed = adapter_for(account).place_order(
        OrderRequest(
            client_order_id="qt" + "f" * 32,
            market_type=MarketType.OVERSEAS_STOCK,
            symbol="AAPL",
            side="BUY",
            order_type="MARKET",
            qty_per=Decimal("10"),
        )
    )
    assert placed.filled_qty == 10 and placed.avg_price is not None
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert kis_sim.cash_usd == Decimal("100000") - 10 * placed.avg_price
    assert _cash(portfolio, MarketType.OVERSEAS_STOCK) == {"USD": kis_sim.cash_usd}


def test_kis_overseas_cash_leaves_a_krw_row_to_the_domestic_market(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    kis_sim.present_balance_krw_row = True
    account = kis_account(portfolio_markets=["DOMESTIC_STOCK", "OVERSEAS_STOCK"])
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert _cash(portfolio, MarketType.OVERSEAS_STOCK) == {"USD": kis_sim.cash_usd}
    assert portfolio.totals["KRW"].cash == kis_sim.cash_krw  # once, not twice


def test_kis_overseas_cash_read_failure_is_shown(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    account = kis_account(portfolio_markets=["DOMESTIC_STOCK", "OVERSEAS_STOCK"])
    kis_sim.inject("5xx", "/uapi/overseas-stock/v1/trading/inquire-present-balance", count=20)
    portfolio = portfolio_read(account)
    assert len(portfolio.errors) == 1 and portfolio.errors[0].startswith("OVERSEAS_STOCK: ")
    assert not portfolio.complete
    # No USD shown as zero: the market's lines are missing, not made up.
    assert _cash(portfolio, MarketType.OVERSEAS_STOCK) == {}
    assert _cash(portfolio, MarketType.DOMESTIC_STOCK) == {"KRW": kis_sim.cash_krw}


def test_kis_domestic_futures_long_and_short(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    kis_sim.fo_positions.update({"101TC000": Decimal("2"), "201PC260": Decimal("-3")})
    account = kis_account(product_code="03", portfolio_markets=["DOMESTIC_FUTUREOPTION"])
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert _position(portfolio, MarketType.DOMESTIC_FUTUREOPTION, "101TC000").quantity == 2
    short = _position(portfolio, MarketType.DOMESTIC_FUTUREOPTION, "201PC260")
    assert short.quantity == -3 and short.margin
    # 예수금현금 (CTFO6118R output2 dnca_cash) is the market's KRW cash.
    assert _cash(portfolio, MarketType.DOMESTIC_FUTUREOPTION) == {"KRW": kis_sim.fo_cash_krw}
    assert portfolio.totals["KRW"].cash == Decimal("50000000")


@pytest.mark.parametrize(
    ("kst_hour", "balance_path"),
    [(14, "inquire-balance"), (3, "inquire-ngt-balance")],  # the F&O day session, the night one
    ids=["day", "night"],
)
def test_kis_domestic_futures_cash_read_failure_is_shown(
    kis_account: Callable[..., Any],
    kis_sim: KisSim,
    no_prices: None,
    kst_clock: Callable[..., Any],
    kst_hour: int,
    balance_path: str,
) -> None:
    # The session's balance is read, by the KST clock: pinned, so the test holds at any hour.
    kst_clock(datetime.combine(datetime.now(KST).date(), time(kst_hour), KST))
    account = kis_account(product_code="03", portfolio_markets=["DOMESTIC_FUTUREOPTION"])
    kis_sim.inject("5xx", f"/uapi/domestic-futureoption/v1/trading/{balance_path}", count=20)
    portfolio = portfolio_read(account)
    assert len(portfolio.errors) == 1 and portfolio.errors[0].startswith("DOMESTIC_FUTUREOPTION: ")
    assert portfolio.balances == [] and not portfolio.complete


def test_kis_overseas_futures_positions(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    kis_sim.ofo_positions.update({"ESZ4": Decimal("1"), "NQH5": Decimal("-2")})
    account = kis_account(product_code="08", portfolio_markets=["OVERSEAS_FUTUREOPTION"])
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert _position(portfolio, MarketType.OVERSEAS_FUTUREOPTION, "ESZ4").quantity == 1
    assert _position(portfolio, MarketType.OVERSEAS_FUTUREOPTION, "NQH5").quantity == -2
    # FM예수금잔액 of 해외선물옵션 예수금현황 (OTFM1411R, total USD).
    assert _cash(portfolio, MarketType.OVERSEAS_FUTUREOPTION) == {"USD": kis_sim.ofo_cash_usd}
    assert portfolio.totals["USD"].cash == Decimal("200000")


def test_kis_overseas_futures_deposit_read_failure_is_shown(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    kis_sim.ofo_positions["ESZ4"] = Decimal("1")
    account = kis_account(product_code="08", portfolio_markets=["OVERSEAS_FUTUREOPTION"])
    kis_sim.inject("5xx", "/uapi/overseas-futureoption/v1/trading/inquire-deposit", count=20)
    portfolio = portfolio_read(account)
    assert len(portfolio.errors) == 1 and portfolio.errors[0].startswith("OVERSEAS_FUTUREOPTION: ")
    assert portfolio.balances == [] and not portfolio.complete


def test_paper_book_balances_and_positions(
    make_account: Callable[..., Any], publish_price: Callable[[str, Any], Any]
) -> None:
    account = make_account(
        name="paper-1", exchange="PAPER", settings={"portfolio_markets": ["SPOT", "FUTURES"]}
    )
    PaperBalance.objects.create(account=account, asset="USDT", free=Decimal("900"), locked=Decimal("100"))
    PaperBalance.objects.create(account=account, asset="ETH", free=Decimal("2"))
    PaperPosition.objects.create(
        account=account,
        symbol="BTC/USDT",
        market_type="FUTURES",
        quantity=Decimal("-0.1"),
        entry_price=Decimal("50000"),
        currency="USDT",
        margin=Decimal("100"),
    )
    publish_price("BINANCE:BTC/USDT", "49000")
    publish_price("BINANCE:ETH/USDT", "3000")

    portfolio = portfolio_read(account)

    assert portfolio.errors == []
    assert [(b.asset, b.total) for b in portfolio.balances if b.asset == "USDT"] == [
        ("USDT", Decimal("1000"))
    ]
    short = _position(portfolio, MarketType.FUTURES, "BTC/USDT")
    assert short.unrealised_pnl == Decimal("100")  # -0.1 × (49000 − 50000)
    usdt = portfolio.totals["USDT"]
    assert usdt.equity == Decimal("1000") + Decimal("6000") + Decimal("100")


@pytest.mark.parametrize("venue", CCXT_FUTURES)
def test_a_venue_read_failure_is_shown_and_the_other_market_kept(
    venue: str, request: pytest.FixtureRequest, no_prices: None
) -> None:
    account = request.getfixturevalue(f"{venue}_account")(portfolio_markets=["SPOT", "FUTURES"])
    sim = request.getfixturevalue(f"{venue}_sim")
    portfolio_read(account)  # markets loaded: the fault hits the balance read itself
    sim.inject("auth", count=100)
    failed = portfolio_read(account)
    assert failed.errors and all(error.split(":")[0] in ("SPOT", "FUTURES") for error in failed.errors)
    assert not failed.complete


def test_kis_read_failure_names_the_market(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    account = kis_account(portfolio_markets=["DOMESTIC_STOCK", "OVERSEAS_STOCK"])
    kis_sim.inject("5xx", "/uapi/overseas-stock/v1/trading/inquire-balance", count=20)
    portfolio = portfolio_read(account)
    assert len(portfolio.errors) == 1 and portfolio.errors[0].startswith("OVERSEAS_STOCK: ")
    # The domestic market was still read.
    assert _position(portfolio, MarketType.DOMESTIC_STOCK, "005930").quantity == 100


def test_unknown_exchange_is_an_error_not_an_exception(
    make_account: Callable[..., Any], no_prices: None
) -> None:
    account = make_account(name="nowhere", exchange="NOSUCHVENUE")
    portfolio = portfolio_read(account)
    assert portfolio.errors and portfolio.positions == [] and portfolio.balances == []


@pytest.fixture
def kiwoom_account(make_account: Callable[..., Any]) -> Iterator[Any]:
    sim = KiwoomSim()
    sim.start()
    try:
        yield (
            sim,
            make_account(
                name="kiwoom-1",
                exchange="KIWOOM",
                api_key="sim-appkey",
                api_secret="sim-secretkey",
                settings={"api_base_url": sim.base_url, "account_number": "1234567890", "timeout_seconds": 2},
            ),
        )
    finally:
        sim.stop()


def test_kiwoom_cash_and_holdings(kiwoom_account: tuple[KiwoomSim, Any], no_prices: None) -> None:
    sim, account = kiwoom_account
    portfolio = portfolio_read(account)
    assert portfolio.errors == []
    assert portfolio.totals["KRW"].cash == sim.cash
    assert _position(portfolio, MarketType.DOMESTIC_STOCK, "005930").quantity == sim.holdings["005930"]
    # The deposit of 예수금상세현황 (kt00001), the read the connection test makes.
    assert _cash(portfolio, MarketType.DOMESTIC_STOCK) == {"KRW": sim.cash}


def test_kiwoom_deposit_read_failure_is_shown(kiwoom_account: tuple[KiwoomSim, Any], no_prices: None) -> None:
    sim, account = kiwoom_account
    sim.inject("5xx", "/api/dostk/acnt", count=20)
    portfolio = portfolio_read(account)
    assert len(portfolio.errors) == 1 and portfolio.errors[0].startswith("DOMESTIC_STOCK: ")
    assert portfolio.balances == [] and not portfolio.complete


def test_kis_buy_averages_into_the_venue_entry_price(
    kis_account: Callable[..., Any], kis_sim: KisSim, no_prices: None
) -> None:
    account = kis_account(portfolio_markets=["DOMESTIC_STOCK"])
    adapter_for(account).place_order(
        OrderRequest(
            client_order_id="qt" + "c" * 32,
            market_type=MarketType.DOMESTIC_STOCK,
            symbol="005930",
            side="BUY",
            order_type="MARKET",
            qty_per=Decimal("100"),
        )
    )
    samsung = _position(portfolio_read(account), MarketType.DOMESTIC_STOCK, "005930")
    # 100 @ 65000 and 100 @ 70000 (the simulator's market price): 67500 on 200.
    assert (samsung.quantity, samsung.entry_price) == (Decimal("200"), Decimal("67500"))


def test_binance_usdm_cash_is_the_wallet_without_the_venues_unrealised_pnl(
    binance_account: Callable[..., Any], binance_sim: BinanceSim, no_prices: None
) -> None:
    account = binance_account(portfolio_markets=["FUTURES"])
    placed = _open_futures_long(account, "qt" + "d" * 32)
    binance_sim.prices["BTCUSDT"] += Decimal("500")  # the venue's mark moves: it reports a profit
    portfolio = portfolio_read(account)
    position = _position(portfolio, MarketType.FUTURES, "BTC/USDT")
    assert (position.mark_source, position.unrealised_pnl) == ("venue", placed.filled_qty * 500)
    usdt = portfolio.totals["USDT"]
    assert usdt.cash == binance_sim.futures_wallet  # not counted twice
    assert usdt.equity == binance_sim.futures_wallet + placed.filled_qty * 500


@pytest.mark.parametrize(
    ("venue", "price_key", "wallet"),
    [
        ("okx", "BTC", lambda sim: sim.balances["USDT"]),
        ("bitget", "BTC", lambda sim: sim.futures_balance),
        ("bybit", "BTCUSDT", lambda sim: sim.wallet["USDT"]),
    ],
)
def test_futures_cash_excludes_the_venues_unrealised_pnl(
    venue: str,
    price_key: str,
    wallet: Callable[[Any], Decimal],
    request: pytest.FixtureRequest,
    no_prices: None,
) -> None:
    account = request.getfixturevalue(f"{venue}_account")(portfolio_markets=["FUTURES"])
    sim = request.getfixturevalue(f"{venue}_sim")
    placed = _open_futures_long(account, "qt" + "e" * 32)
    sim.prices[price_key] += Decimal("500")
    portfolio = portfolio_read(account)
    position = _position(portfolio, MarketType.FUTURES, "BTC/USDT")
    assert position.unrealised_pnl == placed.filled_qty * 500
    assert portfolio.totals["USDT"].cash == wallet(sim)
