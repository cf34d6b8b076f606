"""The Intel slider engine: gates, sizing, explanations and level monotonicity."""

from __future__ import annotations

import itertools
import math
import random
import re
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trading.engine import money
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.strategies.base import Action, Decision, MarketView, PositionView
from paper_trading.engine.strategies.intel_slider import (
    WINDOW,
    IntelSliderEngine,
    profile_for,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
LEVELS = range(1, 11)


def series(start: Decimal, pattern: Sequence[str], bars: int) -> list[Decimal]:
    """Prices stepping by the percent moves in `pattern`, repeated."""
    out: list[Decimal] = []
    price = start
    for i in range(bars):
        price = (price * (1 + Decimal(pattern[i % len(pattern)]) / 100)).quantize(Decimal("1e-6"))
        out.append(price)
    return out


#: Two steps up, one smaller step down: a clear but not parabolic uptrend (RSI about 73).
UPTREND = series(Decimal(3000), ["0.8", "0.8", "-0.6"], WINDOW)
DOWNTREND = series(Decimal(3000), ["-0.8", "-0.8", "0.6"], WINDOW)
#: A steep rally whose last three bars dip: RSI about 92 with short momentum fading.
_RALLY = series(Decimal(3000), ["1.0"], WINDOW - 3)
FADING_RALLY = _RALLY + series(_RALLY[-1], ["-0.3"], 3)
#: A long fall with a recent bounce: trend still down, 12-bar momentum slightly up.
_FALL = series(Decimal(3000), ["-1.0"], WINDOW - 11)
BOUNCE = _FALL + series(_FALL[-1], ["0.4", "-0.1"], 11)


def position(quantity: str, pnl_percent: str = "2") -> PositionView:
    return PositionView(
        quantity=Decimal(quantity),
        average_entry_price_usd=Decimal(3000),
        cost_basis_usd=Decimal(3000) * Decimal(quantity),
        unrealized_pnl_percent=Decimal(pnl_percent),
        opened_at=NOW,
    )


def view(
    history: Sequence[Decimal],
    *,
    held: PositionView | None = None,
    cash: Decimal = Decimal(10_000),
    portfolio: Decimal = Decimal(10_000),
    config: TradingConfig | None = None,
    bar_seconds: int = 3600,
    symbol: str = "WETH",
) -> MarketView:
    return MarketView(
        symbol=symbol,
        now=NOW,
        price=history[-1] if history else Decimal(3000),
        history=history,
        bar_seconds=bar_seconds,
        position=held,
        cash_usd=cash,
        portfolio_value_usd=portfolio,
        config=config or TradingConfig(),
    )


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def assert_well_formed(decision: Decision) -> None:
    assert 2 <= len(sentences(decision.reasoning)) <= 4, decision.reasoning
    assert decision.action.value in decision.reasoning
    for score in (decision.confidence, decision.risk_score, decision.opportunity_score):
        assert Decimal(0) <= score <= Decimal(100)
        assert score == money.ratio(score)
    assert decision.size_usd == money.usd(decision.size_usd)
    if decision.action is Action.BUY:
        assert decision.size_usd > 0
        assert decision.sell_fraction == 0
    elif decision.action is Action.SELL:
        assert decision.size_usd == 0
        assert Decimal(0) < decision.sell_fraction <= 1
    else:
        assert decision.size_usd == 0
        assert decision.sell_fraction == 0


# -- profiles -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 11, -1, 100])
def test_invalid_levels_raise(level: int) -> None:
    message = f"intel level must be between 1 and 10, got {level}"
    with pytest.raises(ValueError, match=message):
        IntelSliderEngine(level)
    with pytest.raises(ValueError, match=message):
        profile_for(level)


def test_profiles_are_monotonic_from_cautious_to_aggressive() -> None:
    profiles = [profile_for(level) for level in LEVELS]
    assert [p.level for p in profiles] == list(LEVELS)
    for low, high in itertools.pairwise(profiles):
        assert low.position_size_percent < high.position_size_percent
        assert low.volatility_tolerance_percent < high.volatility_tolerance_percent
        assert low.min_confidence > high.min_confidence
        assert low.min_signal_strength > high.min_signal_strength
        assert low.max_entry_rsi < high.max_entry_rsi
    assert profiles[0].position_size_percent <= 2
    assert profiles[-1].position_size_percent >= 25


def test_engine_identity() -> None:
    engine = IntelSliderEngine(7)
    assert engine.name == "intel_slider"
    assert engine.level == 7
    assert engine.profile == profile_for(7)
    assert 26 <= engine.warmup_bars <= 50


# -- decisions ------------------------------------------------------------------------------


def test_warmup_holds_and_says_why() -> None:
    decision = IntelSliderEngine(5).decide(view(UPTREND[:8]))
    assert decision.action is Action.HOLD
    assert f"Only 8 of {WINDOW} bars of history; waiting before judging WETH." in (
        decision.reasoning
    )
    assert decision.signals["bars"] == 8
    assert_well_formed(decision)


def test_empty_history_holds() -> None:
    decision = IntelSliderEngine(5).decide(view([]))
    assert decision.action is Action.HOLD
    assert "Only 0 of" in decision.reasoning


def test_buys_a_clear_uptrend_with_cash_and_cites_the_numbers() -> None:
    decision = IntelSliderEngine(5).decide(view(UPTREND))
    assert decision.action is Action.BUY
    # Level 5 sizes 10% of the $10,000 portfolio, below the default 25% cap.
    assert decision.size_usd == Decimal("1000.00000000")
    assert decision.confidence >= 60
    assert_well_formed(decision)

    floats = [float(p) for p in UPTREND]
    sma_short = statistics.fmean(floats[-12:])
    sma_long = statistics.fmean(floats[-26:])
    assert f"WETH at {floats[-1]:,.2f}" in decision.reasoning
    assert f"SMA(12) {sma_short:,.2f}" in decision.reasoning
    assert f"SMA(26) {sma_long:,.2f}" in decision.reasoning
    assert f"{(sma_short / sma_long - 1) * 100:.2f}% above" in decision.reasoning
    assert f"confidence {decision.confidence:.1f} >= 60 required at level 5" in decision.reasoning
    assert "BUY $1,000.00 (10.0% of portfolio" in decision.reasoning
    assert decision.signals["sma_short"] == pytest.approx(sma_short)
    assert decision.signals["profile"] == "Balanced"


def test_every_level_buys_a_clear_uptrend_and_bigger_levels_buy_more() -> None:
    sizes = [IntelSliderEngine(level).decide(view(UPTREND)).size_usd for level in range(2, 11)]
    assert all(size > 0 for size in sizes)
    assert sizes == sorted(sizes)


def test_sells_a_held_position_in_a_clear_downtrend() -> None:
    decision = IntelSliderEngine(5).decide(view(DOWNTREND, held=position("0.5")))
    assert decision.action is Action.SELL
    assert decision.sell_fraction == 1
    assert "below SMA(26)" in decision.reasoning
    assert "SELL 100% of the position" in decision.reasoning
    assert "+2.00% unrealized" in decision.reasoning
    assert_well_formed(decision)


def test_downtrend_without_a_position_holds() -> None:
    decision = IntelSliderEngine(10).decide(view(DOWNTREND))
    assert decision.action is Action.HOLD
    assert "no WETH to sell" in decision.reasoning
    assert_well_formed(decision)


def test_weak_bearish_reading_sells_half_of_a_winner_and_all_of_a_loser() -> None:
    engine = IntelSliderEngine(5)
    winner = engine.decide(view(BOUNCE, held=position("0.5", pnl_percent="1.5")))
    assert winner.action is Action.SELL
    assert winner.sell_fraction == Decimal("0.5")
    assert "SELL 50%" in winner.reasoning
    loser = engine.decide(view(BOUNCE, held=position("0.5", pnl_percent="-3")))
    assert loser.action is Action.SELL
    assert loser.sell_fraction == 1
    assert "losing (-3.00%)" in loser.reasoning
    assert_well_formed(winner)
    assert_well_formed(loser)


def test_overbought_rally_that_fades_trims_a_held_position() -> None:
    decision = IntelSliderEngine(5).decide(view(FADING_RALLY, held=position("0.3")))
    assert decision.action is Action.SELL
    assert decision.sell_fraction == Decimal("0.5")
    assert "overbought" in decision.reasoning
    assert_well_formed(decision)


def test_stretched_rally_is_not_chased() -> None:
    decision = IntelSliderEngine(5).decide(view(FADING_RALLY))
    assert decision.action is Action.HOLD
    assert "entry ceiling of 83" in decision.reasoning
    assert_well_formed(decision)


def test_holds_when_already_at_max_position_size() -> None:
    # One WETH at ~3,400 is ~34% of a $10,000 portfolio: above the 25% cap.
    decision = IntelSliderEngine(10).decide(view(UPTREND, held=position("1")))
    assert decision.action is Action.HOLD
    assert "already at or above the 25% position cap ($2,500.00)" in decision.reasoning
    assert_well_formed(decision)


def test_adding_to_a_position_stops_at_the_cap() -> None:
    held = position("0.2")
    held_usd = money.usd(held.quantity * UPTREND[-1])
    decision = IntelSliderEngine(9).decide(view(UPTREND, held=held))
    assert decision.action is Action.BUY
    assert decision.size_usd == money.usd(Decimal(2500) - held_usd)
    assert "room left under the 25% position cap" in decision.reasoning


@pytest.mark.parametrize("cash", [Decimal(0), Decimal(5)])
def test_no_buy_without_cash(cash: Decimal) -> None:
    decision = IntelSliderEngine(10).decide(view(UPTREND, cash=cash))
    assert decision.action is Action.HOLD
    assert "available cash" in decision.reasoning
    assert "minimum trade" in decision.reasoning
    assert_well_formed(decision)


def test_user_confidence_threshold_applies_when_stricter_than_the_level() -> None:
    config = TradingConfig(confidence_threshold=Decimal(99))
    decision = IntelSliderEngine(10).decide(view(UPTREND, config=config))
    assert decision.action is Action.HOLD
    assert "< 99 required at level 10" in decision.reasoning


def test_volatility_beyond_tolerance_lowers_confidence_and_raises_risk() -> None:
    calm = IntelSliderEngine(5).decide(view(UPTREND, bar_seconds=3600))
    # Same prices on one-minute bars: the same moves are far wilder per unit of time.
    wild = IntelSliderEngine(5).decide(view(UPTREND, bar_seconds=60))
    assert wild.confidence < calm.confidence
    assert wild.risk_score > calm.risk_score
    assert "above level 5's tolerance" in wild.reasoning


def test_risk_is_judged_against_each_levels_tolerance() -> None:
    risks = [IntelSliderEngine(level).decide(view(UPTREND)).risk_score for level in LEVELS]
    assert risks == sorted(risks, reverse=True)


def test_sub_dollar_prices_keep_significant_digits() -> None:
    history = [p / Decimal(100_000_000) for p in UPTREND]
    decision = IntelSliderEngine(5).decide(view(history, symbol="PEPE"))
    assert f"PEPE at {float(history[-1]):.8f}" in decision.reasoning
    assert decision.action is Action.BUY


def test_decisions_are_deterministic_and_ignore_history_beyond_the_window() -> None:
    engine = IntelSliderEngine(6)
    longer = series(Decimal(2000), ["3", "-2"], 30) + UPTREND
    first = engine.decide(view(UPTREND))
    assert engine.decide(view(UPTREND)) == first
    assert IntelSliderEngine(6).decide(view(longer)) == first


@given(
    level=st.integers(min_value=1, max_value=10),
    cap_percent=st.decimals(min_value=1, max_value=100, places=1),
    cash=st.decimals(min_value=0, max_value=1_000_000, places=2),
    portfolio=st.decimals(min_value=1, max_value=1_000_000, places=2),
    quantity=st.sampled_from(["0", "0.001", "0.1", "1", "10"]),
)
def test_size_never_exceeds_cash_or_the_position_cap(
    level: int, cap_percent: Decimal, cash: Decimal, portfolio: Decimal, quantity: str
) -> None:
    config = TradingConfig(max_position_size_percent=cap_percent)
    held = position(quantity) if quantity != "0" else None
    decision = IntelSliderEngine(level).decide(
        view(UPTREND, held=held, cash=cash, portfolio=portfolio, config=config)
    )
    assert_well_formed(decision)
    held_usd = Decimal(quantity) * UPTREND[-1]
    if decision.action is Action.BUY:
        assert decision.size_usd <= cash
        assert decision.size_usd + held_usd <= portfolio * cap_percent / 100 + Decimal("1e-8")
        assert decision.size_usd >= config.min_trade_usd


# -- monotonicity across levels -------------------------------------------------------------


def random_walk(seed: int, bars: int) -> list[Decimal]:
    rng = random.Random(seed)
    price = 3000.0
    out = []
    for _ in range(bars):
        price *= math.exp(rng.gauss(0.0, 0.01))
        out.append(Decimal(f"{price:.6f}"))
    return out


@pytest.mark.parametrize("seed", [1, 7])
def test_higher_levels_trade_at_least_as_often_and_as_large(seed: int) -> None:
    prices = random_walk(seed, 400)
    engines = [IntelSliderEngine(level) for level in LEVELS]
    buys = [0] * len(engines)
    sells = [0] * len(engines)
    for end in range(WINDOW, len(prices) + 1):
        history = prices[:end]
        flat = [engine.decide(view(history)) for engine in engines]
        holding = [
            engine.decide(view(history, held=position("0.5"), portfolio=Decimal(11_500)))
            for engine in engines
        ]
        for i, (lower, higher) in enumerate(itertools.pairwise(flat)):
            if lower.action is Action.BUY:
                assert higher.action is Action.BUY, (end, i + 1)
                assert higher.size_usd >= lower.size_usd
        for i, (lower, higher) in enumerate(itertools.pairwise(holding)):
            if lower.action is Action.SELL:
                assert higher.action is Action.SELL, (end, i + 1)
                assert higher.sell_fraction >= lower.sell_fraction
        for i, (buy, sell) in enumerate(zip(flat, holding, strict=True)):
            buys[i] += buy.action is Action.BUY
            sells[i] += sell.action is Action.SELL
    assert buys == sorted(buys)
    assert sells == sorted(sells)
    # The slider must actually matter, not just be weakly ordered.
    assert buys[-1] > 2 * buys[0] + 20
    assert sells[-1] > sells[0]
