"""The strategy interface: one decision per token per tick, explained in words."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Self

import numpy as np
import numpy.typing as npt

from paper_trading.engine import money
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.frozen import set_at_once

#: A whole price series, or one indicator over it, oldest first (float: indicators never
#: enter the ledger).
FloatArray = npt.NDArray[np.float64]
#: One flag per bar of a series.
BoolArray = npt.NDArray[np.bool_]


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


@dataclass(frozen=True)
class PositionView:
    quantity: Decimal
    average_entry_price_usd: Decimal
    cost_basis_usd: Decimal
    unrealized_pnl_percent: Decimal
    opened_at: datetime


@set_at_once
@dataclass(frozen=True)
class MarketView:
    """What a strategy may see about one token at one tick (nothing from the future)."""

    symbol: str
    now: datetime
    price: Decimal
    #: Recent prices, oldest first; the last one is `price`.
    history: Sequence[Decimal]
    #: Seconds between consecutive history points.
    bar_seconds: int
    position: PositionView | None
    cash_usd: Decimal
    portfolio_value_usd: Decimal
    config: TradingConfig
    #: This bar's value of each array `Strategy.indicators` returned (NaN while an indicator
    #: is still warming up); empty for strategies that compute none.
    indicators: Mapping[str, float] = field(default_factory=dict)

    def buy_budget(self, percent: Decimal, sized_as: str = "") -> tuple[Decimal, str]:
        """USD a buy of `percent` of the portfolio may spend, and which limit set it.

        The smallest of the requested share, the room left under the configured position cap
        and the cash available, so a strategy never asks for more than the bot would allow.
        `sized_as` names the requested share in that explanation.
        """
        held = self.position.quantity if self.position else money.ZERO
        held_usd = money.usd(money.mul(held, self.price))
        cap_percent = self.config.max_position_size_percent
        cap_usd = money.usd(
            money.div(money.mul(self.portfolio_value_usd, cap_percent), money.HUNDRED)
        )
        wanted = money.div(money.mul(self.portfolio_value_usd, percent), money.HUNDRED)
        room = "the room left under the" if held_usd > 0 else "the"
        size, limit = min(
            (
                (wanted, sized_as or f"the {percent.normalize():f}% position size"),
                (cap_usd - held_usd, f"{room} {cap_percent.normalize():f}% position cap"),
                (self.cash_usd, "available cash"),
            ),
            key=lambda candidate: candidate[0],
        )
        return max(money.usd(size), money.ZERO), limit


@set_at_once
@dataclass(frozen=True)
class Decision:
    action: Action
    symbol: str
    #: BUY: USD to spend. Otherwise 0.
    size_usd: Decimal
    #: SELL: fraction of the position to sell, in (0, 1]. Otherwise 0.
    sell_fraction: Decimal
    #: 0-100.
    confidence: Decimal
    #: 0-100, higher is riskier.
    risk_score: Decimal
    #: 0-100, how attractive the setup looks regardless of risk.
    opportunity_score: Decimal
    #: Plain-language explanation citing the numbers it used.
    reasoning: str
    #: The indicator values behind the decision, stored with the thought log.
    signals: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parameter:
    """A tunable knob of a strategy: its default and the range `optimize` may search.

    Integers when `default`, `low` and `high` are all ints (searched in steps of `step`, 1 by
    default); floats otherwise.
    """

    default: int | float
    low: int | float
    high: int | float
    step: int | float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.low <= self.default <= self.high:
            raise ValueError(f"default {self.default} is outside [{self.low}, {self.high}]")

    @property
    def is_integer(self) -> bool:
        return all(isinstance(v, int) for v in (self.default, self.low, self.high))

    def coerce(self, name: str, value: object) -> int | float:
        """`value` as this parameter's type, or a ValueError that names the parameter."""
        try:
            number = float(str(value))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a number") from None
        if self.is_integer:
            if not number.is_integer():
                raise ValueError(f"{name}: {value!r} is not a whole number")
            number = int(number)
        if not self.low <= number <= self.high:
            raise ValueError(f"{name}: {value} is outside [{self.low}, {self.high}]")
        return number


class Strategy(ABC):
    """Subclass this to plug your own logic into the bot, replays and backtests.

    Declare tunable knobs in `parameters` and accept each as a keyword argument of `__init__`;
    `from_params` validates them, and `manage.py optimize` searches their ranges.
    """

    #: Shown in logs and stored on the session.
    name: str = "strategy"
    #: History points needed before `decide` is meaningful; the bot holds until then.
    warmup_bars: int = 0
    #: Keyword arguments of `__init__`, with their defaults and searchable ranges.
    parameters: ClassVar[Mapping[str, Parameter]] = {}

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        """Indicator arrays over a whole close series, each as long as `closes`.

        Override to have indicators computed once per symbol over a replay (or over the rolling
        history each live tick) instead of inside `decide`; `decide` then reads this bar's
        values from `view.indicators`. The value at index i must use only `closes[: i + 1]`,
        or a backtest would trade on the future. NaN marks "not enough history yet".
        """
        return {}

    def active_bars(self, indicators: Mapping[str, FloatArray]) -> BoolArray | None:
        """Bars on which `decide` might not HOLD, from this strategy's `indicators` arrays.

        Optional, for backtest speed: a strategy whose signals are sparse (a crossover, an RSI
        band) returns a flag per bar, promising that on every unflagged bar `decide` returns
        HOLD whatever the position, cash or configuration. A backtest then runs those bars in
        bulk (positions marked to market, equity, exits and breakers still checked) instead of
        asking `decide` each time. None (the default) means any bar may trade.
        """
        return None

    @property
    def computes_indicators(self) -> bool:
        """Whether this strategy overrides `indicators` (so the analyzer has work to do)."""
        return type(self).indicators is not Strategy.indicators

    @classmethod
    def resolve_params(cls, params: Mapping[str, object] | None = None) -> dict[str, int | float]:
        """Every declared parameter's value: (possibly textual) `params` checked, defaults added.

        What a session stores, so a run can be repeated exactly even if defaults change later.
        """
        given = dict(params or {})
        unknown = sorted(set(given) - set(cls.parameters))
        if unknown:
            known = ", ".join(sorted(cls.parameters)) or "none"
            raise ValueError(f"{cls.name} has no parameter {', '.join(unknown)} (known: {known})")
        return {
            name: spec.coerce(name, given[name]) if name in given else spec.default
            for name, spec in cls.parameters.items()
        }

    @classmethod
    def from_params(cls, params: Mapping[str, object] | None = None) -> Self:
        """Build the strategy from (possibly textual) parameter values, defaults for the rest."""
        return cls(**cls.resolve_params(params))

    @abstractmethod
    def decide(self, view: MarketView) -> Decision:
        """Return BUY, SELL or HOLD for `view.symbol`, with reasons."""
