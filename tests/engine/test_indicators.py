"""Indicators checked against values worked out by hand."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trading.engine.strategies import indicators


def prices(*values: float | str) -> list[Decimal]:
    return [Decimal(str(v)) for v in values]


def test_sma_averages_only_the_last_period_prices() -> None:
    assert indicators.sma(prices(1, 2, 3, 4, 5), 3) == pytest.approx(4.0)
    assert indicators.sma(prices(10), 1) == pytest.approx(10.0)


def test_ema_is_seeded_with_the_sma_then_smoothed() -> None:
    # period 3: seed = mean(1, 2, 3) = 2, alpha = 0.5; then 0.5*4 + 0.5*2 = 3; 0.5*5 + 0.5*3 = 4.
    assert indicators.ema(prices(1, 2, 3, 4, 5), 3) == pytest.approx(4.0)
    # With exactly `period` prices the EMA is the SMA.
    assert indicators.ema(prices(1, 2, 3), 3) == pytest.approx(2.0)


def test_rate_of_change_is_percent_over_n_bars() -> None:
    assert indicators.rate_of_change(prices(90, 100, 105, 110), 2) == pytest.approx(10.0)
    assert indicators.rate_of_change(prices(100, 80), 1) == pytest.approx(-20.0)


def test_volatility_is_sample_stdev_of_log_returns_in_percent() -> None:
    # Returns ln(1.1) and ln(0.9); the sample stdev of two values is |a - b| / sqrt(2).
    expected = abs(math.log(1.1) - math.log(0.9)) / math.sqrt(2) * 100
    assert indicators.volatility(prices(100, 110, 99), 2) == pytest.approx(expected)
    assert expected == pytest.approx(14.19, abs=0.01)
    # Only the last `period` returns count.
    assert indicators.volatility(prices(1, 100, 110, 99), 2) == pytest.approx(expected)


@given(st.lists(st.floats(min_value=1e-6, max_value=1e9), min_size=3, max_size=80))
def test_volatility_is_the_textbook_formula_to_the_bit(closes: list[float]) -> None:
    # The sample stdev written out plainly; the engine's mapped version must match exactly,
    # since a swap's simulated price drift is drawn with it.
    period = len(closes) - 1
    returns = [math.log(b / a) for a, b in itertools.pairwise(closes)]
    mean = statistics.fmean(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    assert indicators.volatility(closes, period) == math.sqrt(variance) * 100.0


def test_volatility_of_a_constant_growth_series_is_zero() -> None:
    assert indicators.volatility(prices(100, 110, 121, "133.1"), 3) == pytest.approx(0.0, abs=1e-9)


def test_rsi_uses_wilder_smoothing() -> None:
    # Changes +1 +1 -1 +1 +1, period 3.
    # Seed: avg gain 2/3, avg loss 1/3. Next +1: gain (2/3*2 + 1)/3 = 7/9, loss (1/3*2)/3 = 2/9.
    # Next +1: gain (7/9*2 + 1)/3 = 23/27, loss (2/9*2)/3 = 4/27. RSI = 100 - 100/(1 + 23/4).
    assert indicators.rsi(prices(1, 2, 3, 2, 3, 4), 3) == pytest.approx(100 * 23 / 27)
    assert indicators.rsi(prices(1, 2, 3, 2, 3, 4), 3) == pytest.approx(85.185, abs=0.001)


def test_rsi_extremes() -> None:
    assert indicators.rsi(prices(1, 2, 3, 4), 3) == pytest.approx(100.0)
    assert indicators.rsi(prices(4, 3, 2, 1), 3) == pytest.approx(0.0)
    assert indicators.rsi(prices(5, 5, 5, 5), 3) == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("indicator", "series", "period"),
    [
        (indicators.sma, prices(1, 2), 3),
        (indicators.ema, prices(1, 2), 3),
        (indicators.rate_of_change, prices(1, 2, 3), 3),
        (indicators.volatility, prices(1, 2, 3), 3),
        (indicators.rsi, prices(1, 2, 3), 3),
        (indicators.sma, [], 1),
    ],
)
def test_too_little_history_gives_none(
    indicator: Callable[[Sequence[Decimal], int], float | None], series: list[Decimal], period: int
) -> None:
    assert indicator(series, period) is None


def test_invalid_periods_are_rejected() -> None:
    with pytest.raises(ValueError, match="period must be at least 1"):
        indicators.sma(prices(1, 2), 0)
    with pytest.raises(ValueError, match="period must be at least 2"):
        indicators.volatility(prices(1, 2, 3), 1)
