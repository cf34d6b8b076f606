"""Performance metrics against examples worked by hand (numbers in the comments)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
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


def _trade(
    symbol: str,
    side: str,
    status: TradeStatus,
    *,
    reason: str = "strategy",
    at: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    position: uuid.UUID | None = None,
    quantity: str = "0",
    **usd: str,
) -> TradeRecord:
    zero = D(0)
    figures = {
        k: D(usd.get(k, "0"))
        for k in ("fee_usd", "gas_usd", "realized_pnl_usd", "net_pnl_usd", "amount_in_usd")
    }
    return TradeRecord(
        trade_id=uuid.uuid4(),
        created_at=at,
        chain_id=8453,
        symbol=symbol,
        token_address="0x0",
        side=side,
        status=status,
        reason=reason,
        token_in="",
        token_out="",
        amount_in=D(quantity) if side == "SELL" else zero,
        amount_out=D(quantity) if side == "BUY" else zero,
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
        position_id=position,
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
    assert (uni.key, uni.trades, uni.reverted, uni.closes, uni.wins) == ("UNI", 3, 1, 1, 1)
    assert uni.win_rate_percent == D(100)
    assert uni.fees_usd == D("0.63")
    assert uni.gas_usd == D("0.04")  # the reverted swap's gas counts
    assert uni.volume_usd == D(210)
    assert uni.net_pnl_usd == D("10.33") - D("0.63") - D("0.04")
    assert (aave.key, aave.closes, aave.wins, aave.win_rate_percent) == ("AAVE", 1, 0, D(0))
    assert aave.net_pnl_usd == D("-4.865") - D("0.285") - D("0.02")


def test_exits_by_reason_count_sells_only() -> None:
    ok, reverted = TradeStatus.EXECUTED, TradeStatus.REVERTED
    trades = [
        _trade("UNI", "BUY", ok, amount_in_usd="100", fee_usd="0.3"),
        _trade("UNI", "SELL", ok, reason="stop_loss", realized_pnl_usd="-8", net_pnl_usd="-8.3"),
        _trade("AAVE", "SELL", ok, reason="stop_loss", realized_pnl_usd="-2", net_pnl_usd="-2.1"),
        _trade("AAVE", "SELL", reverted, reason="stop_loss", gas_usd="0.5", net_pnl_usd="-0.5"),
        _trade("UNI", "SELL", ok, reason="take_profit", realized_pnl_usd="6", net_pnl_usd="5.9"),
    ]
    stop_loss, take_profit = metrics.per_exit_reason(trades)
    assert (stop_loss.key, stop_loss.trades, stop_loss.reverted) == ("stop_loss", 3, 1)
    assert (stop_loss.closes, stop_loss.wins, stop_loss.win_rate_percent) == (2, 0, D(0))
    assert stop_loss.realized_pnl_usd == D(-10)
    assert stop_loss.net_pnl_usd == D("-10.5")  # the reverted exit's gas
    assert (take_profit.key, take_profit.closes, take_profit.wins) == ("take_profit", 1, 1)
    assert metrics.per_exit_reason(trades[:1]) == []  # a buy is no exit


def test_breakdown_by_month_week_and_day() -> None:
    ok = TradeStatus.EXECUTED

    def at(day: int, hour: int = 0, month: int = 1) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=UTC)

    # Thursday 2026-01-29 .. Monday 2026-02-02.
    equity = [
        (at(29), D(1000)),
        (at(30), D(1100)),
        (at(31, 23), D(990)),
        (at(1, month=2), D(990)),
        (at(2, month=2), D(1089)),
    ]
    trades = [
        _trade("UNI", "BUY", ok, at=at(29), amount_in_usd="500", fee_usd="1.5"),
        _trade("UNI", "SELL", ok, at=at(31, 23), realized_pnl_usd="-8", net_pnl_usd="-9.5"),
        _trade("UNI", "BUY", ok, at=at(2, month=2), amount_in_usd="200", fee_usd="0.6"),
    ]
    january, february = metrics.breakdown(equity, trades, D(1000), "month")
    assert (january.start, january.start_value_usd, january.end_value_usd) == (
        date(2026, 1, 1),
        D(1000),
        D(990),
    )
    assert january.return_percent == D(-1)
    assert (january.trades.trades, january.trades.closes, january.trades.wins) == (2, 1, 0)
    assert january.trades.net_pnl_usd == D(-8) - D("1.5")
    # February starts where January ended.
    assert (february.start_value_usd, february.end_value_usd) == (D(990), D(1089))
    assert february.return_percent == D(10)
    assert february.trades.trades == 1

    weeks = metrics.breakdown(equity, trades, D(1000), "week")
    assert [w.start for w in weeks] == [date(2026, 1, 26), date(2026, 2, 2)]  # Mondays
    assert [w.trades.trades for w in weeks] == [2, 1]
    days = metrics.breakdown(equity, trades, D(1000), "day")
    assert [r.return_percent for r in days] == [D(0), D(10), D(-10), D(0), D(10)]
    assert metrics.breakdown([], trades, D(1000), "day") == []


def test_market_change_is_the_average_buy_and_hold_return() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    weth = [(t0, D(2000)), (t1, D(2500))]  # +25%
    uni = [(t0, D(10)), (t0, D(11)), (t1, D(9))]  # -10%, the middle price does not count
    assert metrics.market_change_percent([weth, uni]) == D("7.5")
    assert metrics.market_change_percent([weth[:1], []]) is None


def test_mean_hold_counts_closed_positions_from_first_buy_to_emptying_sell() -> None:
    ok, reverted = TradeStatus.EXECUTED, TradeStatus.REVERTED
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def at(hour: int) -> datetime:
        return datetime(2026, 1, 1, hour, tzinfo=UTC)

    trades = [
        _trade("UNI", "BUY", ok, at=at(0), position=a, quantity="2"),
        _trade("UNI", "BUY", ok, at=at(1), position=a, quantity="1"),
        _trade("UNI", "SELL", ok, at=at(2), position=a, quantity="1"),  # 2 left
        _trade("UNI", "SELL", reverted, at=at(3), position=a, quantity="2"),  # did not sell
        _trade("UNI", "SELL", ok, at=at(4), position=a, quantity="2"),  # closed: 4 h
        _trade("AAVE", "BUY", ok, at=at(1), position=b, quantity="5"),
        _trade("AAVE", "SELL", ok, at=at(3), position=b, quantity="5"),  # closed: 2 h
        _trade("LINK", "BUY", ok, at=at(2), position=c, quantity="1"),  # still open
    ]
    assert metrics.mean_hold_seconds(trades) == 3 * 3600
    assert metrics.mean_hold_seconds(trades[-1:]) is None
