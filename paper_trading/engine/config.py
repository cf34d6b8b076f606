"""The strategy configuration as the engine sees it: one frozen value per tick."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class TradingConfig:
    """Limits and exits a user sets; defaults are the design notes' defaults."""

    max_position_size_percent: Decimal = Decimal(25)
    stop_loss_percent: Decimal = Decimal(5)
    take_profit_percent: Decimal = Decimal(10)
    #: Trailing stop distance below the position's peak price; 0 turns it off.
    trailing_stop_percent: Decimal = Decimal(0)
    max_hold_hours: Decimal = Decimal(24)
    max_daily_trades: int = 50
    confidence_threshold: Decimal = Decimal(40)
    slippage_tolerance_percent: Decimal = Decimal("0.5")
    min_trade_usd: Decimal = Decimal(10)
    max_portfolio_loss_percent: Decimal = Decimal(30)
    daily_loss_limit_percent: Decimal = Decimal(10)
    max_consecutive_failures: int = 5
    min_balance_usd: Decimal = Decimal(100)
    #: Symbols the bot may trade; empty means every tradable token of the chain.
    allowed_tokens: tuple[str, ...] = field(default_factory=tuple)
    #: Performance metrics are recomputed every N ticks.
    metrics_every_ticks: int = 20
