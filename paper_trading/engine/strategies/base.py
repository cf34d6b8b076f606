"""The strategy interface: one decision per token per tick, explained in words."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from paper_trading.engine.config import TradingConfig


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


class Strategy(ABC):
    """Subclass this to plug your own logic into the bot, replays and backtests."""

    #: Shown in logs and stored on the session.
    name: str = "strategy"
    #: History points needed before `decide` is meaningful; the bot holds until then.
    warmup_bars: int = 0

    @abstractmethod
    def decide(self, view: MarketView) -> Decision:
        """Return BUY, SELL or HOLD for `view.symbol`, with reasons."""
