"""Performance figures from an equity curve and closed trades, the same for bots and backtests."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.events import (
    PerformanceSnapshot,
    PortfolioSnapshot,
    TradeRecord,
)

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
        """One more point. A value equal to the last one (a flat book) is a zero return and
        cannot move the peak or the drawdown, so it skips the Decimal divisions."""
        self.points += 1
        last = self._last
        flat = value == last
        if last is not None and last > 0:
            r = 0.0 if flat else float(value / last - 1)
            self._returns += 1
            delta = r - self._mean
            self._mean += delta / self._returns
            self._m2 += delta * (r - self._mean)
            if r < 0:
                # min(r, 0.0) ** 2: a bar that lost nothing adds zero.
                self._downside += r**2
        if not flat:
            self._track_drawdown(value)
        self._last = value

    def _track_drawdown(self, value: Decimal) -> None:
        if value >= self._peak:
            # At or above the peak the fall is zero, which cannot raise the worst (never < 0).
            if value > self._peak:
                self._peak = value
            return
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


def drawdown_series(equity: Iterable[Decimal]) -> list[Decimal]:
    """Each point's fall below the running peak, in percent (0 at a new high)."""
    peak = money.ZERO
    series: list[Decimal] = []
    for value in equity:
        peak = max(peak, value)
        series.append(money.ratio((peak - value) / peak * 100) if peak > 0 else money.ZERO)
    return series


class ClosedTrades:
    """Running figures of closed trades' net P&L, O(1) per trade, so metrics stay cheap."""

    def __init__(self, pnls: Iterable[Decimal] = ()) -> None:
        self.count = 0
        self.wins = 0
        self.gross_win = money.ZERO
        self.gross_loss = money.ZERO
        self.best: Decimal | None = None
        self.worst: Decimal | None = None
        for pnl in pnls:
            self.add(pnl)

    def __len__(self) -> int:
        return self.count

    def add(self, pnl: Decimal) -> None:
        self.count += 1
        if pnl > 0:
            self.wins += 1
            self.gross_win += pnl
        else:
            self.gross_loss -= pnl
        self.best = pnl if self.best is None else max(self.best, pnl)
        self.worst = pnl if self.worst is None else min(self.worst, pnl)

    @property
    def profit_factor(self) -> Decimal | None:
        """Gross profit of winning trades over gross loss of losing ones; None without both."""
        if self.gross_loss <= 0 or self.gross_win <= 0:
            return None
        return money.ratio(self.gross_win / self.gross_loss)


def profit_factor(closed_trade_pnls: Iterable[Decimal]) -> Decimal | None:
    return ClosedTrades(closed_trade_pnls).profit_factor


def annualized_return_percent(
    initial_usd: Decimal, final_usd: Decimal, seconds: float
) -> Decimal | None:
    """The yearly rate that compounds `initial_usd` into `final_usd` over `seconds`.

    None for an empty period or a wiped-out account, where a rate means nothing.
    """
    if seconds <= 0 or initial_usd <= 0 or final_usd <= 0:
        return None
    growth = float(final_usd / initial_usd)
    try:
        rate = growth ** (SECONDS_PER_YEAR / seconds) - 1
    except OverflowError:
        return None
    return money.ratio(Decimal(rate * 100)) if math.isfinite(rate) else None


def exposure_percent(points: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """Average share of the portfolio held in tokens, over (positions value, total value) points.

    0 for a strategy that never bought, 100 for one fully invested all the time.
    """
    count = 0
    share = money.ZERO
    for positions_usd, total_usd in points:
        count += 1
        if total_usd > 0:
            share += positions_usd / total_usd
    return money.ratio(share * 100 / count) if count else money.ZERO


@dataclass
class TradeGroup:
    """The trades sharing a token or an exit reason: counts, P&L and costs (the ledger's
    definitions)."""

    key: str
    trades: int = 0
    reverted: int = 0
    #: Closing trades (executed sells) and how many of them had a positive net P&L.
    closes: int = 0
    wins: int = 0
    realized_pnl_usd: Decimal = money.ZERO
    fees_usd: Decimal = money.ZERO
    gas_usd: Decimal = money.ZERO
    volume_usd: Decimal = money.ZERO

    @property
    def win_rate_percent(self) -> Decimal:
        return money.ratio(Decimal(self.wins * 100) / self.closes) if self.closes else money.ZERO

    @property
    def net_pnl_usd(self) -> Decimal:
        """Price P&L less every swap fee and every gas bill."""
        return self.realized_pnl_usd - self.fees_usd - self.gas_usd

    def add(self, t: TradeRecord) -> None:
        """Count one trade; a reverted swap counts its gas and nothing else."""
        self.trades += 1
        self.gas_usd += t.gas_usd
        if t.status.failed:  # reverted (gas burned) or dropped (nothing paid)
            self.reverted += 1
            return
        self.realized_pnl_usd += t.realized_pnl_usd
        self.fees_usd += t.fee_usd
        self.volume_usd += t.amount_in_usd
        if t.side == "SELL":
            self.closes += 1
            self.wins += t.net_pnl_usd > 0


def _grouped(trades: Iterable[TradeRecord], key: Callable[[TradeRecord], str]) -> list[TradeGroup]:
    groups: dict[str, TradeGroup] = {}
    for t in trades:
        k = key(t)
        group = groups.get(k)
        if group is None:
            group = groups[k] = TradeGroup(k)
        group.add(t)
    return [groups[k] for k in sorted(groups)]


def per_token(trades: Iterable[TradeRecord]) -> list[TradeGroup]:
    """Results by token symbol, sorted by it."""
    return _grouped(trades, lambda t: t.symbol)


def per_exit_reason(trades: Iterable[TradeRecord]) -> list[TradeGroup]:
    """Sells by what closed them (the strategy, "stop_loss", "max_hold", ...), sorted by it:
    which exits earn and which lose, as freqtrade's exit-reason table shows."""
    return _grouped((t for t in trades if t.side == "SELL"), lambda t: t.reason)


def market_change_percent(prices: Iterable[Sequence[tuple[datetime, Decimal]]]) -> Decimal | None:
    """Buy and hold as a benchmark: each token's price change from the first tick to the last,
    averaged over the tokens (freqtrade's "market change"); None without two prices."""
    changes = [
        (points[-1][1] / points[0][1] - 1) * 100
        for points in prices
        if len(points) >= 2 and points[0][1] > 0
    ]
    return money.ratio(sum(changes, money.ZERO) / len(changes)) if changes else None


def mean_hold_seconds(trades: Iterable[TradeRecord]) -> float | None:
    """How long closed positions were held on average: from a position's first buy to the sell
    that emptied it (bought quantity = sold quantity); None if none closed."""
    opened: dict[uuid.UUID, datetime] = {}
    held: dict[uuid.UUID, Decimal] = {}
    durations: list[float] = []
    for t in trades:
        if t.position_id is None or t.status.failed:
            continue
        if t.side == "BUY":
            opened.setdefault(t.position_id, t.created_at)
            held[t.position_id] = held.get(t.position_id, money.ZERO) + t.amount_out
            continue
        left = held.get(t.position_id, money.ZERO) - t.amount_in
        held[t.position_id] = left
        if left <= 0 and t.position_id in opened:
            durations.append((t.created_at - opened[t.position_id]).total_seconds())
    return sum(durations) / len(durations) if durations else None


#: Calendar periods a run's results can be broken down by, and each one's first day.
PERIODS: dict[str, Callable[[date], date]] = {
    "day": lambda day: day,
    "week": lambda day: day - timedelta(days=day.weekday()),  # ISO weeks start on Monday
    "month": lambda day: day.replace(day=1),
}


@dataclass
class PeriodResult:
    """One calendar period of a run: its trades and how the portfolio's value moved."""

    start: date
    #: The value when the period began (the previous period's last value, or the initial
    #: balance) and at its last tick.
    start_value_usd: Decimal
    end_value_usd: Decimal
    trades: TradeGroup

    @property
    def return_percent(self) -> Decimal:
        if not self.start_value_usd:
            return money.ZERO
        return money.ratio((self.end_value_usd / self.start_value_usd - 1) * 100)


def breakdown(
    equity: Iterable[tuple[datetime, Decimal]],
    trades: Iterable[TradeRecord],
    initial_balance_usd: Decimal,
    period: str,
) -> list[PeriodResult]:
    """Results per calendar `period` ("day", "week" or "month", in UTC) over the equity curve's
    ticks, in time order; every period with a tick has a row, with or without trades."""
    first_day = PERIODS[period]
    rows: dict[date, PeriodResult] = {}
    value = initial_balance_usd
    for at, now_value in equity:
        start = first_day(at.date())
        row = rows.get(start)
        if row is None:
            row = rows[start] = PeriodResult(start, value, now_value, TradeGroup(start.isoformat()))
        row.end_value_usd = value = now_value
    for t in trades:
        row = rows.get(first_day(t.created_at.date()))
        if row is not None:
            row.trades.add(t)
    return list(rows.values())


def compute(
    *,
    now: datetime,
    portfolio: PortfolioSnapshot,
    equity: EquityCurve | Iterable[Decimal],
    bar_seconds: int,
    closed_trade_pnls: ClosedTrades | Iterable[Decimal],
    total_trades: int,
    reverted_trades: int,
) -> PerformanceSnapshot:
    curve = equity if isinstance(equity, EquityCurve) else EquityCurve(equity)
    trades = (
        closed_trade_pnls
        if isinstance(closed_trade_pnls, ClosedTrades)
        else ClosedTrades(closed_trade_pnls)
    )
    wins = trades.wins
    closed = trades.count
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
        winning_trades=wins,
        losing_trades=closed - wins,
        win_rate_percent=money.ratio(Decimal(wins * 100) / closed if closed else 0),
        profit_factor=trades.profit_factor,
        sharpe_ratio=curve.sharpe(bar_seconds),
        sortino_ratio=curve.sortino(bar_seconds),
        max_drawdown_percent=curve.max_drawdown_percent,
        best_trade_usd=trades.best,
        worst_trade_usd=trades.worst,
    )
