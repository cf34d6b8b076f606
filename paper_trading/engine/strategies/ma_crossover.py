"""Moving-average crossover: buy when the fast SMA crosses above the slow one, sell on the reverse.

The classic trend follower, and the strategy the throughput benchmark runs. Its averages come
from TA-Lib over the whole series at once; `decide` only reads this bar's values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

import numpy as np

from paper_trading.engine import money
from paper_trading.engine.strategies.base import (
    Action,
    BoolArray,
    Decision,
    FloatArray,
    MarketView,
    Parameter,
    Strategy,
)
from paper_trading.engine.strategies.wording import number, price, usd

#: Confidence of a rule-based signal: a cross either happened this bar or it did not.
_CERTAIN = money.ratio(100)
_NONE = money.ratio(0)


def crossings(fast: FloatArray, slow: FloatArray) -> FloatArray:
    """+1 where `fast` closes above `slow` after being at or below it, -1 for the reverse, else 0.

    A bar where either average is still NaN (or was on the previous bar) is never a cross.
    """
    above = fast > slow
    below_or_equal = fast <= slow
    known = ~(np.isnan(fast) | np.isnan(slow))
    result = np.zeros(len(fast))
    if len(fast) > 1:
        both = known[1:] & known[:-1]
        result[1:][both & above[1:] & below_or_equal[:-1]] = 1.0
        result[1:][both & below_or_equal[1:] & above[:-1]] = -1.0
    return result


class MACrossover(Strategy):
    """Long while the fast average is above the slow one, entered and left on the crosses."""

    name = "ma_crossover"
    parameters = MappingProxyType(
        {
            "fast_period": Parameter(10, 2, 100, description="Bars in the fast SMA"),
            "slow_period": Parameter(30, 3, 200, step=5, description="Bars in the slow SMA"),
            "size_percent": Parameter(
                10.0, 1.0, 100.0, step=5.0, description="Entry size, % of portfolio value"
            ),
        }
    )

    def __init__(self, fast_period: int, slow_period: int, size_percent: float) -> None:
        if fast_period >= slow_period:
            raise ValueError(
                f"fast_period ({fast_period}) must be shorter than slow_period ({slow_period})"
            )
        self.fast_period = fast_period
        self.slow_period = slow_period
        self.size_percent = Decimal(str(size_percent))
        # One bar more than the slow SMA needs, to see the bar before a cross.
        self.warmup_bars = slow_period + 1

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        import talib  # here: TA-Lib (~5 MB) only in a process that runs this strategy

        fast = talib.SMA(closes, timeperiod=self.fast_period)
        slow = talib.SMA(closes, timeperiod=self.slow_period)
        return {"sma_fast": fast, "sma_slow": slow, "cross": crossings(fast, slow)}

    def active_bars(self, indicators: Mapping[str, FloatArray]) -> BoolArray:
        """Only a cross can trade."""
        return np.asarray(indicators["cross"] != 0)

    def decide(self, view: MarketView) -> Decision:
        fast = view.indicators["sma_fast"]
        slow = view.indicators["sma_slow"]
        cross = view.indicators["cross"]
        held = view.position is not None and view.position.quantity > 0
        if math.isnan(slow):
            return self._decision(
                view,
                Action.HOLD,
                f"SMA({self.slow_period}) needs {self.slow_period} bars of {view.symbol} "
                "history; waiting: HOLD.",
                {},
            )
        gap = (fast / slow - 1.0) * 100.0
        signals: dict[str, float | str] = {
            "price": float(view.price),
            "sma_fast": fast,
            "sma_slow": slow,
            "gap_percent": gap,
            "cross": cross,
        }
        where = "above" if fast > slow else "at or below"
        market = (
            f"SMA({self.fast_period}) {price(fast)} is {where} SMA({self.slow_period}) "
            f"{price(slow)} ({gap:+.2f}%)."
        )
        if cross > 0 and held:
            return self._decision(
                view, Action.HOLD, f"{market} Golden cross, but already holding: HOLD.", signals
            )
        if cross > 0:
            size, limit = view.buy_budget(self.size_percent)
            if size < view.config.min_trade_usd:
                return self._decision(
                    view,
                    Action.HOLD,
                    f"{market} Golden cross, but {limit} allows only {usd(size)}, below the "
                    f"{usd(view.config.min_trade_usd)} minimum trade: HOLD.",
                    signals,
                )
            return self._decision(
                view,
                Action.BUY,
                f"{market} Golden cross (it was at or below the bar before): BUY {usd(size)} "
                f"({number(self.size_percent)}% size, limited by {limit}).",
                signals,
                size=size,
            )
        if cross < 0 and held:
            return self._decision(
                view,
                Action.SELL,
                f"{market} Death cross (it was above the bar before): SELL 100% of the position.",
                signals,
            )
        if cross < 0:
            return self._decision(
                view, Action.HOLD, f"{market} Death cross, but nothing held: HOLD.", signals
            )
        return self._decision(view, Action.HOLD, f"{market} No cross this bar: HOLD.", signals)

    def _decision(
        self,
        view: MarketView,
        action: Action,
        reasoning: str,
        signals: Mapping[str, float | str],
        *,
        size: Decimal = money.ZERO,
    ) -> Decision:
        return Decision(
            action=action,
            symbol=view.symbol,
            size_usd=size,
            sell_fraction=money.ONE if action is Action.SELL else money.ZERO,
            confidence=_NONE if action is Action.HOLD else _CERTAIN,
            risk_score=_NONE,
            opportunity_score=_NONE,
            reasoning=reasoning,
            signals={
                "fast_period": self.fast_period,
                "slow_period": self.slow_period,
                **signals,
            },
        )
