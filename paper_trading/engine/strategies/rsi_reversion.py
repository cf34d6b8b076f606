"""RSI mean-reversion: buy a token that has fallen too far too fast, sell it once it has bounced.

Wilder's RSI from TA-Lib over the whole series. Wilder smoothing remembers every bar, so a
replay (RSI over the full recording) and a live bot (RSI over its rolling history) can differ in
the decimals; replays and backtests over the same data always agree.
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
from paper_trading.engine.strategies.wording import number, usd


class RSIReversion(Strategy):
    """Long when RSI drops to `oversold`, flat again when it reaches `overbought`."""

    name = "rsi_reversion"
    parameters = MappingProxyType(
        {
            "period": Parameter(14, 2, 50, description="Bars in Wilder's RSI"),
            "oversold": Parameter(30.0, 5.0, 50.0, step=5.0, description="Buy at or below"),
            "overbought": Parameter(70.0, 50.0, 95.0, step=5.0, description="Sell at or above"),
            "size_percent": Parameter(
                10.0, 1.0, 100.0, step=5.0, description="Entry size, % of portfolio value"
            ),
        }
    )

    def __init__(
        self, period: int, oversold: float, overbought: float, size_percent: float
    ) -> None:
        if oversold >= overbought:
            raise ValueError(f"oversold ({oversold:g}) must be below overbought ({overbought:g})")
        self.period = period
        self.oversold = oversold
        self.overbought = overbought
        self.size_percent = Decimal(str(size_percent))
        self.warmup_bars = period + 1

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        import talib  # here: TA-Lib (~5 MB) only in a process that runs this strategy

        return {"rsi": talib.RSI(closes, timeperiod=self.period)}

    def active_bars(self, indicators: Mapping[str, FloatArray]) -> BoolArray:
        """Only an RSI at or beyond a band can trade (NaN compares false: warming up holds)."""
        rsi = indicators["rsi"]
        return np.asarray((rsi <= self.oversold) | (rsi >= self.overbought))

    def decide(self, view: MarketView) -> Decision:
        rsi = view.indicators["rsi"]
        if math.isnan(rsi):
            return self._decision(
                view,
                Action.HOLD,
                f"RSI({self.period}) needs {self.period + 1} bars of {view.symbol} history; "
                "waiting: HOLD.",
                rsi,
            )
        held = view.position is not None and view.position.quantity > 0
        reading = f"RSI({self.period}) is {rsi:.1f}"
        if rsi <= self.oversold and held:
            return self._decision(
                view,
                Action.HOLD,
                f"{reading}, oversold (<= {self.oversold:g}), but already holding; not averaging "
                "down: HOLD.",
                rsi,
            )
        if rsi <= self.oversold:
            size, limit = view.buy_budget(self.size_percent)
            if size < view.config.min_trade_usd:
                return self._decision(
                    view,
                    Action.HOLD,
                    f"{reading}, oversold (<= {self.oversold:g}), but {limit} allows only "
                    f"{usd(size)}, below the {usd(view.config.min_trade_usd)} minimum trade: HOLD.",
                    rsi,
                )
            return self._decision(
                view,
                Action.BUY,
                f"{reading}, oversold (<= {self.oversold:g}): BUY {usd(size)} "
                f"({number(self.size_percent)}% size, limited by {limit}) for a bounce.",
                rsi,
                size=size,
            )
        if rsi >= self.overbought and held:
            return self._decision(
                view,
                Action.SELL,
                f"{reading}, overbought (>= {self.overbought:g}): SELL 100% of the position.",
                rsi,
            )
        if rsi >= self.overbought:
            return self._decision(
                view,
                Action.HOLD,
                f"{reading}, overbought (>= {self.overbought:g}), but nothing held: HOLD.",
                rsi,
            )
        return self._decision(
            view,
            Action.HOLD,
            f"{reading}, between {self.oversold:g} and {self.overbought:g}: HOLD.",
            rsi,
        )

    def _decision(
        self,
        view: MarketView,
        action: Action,
        reasoning: str,
        rsi: float,
        *,
        size: Decimal = money.ZERO,
    ) -> Decision:
        """Confidence grows with how far past its threshold RSI went: 50 at it, 100 at 0/100."""
        depth = None
        if action is Action.BUY:
            depth = (self.oversold - rsi) / self.oversold
        elif action is Action.SELL:
            depth = (rsi - self.overbought) / (100.0 - self.overbought)
        confidence = money.ZERO if depth is None else Decimal(f"{50.0 + 50.0 * depth:.1f}")
        signals: dict[str, float | str] = {
            "period": self.period,
            "oversold": self.oversold,
            "overbought": self.overbought,
        }
        if not math.isnan(rsi):
            signals.update(rsi=rsi, price=float(view.price))
        return Decision(
            action=action,
            symbol=view.symbol,
            size_usd=size,
            sell_fraction=money.ONE if action is Action.SELL else money.ZERO,
            confidence=money.ratio(confidence),
            risk_score=money.ratio(0),
            opportunity_score=money.ratio(0),
            reasoning=reasoning,
            signals=signals,
        )
