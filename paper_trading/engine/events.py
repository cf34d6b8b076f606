"""What the engine tells the outside world, one tick at a time.

A tick's events are delivered together in a `TickResult`, so a sink can make them durable in one
transaction (or not at all) and a bot killed mid-tick never leaves half a tick behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

from paper_trading.engine.config import SIMULATOR_GAS_STRATEGY
from paper_trading.engine.frozen import set_at_once

E = TypeVar("E")


class DecisionType(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"
    #: The strategy wanted to act but a breaker, limit or missing price stopped it.
    BLOCKED = "BLOCKED"


class TradeStatus(StrEnum):
    EXECUTED = "EXECUTED"
    REVERTED = "REVERTED"
    #: Never included (held or stuck past the retry policy): no fill and no gas.
    DROPPED = "DROPPED"

    @property
    def failed(self) -> bool:
        """Counts as a consecutive failure for the breaker."""
        return self is not TradeStatus.EXECUTED


@dataclass(frozen=True)
class TransactionChanged:
    """One state change of a trade's paper transaction, streamed and stored with the trade."""

    trade_id: uuid.UUID
    symbol: str
    #: submitted | pending | included | reverted | dropped | replaced
    state: str
    #: 0 for the first submission, +1 per replacement.
    attempt: int
    block: int
    at: datetime
    max_fee_gwei: Decimal
    max_priority_fee_gwei: Decimal
    base_fee_gwei: Decimal
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "attempt": self.attempt,
            "block": self.block,
            "at": self.at.isoformat(),
            "max_fee_gwei": str(self.max_fee_gwei),
            "max_priority_fee_gwei": str(self.max_priority_fee_gwei),
            "base_fee_gwei": str(self.base_fee_gwei),
            "reason": self.reason,
        }


@set_at_once
@dataclass(frozen=True)
class ThoughtRecord:
    thought_id: uuid.UUID
    created_at: datetime
    #: Token the thought is about; empty for bot-wide thoughts (breakers, price feed).
    symbol: str
    decision_type: DecisionType
    confidence: Decimal
    risk_score: Decimal
    opportunity_score: Decimal
    reasoning: str
    #: JSON-ready inputs of the decision: prices, indicators, position, limits.
    market_data: Mapping[str, Any]
    strategy: str
    trade_id: uuid.UUID | None = None


@set_at_once
@dataclass(frozen=True)
class TradeRecord:
    trade_id: uuid.UUID
    created_at: datetime
    chain_id: int
    symbol: str
    token_address: str
    side: str
    status: TradeStatus
    #: Why the trade was made: "strategy" or an exit rule's code such as "stop_loss".
    reason: str
    token_in: str
    token_out: str
    amount_in: Decimal
    amount_out: Decimal
    amount_in_usd: Decimal
    amount_out_usd: Decimal
    mid_price_usd: Decimal
    execution_price_usd: Decimal
    pool_kind: str
    fee_pips: int
    fee_usd: Decimal
    fee_bps: Decimal
    price_impact_bps: Decimal
    slippage_bps: Decimal
    slippage_tolerance_bps: Decimal
    min_amount_out: Decimal
    gas_units: int
    gas_price_gwei: Decimal
    gas_native: Decimal
    l1_fee_native: Decimal
    approval_gas_usd: Decimal
    gas_usd: Decimal
    gas_source: str
    realized_pnl_usd: Decimal
    net_pnl_usd: Decimal
    revert_reason: str
    thought_id: uuid.UUID
    position_id: uuid.UUID | None
    gas_strategy: str = SIMULATOR_GAS_STRATEGY
    #: Submissions sent: 1, plus one per fee-bumped replacement.
    tx_attempts: int = 1
    #: Blocks from the decision to inclusion, revert or drop.
    inclusion_delay_blocks: int = 0
    sandwiched: bool = False
    #: The victim's loss to a sandwich against the unsandwiched fill (in amount_out terms).
    mev_cost_usd: Decimal = Decimal(0)
    #: What private routing cost; already part of gas_usd (the ledger's gas column).
    private_routing_fee_usd: Decimal = Decimal(0)
    #: The transaction's state changes, first to last.
    transactions: tuple[TransactionChanged, ...] = ()


@set_at_once
@dataclass(frozen=True)
class PositionSnapshot:
    position_id: uuid.UUID
    symbol: str
    chain_id: int
    token_address: str
    quantity: Decimal
    cost_basis_usd: Decimal
    entry_costs_usd: Decimal
    average_entry_price_usd: Decimal
    current_price_usd: Decimal
    current_value_usd: Decimal
    unrealized_pnl_usd: Decimal
    realized_pnl_usd: Decimal
    peak_price_usd: Decimal
    opened_at: datetime
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@set_at_once
@dataclass(frozen=True)
class PortfolioSnapshot:
    initial_balance_usd: Decimal
    cash_usd: Decimal
    positions_value_usd: Decimal
    total_value_usd: Decimal
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    fees_usd: Decimal
    gas_usd: Decimal

    @property
    def total_pnl_usd(self) -> Decimal:
        """Net result so far: everything gained or lost, costs included."""
        return self.total_value_usd - self.initial_balance_usd


@set_at_once
@dataclass(frozen=True)
class PerformanceSnapshot:
    computed_at: datetime
    portfolio_value_usd: Decimal
    total_pnl_usd: Decimal
    return_percent: Decimal
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    fees_usd: Decimal
    gas_usd: Decimal
    total_trades: int
    reverted_trades: int
    closed_trades: int
    winning_trades: int
    losing_trades: int
    win_rate_percent: Decimal
    profit_factor: Decimal | None
    sharpe_ratio: Decimal | None
    sortino_ratio: Decimal | None
    max_drawdown_percent: Decimal
    best_trade_usd: Decimal | None
    worst_trade_usd: Decimal | None


@dataclass
class EngineCounters:
    """Run state beyond the ledger, saved with every tick so a restart carries on exactly."""

    tick_number: int = 0
    last_tick_at: datetime | None = None
    day: date | None = None
    day_start_value_usd: Decimal = Decimal(0)
    trades_today: int = 0
    consecutive_failures: int = 0
    last_failure_at: datetime | None = None
    total_trades: int = 0
    successful_trades: int = 0
    failed_trades: int = 0
    thoughts: int = 0
    #: Codes of breakers tripped at the last tick, to report each trip once.
    tripped: list[str] = field(default_factory=list)
    #: Empty while prices flow; otherwise why the bot is not trading.
    feed_problem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "tick_number": self.tick_number,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "day": self.day.isoformat() if self.day else None,
            "day_start_value_usd": str(self.day_start_value_usd),
            "trades_today": self.trades_today,
            "consecutive_failures": self.consecutive_failures,
            "last_failure_at": self.last_failure_at.isoformat() if self.last_failure_at else None,
            "total_trades": self.total_trades,
            "successful_trades": self.successful_trades,
            "failed_trades": self.failed_trades,
            "thoughts": self.thoughts,
            "tripped": list(self.tripped),
            "feed_problem": self.feed_problem,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineCounters:
        if not data:
            return cls()

        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if value else None

        day = data.get("day")
        return cls(
            tick_number=int(data.get("tick_number", 0)),
            last_tick_at=when("last_tick_at"),
            day=date.fromisoformat(day) if day else None,
            day_start_value_usd=Decimal(data.get("day_start_value_usd", "0")),
            trades_today=int(data.get("trades_today", 0)),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            last_failure_at=when("last_failure_at"),
            total_trades=int(data.get("total_trades", 0)),
            successful_trades=int(data.get("successful_trades", 0)),
            failed_trades=int(data.get("failed_trades", 0)),
            thoughts=int(data.get("thoughts", 0)),
            tripped=list(data.get("tripped", [])),
            feed_problem=str(data.get("feed_problem", "")),
        )


@dataclass(frozen=True)
class ThoughtLogged:
    thought: ThoughtRecord


@dataclass(frozen=True)
class TradeExecuted:
    trade: TradeRecord


@dataclass(frozen=True)
class PositionChanged:
    position: PositionSnapshot


@dataclass(frozen=True)
class BreakerTripped:
    code: str
    message: str


@dataclass(frozen=True)
class PriceFeedChanged:
    """Prices stopped or resumed; `problem` is empty on recovery."""

    problem: str


@dataclass(frozen=True)
class PricesObserved:
    source: str
    #: price symbol -> (observed at, USD price)
    prices: Mapping[str, tuple[datetime, Decimal]]


@dataclass(frozen=True)
class MetricsComputed:
    metrics: PerformanceSnapshot


Event = (
    ThoughtLogged
    | TradeExecuted
    | TransactionChanged
    | PositionChanged
    | BreakerTripped
    | PriceFeedChanged
    | PricesObserved
    | MetricsComputed
)


@set_at_once
@dataclass(frozen=True)
class TickResult:
    tick_number: int
    timestamp: datetime
    events: tuple[Event, ...]
    portfolio: PortfolioSnapshot
    counters: EngineCounters

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


@set_at_once
@dataclass(frozen=True)
class QuietTicks:
    """Consecutive backtest ticks run in bulk, where each one could only hold.

    Every such tick marked positions to market, added an equity point and wrote one HOLD
    thought per token (counted in `thoughts`, not kept). `last` is the final tick's result
    without those thoughts: its portfolio, counters, open positions and any metrics.
    """

    #: Each tick's time, total value and the part of it held in tokens.
    equity: tuple[tuple[datetime, Decimal, Decimal], ...]
    thoughts: int
    #: The performance figures due on these ticks (every `metrics_every_ticks`).
    metrics: tuple[MetricsComputed, ...]
    last: TickResult

    @property
    def ticks(self) -> int:
        return len(self.equity)


@runtime_checkable
class QuietTicksSink(Protocol):
    """A sink that can take `QuietTicks`, so a backtest may run quiet stretches in bulk."""

    def publish(self, result: TickResult) -> None: ...

    def publish_quiet(self, ticks: QuietTicks) -> None: ...


class EventSink(Protocol):
    def publish(self, result: TickResult) -> None:
        """Make one tick's effects durable or visible; all of them or none."""
        ...
