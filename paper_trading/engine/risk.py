"""Circuit breakers and exit rules: each a small class that says, in words, why it fired.

Breakers stop the bot from *opening or adding to* positions; exits and sells still run, since
reducing exposure is what a tripped breaker is for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from paper_trading.engine import money
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.frozen import set_at_once
from paper_trading.engine.portfolio import Position


@dataclass(frozen=True)
class Reason:
    #: Stable identifier, e.g. "stop_loss" or "daily_loss".
    code: str
    #: A sentence for people, with the numbers that triggered it.
    message: str


@set_at_once
@dataclass(frozen=True)
class RiskState:
    now: datetime
    initial_balance_usd: Decimal
    portfolio_value_usd: Decimal
    cash_usd: Decimal
    day_start_value_usd: Decimal
    trades_today: int
    consecutive_failures: int
    last_failure_at: datetime | None
    config: TradingConfig


class CircuitBreaker(ABC):
    """A limit that, once crossed, stops new entries. A limit of 0 switches it off."""

    name: str

    @abstractmethod
    def check(self, state: RiskState) -> Reason | None:
        """A reason when trading must stop, else None."""


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


class MaxPortfolioLoss(CircuitBreaker):
    name = "max_portfolio_loss"

    def check(self, state: RiskState) -> Reason | None:
        limit = state.config.max_portfolio_loss_percent
        if not limit:
            return None
        floor = state.initial_balance_usd * (1 - limit / 100)
        if state.portfolio_value_usd >= floor:
            return None
        loss = (1 - state.portfolio_value_usd / state.initial_balance_usd) * 100
        return Reason(
            self.name,
            f"portfolio {_usd(state.portfolio_value_usd)} is down {loss:.2f}% from the initial "
            f"{_usd(state.initial_balance_usd)}, past the {limit}% maximum loss; "
            "no new positions until the account is reset",
        )


class DailyLoss(CircuitBreaker):
    name = "daily_loss"

    def check(self, state: RiskState) -> Reason | None:
        limit = state.config.daily_loss_limit_percent
        start = state.day_start_value_usd
        if not limit or not start or state.portfolio_value_usd >= start * (1 - limit / 100):
            return None
        loss = (1 - state.portfolio_value_usd / start) * 100
        return Reason(
            self.name,
            f"down {loss:.2f}% today ({_usd(start)} -> {_usd(state.portfolio_value_usd)}), "
            f"past the {limit}% daily loss limit; entries resume at 00:00 UTC",
        )


class ConsecutiveFailures(CircuitBreaker):
    """Stops after N reverted swaps in a row, for a cool-down, so a bad market can settle."""

    name = "consecutive_failures"
    cooldown = timedelta(hours=1)

    def check(self, state: RiskState) -> Reason | None:
        limit = state.config.max_consecutive_failures
        if limit <= 0 or state.consecutive_failures < limit or state.last_failure_at is None:
            return None
        resume_at = state.last_failure_at + self.cooldown
        if state.now >= resume_at:
            return None
        return Reason(
            self.name,
            f"{state.consecutive_failures} swaps in a row failed, reverted or dropped "
            f"(limit {limit}); "
            f"pausing entries until {resume_at:%Y-%m-%d %H:%M} UTC",
        )


class DailyTradeLimit(CircuitBreaker):
    name = "daily_trade_limit"

    def check(self, state: RiskState) -> Reason | None:
        limit = state.config.max_daily_trades
        if limit <= 0 or state.trades_today < limit:
            return None
        return Reason(
            self.name,
            f"{state.trades_today} trades today reached the daily limit of {limit}; "
            "entries resume at 00:00 UTC",
        )


class MinimumBalance(CircuitBreaker):
    name = "minimum_balance"

    def check(self, state: RiskState) -> Reason | None:
        floor = state.config.min_balance_usd
        if state.cash_usd >= floor:
            return None
        return Reason(
            self.name,
            f"cash {_usd(state.cash_usd)} is below the {_usd(floor)} minimum balance; "
            "no new positions",
        )


DEFAULT_BREAKERS: tuple[CircuitBreaker, ...] = (
    MaxPortfolioLoss(),
    DailyLoss(),
    ConsecutiveFailures(),
    DailyTradeLimit(),
    MinimumBalance(),
)


def tripped_breakers(
    state: RiskState, breakers: tuple[CircuitBreaker, ...] = DEFAULT_BREAKERS
) -> list[Reason]:
    return [reason for b in breakers if (reason := b.check(state)) is not None]


class ExitRule(ABC):
    name: str

    @abstractmethod
    def check(self, position: Position, now: datetime, config: TradingConfig) -> Reason | None:
        """A reason to close the whole position now, else None."""


class StopLoss(ExitRule):
    name = "stop_loss"

    def check(self, position: Position, now: datetime, config: TradingConfig) -> Reason | None:
        pnl = position.unrealized_pnl_percent
        if not config.stop_loss_percent or pnl > -config.stop_loss_percent:
            return None
        return Reason(
            self.name,
            f"stop-loss: {position.symbol} at {_usd(position.current_price_usd)} is {pnl:.2f}% "
            f"from the average entry {_usd(position.average_entry_price_usd)} "
            f"(limit -{config.stop_loss_percent}%)",
        )


class TakeProfit(ExitRule):
    name = "take_profit"

    def check(self, position: Position, now: datetime, config: TradingConfig) -> Reason | None:
        pnl = position.unrealized_pnl_percent
        if not config.take_profit_percent or pnl < config.take_profit_percent:
            return None
        return Reason(
            self.name,
            f"take-profit: {position.symbol} at {_usd(position.current_price_usd)} is +{pnl:.2f}% "
            f"over the average entry {_usd(position.average_entry_price_usd)} "
            f"(target +{config.take_profit_percent}%)",
        )


class TrailingStop(ExitRule):
    name = "trailing_stop"

    def check(self, position: Position, now: datetime, config: TradingConfig) -> Reason | None:
        distance = config.trailing_stop_percent
        if not distance or position.peak_price_usd <= position.average_entry_price_usd:
            return None
        stop = position.peak_price_usd * (1 - distance / 100)
        if position.current_price_usd > stop:
            return None
        drop = (1 - position.current_price_usd / position.peak_price_usd) * 100
        return Reason(
            self.name,
            f"trailing stop: {position.symbol} fell {drop:.2f}% from its peak "
            f"{_usd(position.peak_price_usd)} to {_usd(position.current_price_usd)} "
            f"(trail {distance}%)",
        )


class MaxHoldTime(ExitRule):
    name = "max_hold_time"

    def check(self, position: Position, now: datetime, config: TradingConfig) -> Reason | None:
        if not config.max_hold_hours:
            return None
        held = now - position.opened_at
        if held < hold_limit(config.max_hold_hours):
            return None
        hours = money.ratio(Decimal(held.total_seconds()) / 3600)
        return Reason(
            self.name,
            f"max hold time: {position.symbol} held {hours.normalize():f} h "
            f"(limit {config.max_hold_hours} h)",
        )


@lru_cache(maxsize=64)
def hold_limit(hours: Decimal) -> timedelta:
    """How long `max_hold_hours` lets a position stay open (checked for every position every
    tick, and the setting rarely changes)."""
    return timedelta(hours=float(hours))


DEFAULT_EXITS: tuple[ExitRule, ...] = (StopLoss(), TakeProfit(), TrailingStop(), MaxHoldTime())


def exit_reason(
    position: Position,
    now: datetime,
    config: TradingConfig,
    rules: tuple[ExitRule, ...] = DEFAULT_EXITS,
) -> Reason | None:
    """The first exit rule that fires, in priority order (losses first)."""
    for rule in rules:
        reason = rule.check(position, now, config)
        if reason is not None:
            return reason
    return None
