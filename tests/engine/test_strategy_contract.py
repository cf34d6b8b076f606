"""The look-ahead check: a strategy's indicators over a recording may not read later closes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import numpy as np
import pytest

from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.base import (
    Action,
    BoolArray,
    Decision,
    FloatArray,
    MarketView,
    Strategy,
)
from paper_trading.engine.strategies.catalog import BUILTIN
from paper_trading.engine.strategies.contract import StrategyContractError, checked_indicators
from paper_trading.engine.strategies.ma_crossover import MACrossover

ETH = ReplaySource(symbols=["ETH"]).recording("ETH")[2]

#: A user's strategy file whose indicator is tomorrow's close (for the commands' tests).
PEEKING_STRATEGY = """
from decimal import Decimal

import numpy as np

from paper_trading.engine.strategies.base import Action, Decision, MarketView, Strategy


class Peek(Strategy):
    name = "peek"

    def indicators(self, closes):
        return {"next_close": np.append(closes[1:], np.nan)}

    def decide(self, view: MarketView) -> Decision:
        up = view.indicators["next_close"] > float(view.price)
        return Decision(Action.BUY if up else Action.SELL, view.symbol, Decimal(100), Decimal(1),
                        Decimal(90), Decimal(10), Decimal(50), "knows tomorrow")
"""


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_the_built_in_strategies_do_not_look_ahead(name: str) -> None:
    strategy = BUILTIN[name].from_params()
    arrays, active = checked_indicators(strategy, ETH)
    assert bool(arrays) == strategy.computes_indicators
    assert all(len(values) == len(ETH) for values in arrays.values())
    assert active is None or len(active) == len(ETH)


class NextClose(MACrossover):
    """Adds tomorrow's close: the classic shift(-1) mistake."""

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        return {**super().indicators(closes), "next_close": np.append(closes[1:], np.nan)}


class Holds(Strategy):
    """A strategy for its indicators only."""

    name = "holds"

    def decide(self, view: MarketView) -> Decision:
        zero = Decimal(0)
        return Decision(Action.HOLD, view.symbol, zero, zero, zero, zero, zero, "indicators only")


class WholeSeriesZScore(Holds):
    """Normalises by the mean and spread of the whole series, known only at its end."""

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        return {"z": (closes - closes.mean()) / closes.std()}


class CentredWindow(Holds):
    """A moving average centred on the bar: half of its window is in the future."""

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        centred = np.convolve(closes, np.ones(5) / 5, mode="same")
        return {"centred": centred}


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        (
            NextClose(5, 20, 20.0),
            r"ma_crossover.indicators\(\) looks ahead: 'next_close' at bar \d+ is [\d.]+ over the "
            r"whole series but nan over the first \d+ closes",
        ),
        (WholeSeriesZScore(), r"looks ahead: 'z' at bar 0 is "),
        (CentredWindow(), r"looks ahead: 'centred' at bar \d+ "),
    ],
)
def test_indicators_that_read_later_closes_are_refused(strategy: Strategy, message: str) -> None:
    with pytest.raises(StrategyContractError, match=message):
        checked_indicators(strategy, ETH)


class FlagsTheBarBeforeACross(MACrossover):
    """Marks a bar active when the *next* bar crosses: skips ahead of its own signal."""

    def active_bars(self, indicators: Mapping[str, FloatArray]) -> BoolArray:
        return np.append(super().active_bars(indicators)[1:], False)


def test_active_bars_that_look_ahead_are_refused() -> None:
    with pytest.raises(StrategyContractError, match=r"active_bars\(\) flags bar \d+ differently"):
        checked_indicators(FlagsTheBarBeforeACross(5, 20, 20.0), ETH)


class OnlyWithEnoughHistory(MACrossover):
    """Returns an indicator only for long series: the set of indicators depends on the data."""

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        extra = {"long": closes.copy()} if len(closes) == len(ETH) else {}
        return {**super().indicators(closes), **extra}


def test_the_same_indicators_are_needed_for_any_series() -> None:
    with pytest.raises(StrategyContractError, match=r"returned no 'long' for the first \d+"):
        checked_indicators(OnlyWithEnoughHistory(5, 20, 20.0), ETH)


class ShortFlags(MACrossover):
    def active_bars(self, indicators: Mapping[str, FloatArray]) -> BoolArray:
        return np.zeros(3, dtype=np.bool_)


def test_active_bars_must_line_up_with_the_closes() -> None:
    with pytest.raises(StrategyContractError, match=r"returned 3 flags for \d+ closes"):
        checked_indicators(ShortFlags(5, 20, 20.0), ETH)


def test_float_noise_is_not_look_ahead() -> None:
    class Noisy(Holds):
        """Adds a relative error of 1e-12 that depends on the series length."""

        def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
            return {"noisy": closes * (1 + 1e-12 * (len(closes) % 7))}

    arrays, _ = checked_indicators(Noisy(), ETH)
    assert np.allclose(arrays["noisy"], ETH)
