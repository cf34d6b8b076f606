"""Quiet stretches of a backtest, run in bulk with exactly the state a tick-by-tick run reaches.

A strategy whose signals are sparse says on which bars it might trade (`Strategy.active_bars`).
Between those bars, a tick can only hold: it marks positions to market, extends the equity
curve, rolls the day over, computes the periodic metrics and writes a HOLD thought per token.
`FastForward` finds runs of such ticks and does just that for them (the ledger and equity in
Decimal, as `MarketAnalyzer.tick` does), handing every other tick to the analyzer.

A tick counts as quiet only if, besides no strategy signal, every price is recorded at it (no
feed problem), no open position can reach an exit rule and no circuit breaker can change state.
Those last two are screened in floats with a safety margin: a tick anywhere near a threshold is
left to the exact tick, so the screen only decides how much is skipped, never what happens.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from paper_trading.engine import money
from paper_trading.engine.analyzer import (
    VOLATILITY_CLOSES,
    MarketAnalyzer,
    portfolio_snapshot,
    position_snapshot,
)
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.events import (
    EngineCounters,
    Event,
    MetricsComputed,
    PositionChanged,
    QuietTicks,
    TickResult,
)
from paper_trading.engine.portfolio import Position
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.risk import (
    ConsecutiveFailures,
    DailyLoss,
    DailyTradeLimit,
    MaxPortfolioLoss,
    MinimumBalance,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Float error allowed for in the screens: a cent per rounded amount, plus a relative part.
_CENTS = 0.01
_RELATIVE = 1e-6


class FastForward:
    """Which ticks of a backtest are quiet, and running a stretch of them.

    Built once per backtest over its tick times; `usable` says whether it applies at all (a
    replay source and a strategy that declares its active bars).
    """

    def __init__(self, analyzer: MarketAnalyzer, ticks: Sequence[datetime]) -> None:
        self.a = analyzer
        self.ticks = list(ticks)
        self.usable = False
        #: The tick the last screen flagged (-1 for none).
        self._flagged_at = -1
        source = analyzer.feed.source
        if not isinstance(source, ReplaySource) or not self.ticks:
            return
        symbols = analyzer.price_symbols()
        #: Per price symbol: each tick's recorded close, or None where the recording has none.
        self.prices: dict[str, list[Decimal | None]] = {}
        self.floats: dict[str, FloatArray] = {}
        quiet = np.ones(len(self.ticks), dtype=np.bool_)
        # Per-bar work over the whole run below is done with C-level maps: it runs before
        # the first tick, once per backtest, over every bar.
        n = len(self.ticks)
        for symbol in symbols:
            times, recorded, floats = source.recording(symbol)
            first = bisect.bisect_left(times, self.ticks[0])
            if list(times[first : first + n]) == self.ticks:  # a bar at every tick
                self.prices[symbol] = list(recorded[first : first + n])
                self.floats[symbol] = np.array(floats[first : first + n], dtype=np.float64)
                continue
            by_time = dict(zip(times, recorded, strict=True))
            closes = list(map(by_time.get, self.ticks))
            self.prices[symbol] = closes
            self.floats[symbol] = np.array(
                [np.nan if p is None else float(p) for p in closes], dtype=np.float64
            )
            quiet &= ~np.isnan(self.floats[symbol])
        for token in analyzer.tokens:
            table = analyzer.recorded_indicators(token.price_symbol)
            if table is None or table.active is None:
                return
            rows = list(map(table.index.get, self.ticks))
            # A tick the recording has no bar for is not quiet (its feed problem runs exactly).
            known = np.array([i is not None for i in rows], dtype=np.bool_)
            at = np.array([0 if i is None else i for i in rows], dtype=np.int64)
            quiet &= known & ~np.asarray(table.active, dtype=np.bool_)[at]
        self.symbols = symbols
        #: Each tick's date, and whether it differs from the tick before's (day roll-overs).
        self.dates = list(map(datetime.date, self.ticks))
        days = np.fromiter(map(date.toordinal, self.dates), dtype=np.int64, count=len(self.dates))
        self._date_changes = np.empty(len(days), dtype=np.bool_)
        self._date_changes[0] = True
        np.not_equal(days[1:], days[:-1], out=self._date_changes[1:])
        #: Each tick's day as a number (equal within a day, rising at each roll-over).
        self._day = days.tolist()
        self.token_count = len(analyzer.tokens)
        self.selection = analyzer.config.allowed_tokens
        #: For each tick, the index of the first tick at or after it that is not quiet.
        busy = np.flatnonzero(~quiet)
        self._busy = np.append(busy, len(self.ticks))
        self.usable = True

    # -- finding a stretch ----------------------------------------------------------------

    def quiet_until(self, start: int) -> int:
        """The end (exclusive) of the quiet stretch starting at tick `start`; `start` if none."""
        a = self.a
        if not self.usable or a.counters.feed_problem or a.config.allowed_tokens != self.selection:
            return start
        stop = int(self._busy[np.searchsorted(self._busy, start)])
        if stop <= start or start == self._flagged_at:
            # The stretch before ended at `start` because the screen flagged it: that tick
            # runs exactly (which is always right) without screening it a second time.
            return start
        flagged = self._flagged(start, stop)
        hits = np.flatnonzero(flagged)
        if not len(hits):
            return stop
        self._flagged_at = start + int(hits[0])
        return self._flagged_at

    def _flagged(self, start: int, stop: int) -> BoolArray:
        """Ticks in [start, stop) where an exit or a breaker might fire or change state.

        What cannot vary over the stretch (the value of a book without positions, the day's
        start and trade count within one day, a breaker with nothing to wait for) is screened
        as one number, broadcast over the stretch: most stretches are a few ticks long, and an
        array per figure cost more than the ticks.
        """
        a = self.a
        config = a.config
        portfolio = a.portfolio
        c = a.counters
        n = stop - start
        flagged = np.zeros(n, dtype=np.bool_)
        value: FloatArray | float = float(portfolio.cash_usd)
        margin = _CENTS
        for position in portfolio.positions.values():
            prices = self.floats[a.chain.token(position.symbol).price_symbol][start:stop]
            flagged |= _exit_screen(position, prices, self.ticks, start, config)
            value = value + float(position.quantity) * prices
            margin += _CENTS
        margin += _RELATIVE * float(np.max(np.abs(value)))
        tripped = set(c.tripped)

        initial = float(portfolio.initial_balance_usd)
        limit = float(config.max_portfolio_loss_percent)
        if limit:
            floor = initial * (1 - limit / 100)
            flagged |= _state_screen(
                value < floor, np.abs(value - floor) <= margin, tripped, MaxPortfolioLoss.name
            )
        elif MaxPortfolioLoss.name in tripped:
            flagged[0] = True

        # The day rolls over where the date changes; the new day starts at that tick's value.
        one_day = self.dates[start] == c.day and self._day[stop - 1] == self._day[start]
        new_day = None
        if not one_day:
            new_day = self._date_changes[start:stop].copy()
            new_day[0] = self.dates[start] != c.day
        day_limit = float(config.daily_loss_limit_percent)
        if day_limit:
            starts: FloatArray | float = float(c.day_start_value_usd)
            if new_day is not None:
                starts = np.where(new_day, value, np.nan)
                starts[0] = starts[0] if new_day[0] else float(c.day_start_value_usd)
                starts = _carry_forward(starts)
            threshold = starts * (1 - day_limit / 100)
            on = (starts != 0) & (value < threshold)
            flagged |= _state_screen(
                on, np.abs(value - threshold) <= 2 * margin, tripped, DailyLoss.name
            )
        elif DailyLoss.name in tripped:
            flagged[0] = True

        trade_limit = config.max_daily_trades
        trades_today = (
            c.trades_today
            if new_day is None
            else np.where(np.cumsum(new_day) > 0, 0, c.trades_today)
        )
        flagged |= _state_screen(
            (trade_limit > 0) & (trades_today >= trade_limit), None, tripped, DailyTradeLimit.name
        )

        failures = config.max_consecutive_failures
        cooling: BoolArray | bool = False
        if failures > 0 and c.consecutive_failures >= failures and c.last_failure_at is not None:
            resume_at = c.last_failure_at + ConsecutiveFailures.cooldown
            cooling = np.zeros(n, dtype=np.bool_)
            cooling[: bisect.bisect_left(self.ticks, resume_at, start, stop) - start] = True
        flagged |= _state_screen(cooling, None, tripped, ConsecutiveFailures.name)

        low_cash = portfolio.cash_usd < config.min_balance_usd
        flagged |= _state_screen(low_cash, None, tripped, MinimumBalance.name)
        return flagged

    # -- running a stretch ----------------------------------------------------------------

    def run(self, start: int, stop: int) -> QuietTicks:
        """Tick `start` .. `stop - 1` as `MarketAnalyzer.tick` would, given they are quiet."""
        a = self.a
        c = a.counters
        portfolio = a.portfolio
        chain = a.chain
        held = [
            (p, self.prices[chain.token(p.symbol).price_symbol])
            for p in portfolio.positions.values()
        ]
        every = a.config.metrics_every_ticks
        equity: list[tuple[datetime, Decimal, Decimal]] = []
        metrics: list[MetricsComputed] = []
        cash = portfolio.cash_usd
        total = portfolio.total_value_usd
        ticks, dates = self.ticks, self.dates
        add, append = a.equity.add, equity.append
        for t in range(start, stop):
            now = ticks[t]
            c.tick_number += 1
            if held:
                # Portfolio.total_value_usd, summed in the same order without the properties.
                value = money.ZERO
                for position, closes in held:
                    price = closes[t]
                    position.revalue(price)  # type: ignore[arg-type]  # quiet: all priced
                    value += money.usd_value(position.quantity, price)  # type: ignore[arg-type]
                total = cash + value
            if c.day != dates[t]:
                c.day = dates[t]
                c.day_start_value_usd = total
                c.trades_today = 0
            add(total)
            append((now, total, total - cash))
            if c.tick_number % every == 0:
                metrics.append(MetricsComputed(a.performance(now, portfolio_snapshot(portfolio))))
        now = self.ticks[stop - 1]
        c.last_tick_at = now
        thoughts = (stop - start) * self.token_count
        c.thoughts += thoughts
        for symbol in self.symbols:
            a.remember(
                symbol,
                self.prices[symbol][start:stop],  # type: ignore[arg-type]  # quiet: all priced
                self.floats[symbol][max(start, stop - VOLATILITY_CLOSES) : stop].tolist(),
            )
        events: list[Event] = []
        if metrics and metrics[-1].metrics.computed_at == now:
            events.append(metrics[-1])
        events.extend(PositionChanged(position_snapshot(p)) for p in portfolio.positions.values())
        last = TickResult(
            c.tick_number,
            now,
            tuple(events),
            portfolio_snapshot(portfolio),
            EngineCounters(**vars(c)),
        )
        return QuietTicks(tuple(equity), thoughts, tuple(metrics), last)


def _state_screen(
    on: BoolArray | bool, near: BoolArray | bool | None, tripped: set[str], name: str
) -> BoolArray | bool:
    """Ticks where a breaker's (float) state differs from its state now, or is too close to call
    (one flag for the whole stretch when the state cannot vary over it)."""
    flagged: BoolArray = np.not_equal(on, name in tripped)
    return flagged if near is None else flagged | near


def _carry_forward(values: FloatArray) -> FloatArray:
    """Each NaN replaced by the last number before it (the first value is never NaN)."""
    index = np.where(np.isnan(values), 0, np.arange(len(values)))
    np.maximum.accumulate(index, out=index)
    return values[index]


def _exit_screen(
    position: Position,
    prices: FloatArray,
    ticks: Sequence[datetime],
    start: int,
    config: TradingConfig,
) -> BoolArray:
    """Ticks `start` .. `start + len(prices) - 1` where one of the exit rules
    (`risk.DEFAULT_EXITS`) might close `position`."""
    quantity = float(position.quantity)
    cost = float(position.cost_basis_usd)
    value = quantity * prices
    margin = _CENTS + _RELATIVE * cost
    flagged = np.zeros(len(prices), dtype=np.bool_)
    stop_loss = float(config.stop_loss_percent)
    if stop_loss:
        flagged |= value <= cost * (1 - stop_loss / 100) + margin
    take_profit = float(config.take_profit_percent)
    if take_profit:
        flagged |= value >= cost * (1 + take_profit / 100) - margin
    trail = float(config.trailing_stop_percent)
    if trail:
        peak = np.maximum.accumulate(np.maximum(prices, float(position.peak_price_usd)))
        entry = float(position.average_entry_price_usd)
        flagged |= (peak >= entry * (1 - _RELATIVE)) & (
            prices <= peak * (1 - trail / 100) * (1 + _RELATIVE)
        )
    if config.max_hold_hours:
        due = position.opened_at + timedelta(hours=float(config.max_hold_hours))
        flagged[bisect.bisect_left(ticks, due, start, start + len(prices)) - start :] = True
    return flagged
