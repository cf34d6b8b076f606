"""The strategy configuration as the engine sees it: one frozen value per tick."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

#: The gas strategy that keeps the simulator's own path: the swap lands 1-3 blocks later at the
#: modelled gas price, with no fee market, replacements or sandwiches.
SIMULATOR_GAS_STRATEGY = "simulator"
#: What an account may choose; all but the first route swaps through the TransactionManager.
GAS_STRATEGIES = (SIMULATOR_GAS_STRATEGY, "legacy", "slow", "standard", "fast", "wait_for_cheaper")


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
    #: One of GAS_STRATEGIES.
    gas_strategy: str = SIMULATOR_GAS_STRATEGY
    #: Send swaps privately (no sandwich, at a fee) on chains with a public mempool.
    private_routing: bool = False
    #: Chance a profitable sandwich is taken, on public-mempool chains without private routing.
    sandwich_probability: Decimal = Decimal("0.8")

    def __post_init__(self) -> None:
        if self.gas_strategy not in GAS_STRATEGIES:
            raise ValueError(
                f"unknown gas strategy {self.gas_strategy!r}; known: {', '.join(GAS_STRATEGIES)}"
            )
