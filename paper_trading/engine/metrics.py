"""Performance figures from an equity curve and closed trades, the same for bots and backtests."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import pairwise

from paper_trading.engine import money
from paper_trading.engine.events import PerformanceSnapshot, PortfolioSnapshot

SECONDS_PER_YEAR = 365 * 24 * 3600


def max_drawdown_percent(equity: Sequence[Decimal]) -> Decimal:
    """Largest peak-to-trough fall of the equity curve, in percent."""
    peak = Decimal(0)
    worst = Decimal(0)
    for value in equity:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return money.ratio(worst * 100)


def _returns(equity: Sequence[Decimal]) -> list[float]:
    return [float(b / a - 1) for a, b in pairwise(equity) if a > 0]


def sharpe_ratio(equity: Sequence[Decimal], bar_seconds: int) -> Decimal | None:
    """Annualized mean over standard deviation of per-bar returns (risk-free rate 0)."""
    returns = _returns(equity)
    if len(returns) < 2:
        return None
    spread = statistics.stdev(returns)
    if spread == 0:
        return None
    annualize = math.sqrt(SECONDS_PER_YEAR / bar_seconds)
    return money.ratio(Decimal(statistics.fmean(returns) / spread * annualize))


def sortino_ratio(equity: Sequence[Decimal], bar_seconds: int) -> Decimal | None:
    """Like Sharpe, but only losing bars count as risk."""
    returns = _returns(equity)
    if len(returns) < 2:
        return None
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if downside == 0:
        return None
    annualize = math.sqrt(SECONDS_PER_YEAR / bar_seconds)
    return money.ratio(Decimal(statistics.fmean(returns) / downside * annualize))


def compute(
    *,
    now: datetime,
    portfolio: PortfolioSnapshot,
    equity: Sequence[Decimal],
    bar_seconds: int,
    closed_trade_pnls: Sequence[Decimal],
    total_trades: int,
    reverted_trades: int,
) -> PerformanceSnapshot:
    wins = [p for p in closed_trade_pnls if p > 0]
    losses = [p for p in closed_trade_pnls if p <= 0]
    gross_loss = -sum(losses, Decimal(0))
    profit_factor = (
        money.ratio(sum(wins, Decimal(0)) / gross_loss) if gross_loss > 0 and wins else None
    )
    closed = len(closed_trade_pnls)
    initial = portfolio.initial_balance_usd
    return PerformanceSnapshot(
        computed_at=now,
        portfolio_value_usd=portfolio.total_value_usd,
        total_pnl_usd=portfolio.total_pnl_usd,
        return_percent=money.ratio(portfolio.total_pnl_usd / initial * 100)
        if initial
        else money.ZERO,
        realized_pnl_usd=portfolio.realized_pnl_usd,
        unrealized_pnl_usd=portfolio.unrealized_pnl_usd,
        fees_usd=portfolio.fees_usd,
        gas_usd=portfolio.gas_usd,
        total_trades=total_trades,
        reverted_trades=reverted_trades,
        closed_trades=closed,
        winning_trades=len(wins),
        losing_trades=len(losses),
        win_rate_percent=money.ratio(Decimal(len(wins) * 100) / closed) if closed else money.ZERO,
        profit_factor=profit_factor,
        sharpe_ratio=sharpe_ratio(equity, bar_seconds),
        sortino_ratio=sortino_ratio(equity, bar_seconds),
        max_drawdown_percent=max_drawdown_percent(equity),
        best_trade_usd=max(closed_trade_pnls) if closed_trade_pnls else None,
        worst_trade_usd=min(closed_trade_pnls) if closed_trade_pnls else None,
    )
