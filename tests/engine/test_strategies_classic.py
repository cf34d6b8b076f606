"""The classic example strategies on small price paths whose indicators are worked by hand."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from paper_trading.engine.config import TradingConfig
from paper_trading.engine.strategies.base import (
    Action,
    Decision,
    MarketView,
    PositionView,
    Strategy,
)
from paper_trading.engine.strategies.catalog import BUILTIN, build_strategy
from paper_trading.engine.strategies.ma_crossover import MACrossover
from paper_trading.engine.strategies.rsi_reversion import RSIReversion

START = datetime(2026, 1, 1, tzinfo=UTC)
CASH = Decimal(10_000)

# SMA(2) / SMA(4) by hand: bar 7 is 7.5 <= 8.0, bar 8 is (8+10)/2 = 9.0 > (8+7+8+10)/4 = 8.25
# (golden cross); bar 11 is 13.0 > 12.0, bar 12 is 11.0 < 12.0 (death cross).
CROSS_PATH = [10, 10, 10, 10, 9, 8, 7, 8, 10, 12, 14, 12, 10, 8, 6]
# Wilder RSI(3): +1 -1 +1 gives gains 2/3, losses 1/3, RSI 66.7 at bar 3; then 44.4, 29.6
# (bar 5: oversold at 30), 19.8, 13.2, 42.1, 61.4, 74.3 (bar 10: overbought at 70), 82.8.
RSI_PATH = [10, 11, 10, 11, 10, 9, 8, 7, 8, 9, 10, 11, 12]


def view(
    strategy: Strategy,
    prices: Sequence[float],
    bar: int,
    held: Decimal = Decimal(0),
    config: TradingConfig | None = None,
) -> MarketView:
    """Bar `bar` of `prices` as the analyzer shows it, indicators included."""
    rows = strategy.indicators(np.array(prices, dtype=np.float64))
    price = Decimal(str(prices[bar]))
    position = None
    if held:
        position = PositionView(held, price, held * price, Decimal(0), START)
    return MarketView(
        symbol="WETH",
        now=START + timedelta(hours=bar),
        price=price,
        history=[Decimal(str(p)) for p in prices[: bar + 1]],
        bar_seconds=3600,
        position=position,
        cash_usd=CASH,
        portfolio_value_usd=CASH + held * price,
        config=config or TradingConfig(),
        indicators={name: float(values[bar]) for name, values in rows.items()},
    )


def walk(strategy: Strategy, prices: Sequence[float]) -> list[tuple[int, Decision]]:
    """Every non-HOLD decision over `prices`, holding one unit after a BUY until a SELL."""
    held = Decimal(0)
    acted = []
    for bar in range(len(prices)):
        decision = strategy.decide(view(strategy, prices, bar, held))
        if decision.action is not Action.HOLD:
            acted.append((bar, decision))
            held = Decimal(1) if decision.action is Action.BUY else Decimal(0)
    return acted


def test_ma_crossover_buys_on_the_golden_cross_and_sells_on_the_death_cross() -> None:
    strategy = MACrossover.from_params({"fast_period": 2, "slow_period": 4, "size_percent": 10})
    (buy_bar, buy), (sell_bar, sell) = walk(strategy, CROSS_PATH)
    assert (buy_bar, buy.action) == (8, Action.BUY)
    # 10% of $10,000, under the default 25% position cap and the cash.
    assert buy.size_usd == Decimal("1000.00000000")
    assert buy.reasoning == (
        "SMA(2) 9.00 is above SMA(4) 8.25 (+9.09%). Golden cross (it was at or below the bar "
        "before): BUY $1,000.00 (10% size, limited by the 10% position size)."
    )
    assert buy.signals["sma_fast"] == 9.0
    assert buy.signals["sma_slow"] == 8.25
    assert (sell_bar, sell.action, sell.sell_fraction) == (12, Action.SELL, Decimal(1))
    assert "SMA(2) 11.00 is at or below SMA(4) 12.00 (-8.33%). Death cross" in sell.reasoning


def test_ma_crossover_waits_for_the_slow_average_and_explains_the_holds() -> None:
    strategy = MACrossover(2, 4, 10.0)
    assert strategy.warmup_bars == 5
    assert "SMA(4) needs 4 bars" in strategy.decide(view(strategy, CROSS_PATH, 2)).reasoning
    quiet = strategy.decide(view(strategy, CROSS_PATH, 10))
    assert quiet.action is Action.HOLD
    assert quiet.reasoning.endswith("No cross this bar: HOLD.")
    # A death cross with nothing held, and a golden cross when already in.
    assert "nothing held" in strategy.decide(view(strategy, CROSS_PATH, 12)).reasoning
    holding = strategy.decide(view(strategy, CROSS_PATH, 8, held=Decimal(1)))
    assert holding.action is Action.HOLD
    assert "already holding" in holding.reasoning


def test_ma_crossover_sizes_under_the_position_cap_and_minimum_trade() -> None:
    strategy = MACrossover(2, 4, 50.0)
    capped = strategy.decide(view(strategy, CROSS_PATH, 8))
    assert capped.size_usd == Decimal("2500.00000000")
    assert "limited by the 25% position cap" in capped.reasoning
    tiny = strategy.decide(
        view(strategy, CROSS_PATH, 8, config=TradingConfig(min_trade_usd=Decimal(5_000)))
    )
    assert tiny.action is Action.HOLD
    assert "below the $5,000.00 minimum trade" in tiny.reasoning


def test_rsi_reversion_buys_oversold_and_sells_overbought() -> None:
    strategy = RSIReversion.from_params({"period": "3"})
    (buy_bar, buy), (sell_bar, sell) = walk(strategy, RSI_PATH)
    assert (buy_bar, buy.action, buy.size_usd) == (5, Action.BUY, Decimal("1000.00000000"))
    assert buy.reasoning.startswith("RSI(3) is 29.6, oversold (<= 30): BUY $1,000.00")
    # 50 at the threshold, 100 at RSI 0: (30 - 29.63) / 30 past it.
    assert buy.confidence == Decimal("50.6")
    assert (sell_bar, sell.action, sell.sell_fraction) == (10, Action.SELL, Decimal(1))
    assert sell.reasoning == "RSI(3) is 74.3, overbought (>= 70): SELL 100% of the position."


def test_rsi_reversion_does_not_average_down_or_sell_what_it_lacks() -> None:
    strategy = RSIReversion(3, 30.0, 70.0, 10.0)
    still_falling = strategy.decide(view(strategy, RSI_PATH, 6, held=Decimal(1)))
    assert still_falling.action is Action.HOLD
    assert "not averaging down" in still_falling.reasoning
    assert "nothing held" in strategy.decide(view(strategy, RSI_PATH, 11)).reasoning
    assert "needs 4 bars" in strategy.decide(view(strategy, RSI_PATH, 2)).reasoning
    assert "between 30 and 70" in strategy.decide(view(strategy, RSI_PATH, 3)).reasoning


@pytest.mark.parametrize("name", sorted(set(BUILTIN) - {"intel_slider"}))
def test_indicators_never_look_ahead(name: str) -> None:
    """The value at bar i is the same whether or not later bars exist."""
    strategy = build_strategy(name)
    closes = 100 + np.cumsum(np.random.default_rng(7).normal(0, 1, 300))
    full = strategy.indicators(closes)
    for cut in (40, 150, 299):
        partial = strategy.indicators(closes[:cut])
        for key, values in partial.items():
            np.testing.assert_array_equal(values, full[key][:cut], err_msg=key)


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (MACrossover, {"fast_period": 30, "slow_period": 20}, "fast_period (30) must be shorter"),
        (MACrossover, {"fast_period": 1}, "fast_period: 1 is outside [2, 100]"),
        (MACrossover, {"slow_period": "12.5"}, "slow_period: '12.5' is not a whole number"),
        (MACrossover, {"size_percent": "lots"}, "size_percent: 'lots' is not a number"),
        (MACrossover, {"period": 3}, "ma_crossover has no parameter period"),
        (RSIReversion, {"oversold": 50, "overbought": 50}, "oversold (50) must be below"),
        (RSIReversion, {"overbought": 99}, "overbought: 99 is outside [50.0, 95.0]"),
        (RSIReversion, {"period": 1}, "period: 1 is outside [2, 50]"),
    ],
)
def test_parameters_are_validated_with_the_field_named(
    cls: type[Strategy], params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        cls.from_params(params)


def test_declared_defaults_build_and_resolve_to_every_parameter() -> None:
    assert MACrossover.resolve_params({"fast_period": "12"}) == {
        "fast_period": 12,
        "slow_period": 30,
        "size_percent": 10.0,
    }
    rsi = RSIReversion.from_params()
    assert (rsi.period, rsi.oversold, rsi.overbought, rsi.warmup_bars) == (14, 30.0, 70.0, 15)
