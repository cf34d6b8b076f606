"""Performance figures from an equity curve and closed trades, the same for bots and backtests."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.events import PerformanceSnapshot, PortfolioSnapshot

SECONDS_PER_YEAR = 365 * 24 * 3600


class EquityCurve:
    """Running statistics of an equity curve, O(1) per point, so long runs stay fast and small.

    Per-bar returns feed Welford's mean/variance (Sharpe) and a downside sum (Sortino); the peak
    feeds the maximum drawdown.
    """

    def __init__(self, values: Iterable[Decimal] = ()) -> None:
        self.points = 0
        self._last: Decimal | None = None
        self._returns = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._downside = 0.0
        self._peak = Decimal(0)
        self._worst = Decimal(0)
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        return self.points

    def add(self, value: Decimal) -> None:
        self.points += 1
        if self._last is not None and self._last > 0:
            r = float(value / self._last - 1)
            self._returns += 1
            delta = r - self._mean
            self._mean += delta / self._returns
            self._m2 += delta * (r - self._mean)
            self._downside += min(r, 0.0) ** 2
        self._last = value
        self._peak = max(self._peak, value)
        if self._peak > 0:
            self._worst = max(self._worst, (self._peak - value) / self._peak)

    @property
    def max_drawdown_percent(self) -> Decimal:
        """Largest peak-to-trough fall, in percent."""
        return money.ratio(self._worst * 100)

    def sharpe(self, bar_seconds: int) -> Decimal | None:
        """Annualized mean over standard deviation of per-bar returns (risk-free rate 0)."""
        if self._returns < 2:
            return None
        spread = math.sqrt(self._m2 / (self._returns - 1))
        if spread < 1e-15:
            return None
        return money.ratio(Decimal(self._mean / spread * _annualize(bar_seconds)))

    def sortino(self, bar_seconds: int) -> Decimal | None:
        """Like Sharpe, but only losing bars count as risk."""
        if self._returns < 2:
            return None
        downside = math.sqrt(self._downside / self._returns)
        if downside == 0:
            return None
        return money.ratio(Decimal(self._mean / downside * _annualize(bar_seconds)))


def _annualize(bar_seconds: int) -> float:
    return math.sqrt(SECONDS_PER_YEAR / bar_seconds)


def max_drawdown_percent(equity: Iterable[Decimal]) -> Decimal:
    return EquityCurve(equity).max_drawdown_percent


def sharpe_ratio(equity: Iterable[Decimal], bar_seconds: int) -> Decimal | None:
    return EquityCurve(equity).sharpe(bar_seconds)


def sortino_ratio(equity: Iterable[Decimal], bar_seconds: int) -> Decimal | None:
    return EquityCurve(equity).sortino(bar_seconds)


def compute(
    *,
    now: datetime,
    portfolio: PortfolioSnapshot,
    equity: EquityCurve | Iterable[Decimal],
    bar_seconds: int,
    closed_trade_pnls: Sequence[Decimal],
    total_trades: int,
    reverted_trades: int,
) -> PerformanceSnapshot:
    curve = equity if isinstance(equity, EquityCurve) else EquityCurve(equity)
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
        win_rate_percent=money.ratio(Decimal(len(wins) * 100) / closed if closed else 0),
        profit_factor=profit_factor,
        sharpe_ratio=curve.sharpe(bar_seconds),
        sortino_ratio=curve.sortino(bar_seconds),
        max_drawdown_percent=curve.max_drawdown_percent,
        best_trade_usd=max(closed_trade_pnls) if closed_trade_pnls else None,
        worst_trade_usd=min(closed_trade_pnls) if closed_trade_pnls else None,
    )
