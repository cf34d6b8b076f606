"""Circuit breakers and exit rules: each fires exactly at its threshold and says why in numbers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine.config import TradingConfig
from paper_trading.engine.portfolio import Position
from paper_trading.engine.risk import (
    DEFAULT_BREAKERS,
    ConsecutiveFailures,
    DailyLoss,
    DailyTradeLimit,
    MaxHoldTime,
    MaxPortfolioLoss,
    MinimumBalance,
    RiskState,
    StopLoss,
    TakeProfit,
    TrailingStop,
    exit_reason,
    hold_limit,
    tripped_breakers,
)

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
D = Decimal
CONFIG = TradingConfig()


def _state(**changes: object) -> RiskState:
    """A healthy account at the default limits; each test moves one figure."""
    state = RiskState(
        now=NOW,
        initial_balance_usd=D(10_000),
        portfolio_value_usd=D(10_000),
        cash_usd=D(10_000),
        day_start_value_usd=D(10_000),
        trades_today=0,
        consecutive_failures=0,
        last_failure_at=None,
        config=CONFIG,
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def test_defaults_are_the_documented_limits() -> None:
    # The thresholds the tests below rely on.
    assert CONFIG.max_portfolio_loss_percent == 30
    assert CONFIG.daily_loss_limit_percent == 10
    assert CONFIG.max_consecutive_failures == 5
    assert CONFIG.max_daily_trades == 50
    assert CONFIG.min_balance_usd == 100
    assert (CONFIG.stop_loss_percent, CONFIG.take_profit_percent) == (D(5), D(10))
    assert (CONFIG.trailing_stop_percent, CONFIG.max_hold_hours) == (D(0), D(24))


def test_a_healthy_account_trips_nothing() -> None:
    assert tripped_breakers(_state()) == []


# -- circuit breakers ------------------------------------------------------------------------


def test_max_portfolio_loss_trips_below_the_floor_only() -> None:
    breaker = MaxPortfolioLoss()
    # 30% of 10,000: the floor is 7,000; at the floor is still allowed.
    assert breaker.check(_state(portfolio_value_usd=D(7000))) is None
    reason = breaker.check(_state(portfolio_value_usd=D("6999.99")))
    assert reason is not None
    assert reason.code == "max_portfolio_loss"
    # 1 - 6,999.99 / 10,000 = 30.0001% -> "30.00%".
    assert "portfolio $6,999.99 is down 30.00% from the initial $10,000.00" in reason.message
    assert "past the 30% maximum loss" in reason.message


def test_daily_loss_trips_below_the_day_start_floor_only() -> None:
    breaker = DailyLoss()
    start = D(12_000)
    # 10% below 12,000 is 10,800.
    assert breaker.check(_state(day_start_value_usd=start, portfolio_value_usd=D(10_800))) is None
    reason = breaker.check(_state(day_start_value_usd=start, portfolio_value_usd=D("10799.99")))
    assert reason is not None
    assert reason.code == "daily_loss"
    # 1 - 10,799.99 / 12,000 = 10.00008% -> "10.00%".
    assert "down 10.00% today ($12,000.00 -> $10,799.99)" in reason.message
    assert "past the 10% daily loss limit" in reason.message


def test_daily_loss_without_a_day_start_value_does_not_trip() -> None:
    # Before the first tick of a day has set the start value there is nothing to compare with.
    assert DailyLoss().check(_state(day_start_value_usd=D(0), portfolio_value_usd=D(1))) is None


def test_consecutive_failures_trip_at_the_limit_and_clear_after_the_cool_down() -> None:
    breaker = ConsecutiveFailures()
    last = NOW - timedelta(minutes=10)
    assert breaker.check(_state(consecutive_failures=4, last_failure_at=last)) is None
    reason = breaker.check(_state(consecutive_failures=5, last_failure_at=last))
    assert reason is not None
    assert reason.code == "consecutive_failures"
    # Last failure 12:50, one hour of cool-down: entries resume at 13:50.
    assert "5 swaps in a row failed, reverted or dropped (limit 5)" in reason.message
    assert "pausing entries until 2026-01-05 13:50 UTC" in reason.message
    # Still paused a second before the hour is up, clear at the hour.
    one_hour = last + timedelta(hours=1)
    just_before = _state(
        now=one_hour - timedelta(seconds=1), consecutive_failures=5, last_failure_at=last
    )
    assert breaker.check(just_before) is not None
    assert breaker.check(replace(just_before, now=one_hour)) is None


def test_consecutive_failures_need_a_failure_time() -> None:
    assert ConsecutiveFailures().check(_state(consecutive_failures=9)) is None


def test_daily_trade_limit_trips_at_the_limit() -> None:
    breaker = DailyTradeLimit()
    assert breaker.check(_state(trades_today=49)) is None
    reason = breaker.check(_state(trades_today=50))
    assert reason is not None
    assert reason.code == "daily_trade_limit"
    assert "50 trades today reached the daily limit of 50" in reason.message


def test_minimum_balance_trips_below_the_floor_only() -> None:
    breaker = MinimumBalance()
    assert breaker.check(_state(cash_usd=D(100))) is None
    reason = breaker.check(_state(cash_usd=D("99.99")))
    assert reason is not None
    assert reason.code == "minimum_balance"
    assert "cash $99.99 is below the $100.00 minimum balance" in reason.message


def test_breaker_thresholds_follow_the_config() -> None:
    config = TradingConfig(max_daily_trades=3, min_balance_usd=D(5000))
    assert DailyTradeLimit().check(_state(trades_today=2, config=config)) is None
    assert DailyTradeLimit().check(_state(trades_today=3, config=config)) is not None
    assert MinimumBalance().check(_state(cash_usd=D(5000), config=config)) is None
    assert MinimumBalance().check(_state(cash_usd=D("4999.99"), config=config)) is not None


def test_tripped_breakers_lists_every_reason_in_order() -> None:
    state = _state(
        portfolio_value_usd=D(6000),
        cash_usd=D(50),
        trades_today=50,
        consecutive_failures=5,
        last_failure_at=NOW,
    )
    codes = [r.code for r in tripped_breakers(state)]
    assert codes == [b.name for b in DEFAULT_BREAKERS]
    assert codes == [
        "max_portfolio_loss",
        "daily_loss",
        "consecutive_failures",
        "daily_trade_limit",
        "minimum_balance",
    ]
    assert [r.code for r in tripped_breakers(state, (MinimumBalance(),))] == ["minimum_balance"]


# -- exit rules ------------------------------------------------------------------------------


def _position(price: str = "100", *, peak: str | None = None) -> Position:
    """10 tokens on a cost basis of 1,000: average entry 100, opened at NOW."""
    position = Position(
        position_id=uuid.UUID(int=1),
        symbol="LINK",
        chain_id=8453,
        token_address="0xlink",
        quantity=D(10),
        cost_basis_usd=D(1000),
        entry_costs_usd=D(3),
        opened_at=NOW,
        current_price_usd=D(100),
        peak_price_usd=D(100),
    )
    if peak is not None:
        position.revalue(D(peak))
    position.revalue(D(price))
    return position


def test_stop_loss_fires_at_minus_five_percent() -> None:
    rule = StopLoss()
    # 10 x 95.01 = 950.1 against 1,000: -4.99%.
    assert rule.check(_position("95.01"), NOW, CONFIG) is None
    reason = rule.check(_position("95"), NOW, CONFIG)
    assert reason is not None
    assert reason.code == "stop_loss"
    assert reason.message == (
        "stop-loss: LINK at $95.00 is -5.00% from the average entry $100.00 (limit -5%)"
    )


def test_take_profit_fires_at_plus_ten_percent() -> None:
    rule = TakeProfit()
    assert rule.check(_position("109.99"), NOW, CONFIG) is None  # +9.99%
    reason = rule.check(_position("110"), NOW, CONFIG)
    assert reason is not None
    assert reason.code == "take_profit"
    assert reason.message == (
        "take-profit: LINK at $110.00 is +10.00% over the average entry $100.00 (target +10%)"
    )


def test_trailing_stop_fires_after_a_peak() -> None:
    rule = TrailingStop()
    config = TradingConfig(trailing_stop_percent=D(5))
    # Peak 120 and a 5% trail: the stop is at 114.
    assert rule.check(_position("114.01", peak="120"), NOW, config) is None
    reason = rule.check(_position("114", peak="120"), NOW, config)
    assert reason is not None
    assert reason.code == "trailing_stop"
    assert reason.message == (
        "trailing stop: LINK fell 5.00% from its peak $120.00 to $114.00 (trail 5%)"
    )


def test_trailing_stop_waits_for_a_peak_above_the_entry() -> None:
    config = TradingConfig(trailing_stop_percent=D(5))
    # Never above the entry of 100: a fall from there is the stop-loss's job.
    assert TrailingStop().check(_position("90"), NOW, config) is None
    # One cent above the entry arms it.
    assert TrailingStop().check(_position("90", peak="100.01"), NOW, config) is not None


def test_max_hold_time_fires_at_24_hours() -> None:
    rule = MaxHoldTime()
    position = _position()
    assert rule.check(position, NOW + timedelta(hours=24, seconds=-1), CONFIG) is None
    reason = rule.check(position, NOW + timedelta(hours=24), CONFIG)
    assert reason is not None
    assert reason.code == "max_hold_time"
    assert reason.message == "max hold time: LINK held 24 h (limit 24 h)"
    later = rule.check(position, NOW + timedelta(hours=30, minutes=30), CONFIG)
    assert later is not None
    assert "held 30.5 h" in later.message


def test_hold_limit_is_the_setting_in_hours() -> None:
    # Equal settings written differently (kept once) are the same limit.
    assert hold_limit(D("1.5")) == timedelta(minutes=90)
    assert hold_limit(D(24)) == hold_limit(D("24.00")) == timedelta(days=1)
    assert hold_limit(D("0.001")) == timedelta(seconds=3.6)


@pytest.mark.parametrize(
    ("config", "position", "now"),
    [
        pytest.param(
            TradingConfig(stop_loss_percent=D(0)), _position("1"), NOW, id="stop-loss-off"
        ),
        pytest.param(
            TradingConfig(take_profit_percent=D(0)), _position("1000"), NOW, id="take-profit-off"
        ),
        pytest.param(
            TradingConfig(trailing_stop_percent=D(0)),
            _position("100.5", peak="1000"),
            NOW,
            id="trailing-stop-off",
        ),
        pytest.param(
            TradingConfig(max_hold_hours=D(0)),
            _position(),
            NOW + timedelta(days=365),
            id="max-hold-off",
        ),
    ],
)
def test_disabled_exit_rules_never_fire(
    config: TradingConfig, position: Position, now: datetime
) -> None:
    # Each case is far past the rule's default threshold; with the rule at 0 nothing fires.
    assert exit_reason(position, now, config) is None


def test_exit_reason_puts_the_stop_loss_first() -> None:
    config = TradingConfig(trailing_stop_percent=D(5))
    # Down 10% from the entry, 25% off a 120 peak, and held for two days: all three fire.
    position = _position("90", peak="120")
    late = NOW + timedelta(hours=48)
    assert StopLoss().check(position, late, config) is not None
    assert TrailingStop().check(position, late, config) is not None
    assert MaxHoldTime().check(position, late, config) is not None
    reason = exit_reason(position, late, config)
    assert reason is not None
    assert reason.code == "stop_loss"


def test_exit_reason_takes_profit_before_the_hold_limit() -> None:
    reason = exit_reason(_position("120"), NOW + timedelta(hours=48), CONFIG)
    assert reason is not None
    assert reason.code == "take_profit"


def test_exit_reason_is_none_inside_every_limit() -> None:
    config = TradingConfig(trailing_stop_percent=D(5))
    assert exit_reason(_position("104", peak="105"), NOW + timedelta(hours=23), config) is None
