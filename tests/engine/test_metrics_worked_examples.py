"""Performance metrics against examples worked by hand (numbers in the comments)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from paper_trading.engine import metrics
from paper_trading.engine.events import TradeRecord, TradeStatus

D = Decimal
YEAR = metrics.SECONDS_PER_YEAR
#: Four bars a year, so annualising multiplies a per-bar ratio by sqrt(4) = 2.
QUARTER = YEAR // 4
#: Returns +10%, -10%, +10%.
EQUITY = [D(100), D(110), D(99), D("108.9")]


def test_sharpe_of_a_worked_example() -> None:
    # mean = 0.1/3 = 0.033333; sample stdev = sqrt((0.0667^2 + 0.1333^2 + 0.0667^2) / 2)
    # = sqrt(0.013333) = 0.115470; 0.033333 / 0.115470 = 0.288675; x 2 = 0.577350.
    assert metrics.sharpe_ratio(EQUITY, QUARTER) == D("0.5774")


def test_sortino_of_a_worked_example() -> None:
    # downside deviation = sqrt((0 + 0.1^2 + 0) / 3) = 0.057735; 0.033333 / 0.057735 = 0.577350;
    # x 2 = 1.154701.
    assert metrics.sortino_ratio(EQUITY, QUARTER) == D("1.1547")
    # No losing bar: no downside to measure.
    assert metrics.sortino_ratio([D(100), D(110), D(121)], QUARTER) is None


def test_flat_bars_count_as_zero_returns() -> None:
    # A flat book repeats its value: returns +10%, 0, -10%, 0, 0 (a zero return is a bar too).
    # mean = 0 / 5 = 0 -> Sharpe 0; downside = sqrt(0.01 / 5) = 0.044721 -> Sortino 0.
    equity = [D(100), D(110), D("110.00"), D(99), D(99), D("99.0")]
    assert metrics.sharpe_ratio(equity, QUARTER) == D(0)
    assert metrics.sortino_ratio(equity, QUARTER) == D(0)
    # +10%, 0, 0: mean 0.033333, sample stdev 0.057735 -> 0.577350 x 2 = 1.154701.
    assert metrics.sharpe_ratio([D(100), D(110), D(110), D(110)], QUARTER) == D("1.1547")
    # Peak 110 then 99 held: 10% down, however long it stays there.
    assert metrics.max_drawdown_percent(equity) == D(10)


def test_drawdown_series_and_its_maximum() -> None:
    equity = [D(100), D(120), D(90), D(130), D(117)]
    # Peaks 100, 120, 120, 130, 130: falls 0, 0, 30/120, 0, 13/130.
    assert metrics.drawdown_series(equity) == [0, 0, D(25), 0, D(10)]
    assert metrics.max_drawdown_percent(equity) == D(25)
    assert metrics.drawdown_series([]) == []


def test_profit_factor_of_a_worked_example() -> None:
    # Wins 50 + 30 = 80; losses 20 + 30 = 50 (a flat trade adds nothing): 80 / 50 = 1.6.
    assert metrics.profit_factor([D(50), D(-20), D(30), D(-30), D(0)]) == D("1.6")
    assert metrics.profit_factor([D(10), D(5)]) is None  # no loss to divide by
    assert metrics.profit_factor([D(-10)]) is None  # nothing won
    assert metrics.profit_factor([]) is None


def test_annualized_return_compounds_over_the_period() -> None:
    # +10% in a year is 10% a year; +10% in half a year is 1.1^2 - 1 = 21% a year;
    # -19% in two years is sqrt(0.81) - 1 = -10% a year.
    assert metrics.annualized_return_percent(D(10_000), D(11_000), YEAR) == D(10)
    assert metrics.annualized_return_percent(D(10_000), D(11_000), YEAR / 2) == D(21)
    assert metrics.annualized_return_percent(D(100), D(81), 2 * YEAR) == D(-10)
    assert metrics.annualized_return_percent(D(100), D(0), YEAR) is None  # wiped out
    assert metrics.annualized_return_percent(D(100), D(110), 0) is None  # no period
    assert metrics.annualized_return_percent(D(100), D(1e9), 1) is None  # beyond a float


def test_exposure_is_the_average_share_held_in_tokens() -> None:
    # 0%, 50% and 100% of the portfolio in tokens: 50% on average.
    points = [(D(0), D(100)), (D(50), D(100)), (D(120), D(120))]
    assert metrics.exposure_percent(points) == D(50)
    assert metrics.exposure_percent([]) == 0


def _trade(symbol: str, side: str, status: TradeStatus, **usd: str) -> TradeRecord:
    zero = D(0)
    figures = {
        k: D(usd.get(k, "0"))
        for k in ("fee_usd", "gas_usd", "realized_pnl_usd", "net_pnl_usd", "amount_in_usd")
    }
    return TradeRecord(
        trade_id=uuid.uuid4(),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        chain_id=8453,
        symbol=symbol,
        token_address="0x0",
        side=side,
        status=status,
        reason="strategy",
        token_in="",
        token_out="",
        amount_in=zero,
        amount_out=zero,
        amount_out_usd=zero,
        mid_price_usd=zero,
        execution_price_usd=zero,
        pool_kind="v3",
        fee_pips=3000,
        fee_bps=zero,
        price_impact_bps=zero,
        slippage_bps=zero,
        slippage_tolerance_bps=zero,
        min_amount_out=zero,
        gas_units=0,
        gas_price_gwei=zero,
        gas_native=zero,
        l1_fee_native=zero,
        approval_gas_usd=zero,
        gas_source="default",
        revert_reason="",
        thought_id=uuid.uuid4(),
        position_id=None,
        fee_usd=figures["fee_usd"],
        gas_usd=figures["gas_usd"],
        realized_pnl_usd=figures["realized_pnl_usd"],
        net_pnl_usd=figures["net_pnl_usd"],
        amount_in_usd=figures["amount_in_usd"],
    )


def test_per_token_results() -> None:
    ok, reverted = TradeStatus.EXECUTED, TradeStatus.REVERTED
    trades = [
        _trade("UNI", "BUY", ok, amount_in_usd="100", fee_usd="0.3", gas_usd="0.01"),
        _trade(
            "UNI",
            "SELL",
            ok,
            amount_in_usd="110",
            fee_usd="0.33",
            gas_usd="0.01",
            realized_pnl_usd="10.33",
            net_pnl_usd="9.68",
        ),
        _trade("UNI", "SELL", reverted, gas_usd="0.02", net_pnl_usd="-0.02"),
        _trade("AAVE", "BUY", ok, amount_in_usd="50", fee_usd="0.15", gas_usd="0.01"),
        _trade(
            "AAVE",
            "SELL",
            ok,
            amount_in_usd="45",
            fee_usd="0.135",
            gas_usd="0.01",
            realized_pnl_usd="-4.865",
            net_pnl_usd="-5.16",
        ),
    ]
    aave, uni = metrics.per_token(trades)
    assert (uni.symbol, uni.trades, uni.reverted, uni.closes, uni.wins) == ("UNI", 3, 1, 1, 1)
    assert uni.win_rate_percent == D(100)
    assert uni.fees_usd == D("0.63")
    assert uni.gas_usd == D("0.04")  # the reverted swap's gas counts
    assert uni.volume_usd == D(210)
    assert uni.net_pnl_usd == D("10.33") - D("0.63") - D("0.04")
    assert (aave.symbol, aave.closes, aave.wins, aave.win_rate_percent) == ("AAVE", 1, 0, D(0))
    assert aave.net_pnl_usd == D("-4.865") - D("0.285") - D("0.02")
