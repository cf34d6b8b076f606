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
from typing import NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from paper_trading.engine import money
from paper_trading.engine.analyzer import (
    HISTORY_LENGTH,
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
from paper_trading.engine.prices.replay import Closes, ReplaySource, Timeline
from paper_trading.engine.risk import (
    ConsecutiveFailures,
    DailyLoss,
    DailyTradeLimit,
    MaxPortfolioLoss,
    MinimumBalance,
    hold_limit,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]
T = TypeVar("T", bound=np.generic)

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
        #: The configuration the screens last read, and its thresholds as floats.
        self._limits_of: tuple[TradingConfig, _Limits] | None = None
        source = analyzer.feed.source
        if not isinstance(source, ReplaySource) or not self.ticks:
            return
        if self.ticks[0].tzinfo is None:
            return  # naive times: the analyzer's first tick reports what is wrong with them
        symbols = analyzer.price_symbols()
        # The whole run is located in the recordings in int64 microseconds, by binary search
        # over arrays: this runs before the first tick, once per backtest, over every bar.
        moments = Timeline.of(self.ticks)
        #: Per price symbol: its recorded closes, the bar each tick reads there (-1 for none)
        #: and that bar's close as a float (NaN for none). Decimals are made per stretch.
        self.closes: dict[str, Closes] = {}
        self.rows: dict[str, IndexArray] = {}
        self.floats: dict[str, FloatArray] = {}
        # A tick a recording has no bar for is not quiet (its feed problem runs exactly).
        quiet = np.ones(len(self.ticks), dtype=np.bool_)
        for symbol in symbols:
            times, closes, floats = source.recording(symbol)
            rows = times.rows(moments)
            self.closes[symbol], self.rows[symbol] = closes, rows
            self.floats[symbol] = _at_rows(floats, rows, np.nan)
            quiet &= rows >= 0
        for token in analyzer.tokens:
            table = analyzer.recorded_indicators(token.price_symbol)
            if table is None or table.active is None:
                return
            quiet &= ~_at_rows(table.active, self.rows[token.price_symbol], True)
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
        self._busy: list[int] = [*np.flatnonzero(~quiet).tolist(), len(self.ticks)]
        self.usable = True

    # -- finding a stretch ----------------------------------------------------------------

    def quiet_until(self, start: int) -> int:
        """The end (exclusive) of the quiet stretch starting at tick `start`; `start` if none."""
        a = self.a
        if not self.usable or a.counters.feed_problem or a.config.allowed_tokens != self.selection:
            return start
        stop = self._busy[bisect.bisect_left(self._busy, start)]
        if stop <= start or start == self._flagged_at:
            # The stretch before ended at `start` because the screen flagged it: that tick
            # runs exactly (which is always right) without screening it a second time.
            return start
        first = self._first_flagged(start, stop)
        if first is None:
            return stop
        self._flagged_at = start + first
        return self._flagged_at

    def _first_flagged(self, start: int, stop: int) -> int | None:
        """The first tick of [start, stop) (as an offset) where an exit or a breaker might fire
        or change state; None if there is none.

        Each screen first compares the stretch's extremes with its threshold, one number each,
        and only one that cannot be cleared that way looks tick by tick: most stretches are a
        few ticks long and far from every threshold, and an array per figure cost more than
        the ticks. What cannot vary over the stretch (a breaker with nothing to wait for) flags
        the whole stretch or none of it.
        """
        a = self.a
        config = a.config
        portfolio = a.portfolio
        c = a.counters
        limits = self._limits(config)
        firsts: list[int | None] = []
        value: FloatArray | float = float(portfolio.cash_usd)
        margin = _CENTS
        for position in portfolio.positions.values():
            prices = self.floats[a.chain.token(position.symbol).price_symbol][start:stop]
            held = float(position.quantity) * prices
            firsts.append(_exit_screen(position, prices, held, self.ticks, start, limits))
            value = value + held
            margin += _CENTS
        low, high = (value, value) if isinstance(value, float) else _extremes(value)
        margin += _RELATIVE * max(abs(low), abs(high))
        tripped = set(c.tripped)

        initial = float(portfolio.initial_balance_usd)
        if limits.max_loss:
            floor = initial * (1 - limits.max_loss / 100)
            if MaxPortfolioLoss.name in tripped or low - floor <= margin:
                on, near = value < floor, np.abs(value - floor) <= margin
                firsts.append(_first(_state_screen(on, near, tripped, MaxPortfolioLoss.name)))
        elif MaxPortfolioLoss.name in tripped:
            return 0

        # The day rolls over where the date changes; the new day starts at that tick's value.
        one_day = self.dates[start] == c.day and self._day[stop - 1] == self._day[start]
        new_day = None
        if not one_day:
            new_day = self._date_changes[start:stop].copy()
            new_day[0] = self.dates[start] != c.day
        if limits.daily_loss:
            day_start = float(c.day_start_value_usd)
            scale = 1 - limits.daily_loss / 100
            # No day can start above `top`, so no threshold is above top * scale.
            top = day_start if new_day is None else max(day_start, high)
            if DailyLoss.name in tripped or scale <= 0 or low - top * scale <= 2 * margin:
                starts: FloatArray | float = day_start
                if new_day is not None:
                    starts = np.where(new_day, value, np.nan)
                    starts[0] = starts[0] if new_day[0] else day_start
                    starts = _carry_forward(starts)
                threshold = starts * scale
                on = (starts != 0) & (value < threshold)
                near = np.abs(value - threshold) <= 2 * margin
                firsts.append(_first(_state_screen(on, near, tripped, DailyLoss.name)))
        elif DailyLoss.name in tripped:
            return 0

        trade_limit = config.max_daily_trades
        if DailyTradeLimit.name in tripped or 0 < trade_limit <= c.trades_today:
            trades_today = (
                c.trades_today
                if new_day is None
                else np.where(np.cumsum(new_day) > 0, 0, c.trades_today)
            )
            on = (trade_limit > 0) & (trades_today >= trade_limit)
            firsts.append(_first(_state_screen(on, None, tripped, DailyTradeLimit.name)))

        failures = config.max_consecutive_failures
        if failures > 0 and c.consecutive_failures >= failures and c.last_failure_at is not None:
            resume_at = c.last_failure_at + ConsecutiveFailures.cooldown
            cooling = np.zeros(stop - start, dtype=np.bool_)
            cooling[: bisect.bisect_left(self.ticks, resume_at, start, stop) - start] = True
            firsts.append(_first(_state_screen(cooling, None, tripped, ConsecutiveFailures.name)))
        elif ConsecutiveFailures.name in tripped:
            return 0

        low_cash = portfolio.cash_usd < config.min_balance_usd
        if low_cash != (MinimumBalance.name in tripped):
            return 0
        return min((f for f in firsts if f is not None), default=None)

    def _limits(self, config: TradingConfig) -> _Limits:
        """The configuration's thresholds as the screens use them (kept until it is edited)."""
        if self._limits_of is None or self._limits_of[0] is not config:
            self._limits_of = (config, _Limits.of(config))
        return self._limits_of[1]

    # -- running a stretch ----------------------------------------------------------------

    def run(self, start: int, stop: int) -> QuietTicks:
        """Tick `start` .. `stop - 1` as `MarketAnalyzer.tick` would, given they are quiet."""
        a = self.a
        c = a.counters
        portfolio = a.portfolio
        chain = a.chain
        # The stretch's closes as Decimals, made only for the symbols held or remembered.
        stretch: dict[str, list[Decimal]] = {}
        held = []
        for p in portfolio.positions.values():
            symbol = chain.token(p.symbol).price_symbol
            if symbol not in stretch:
                stretch[symbol] = self._closes(symbol, start, stop)
            held.append((p, stretch[symbol]))
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
                    price = closes[t - start]
                    position.revalue(price)
                    value += money.usd_value(position.quantity, price)
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
        # The history keeps its last HISTORY_LENGTH closes: older ones need no Decimal.
        kept = max(start, stop - HISTORY_LENGTH)
        for symbol in self.symbols:
            known = stretch.get(symbol)
            a.remember(
                symbol,
                self._closes(symbol, kept, stop) if known is None else known[kept - start :],
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

    def _closes(self, symbol: str, start: int, stop: int) -> list[Decimal]:
        """`symbol`'s closes at ticks `start` .. `stop - 1`, all recorded (they are quiet)."""
        return self.closes[symbol].take(self.rows[symbol][start:stop])


def _at_rows(values: npt.NDArray[T], rows: IndexArray, missing: object) -> npt.NDArray[T]:
    """`values` at each of `rows`, `missing` where a row is -1 (no bar)."""
    picked = np.full(len(rows), missing, dtype=values.dtype)
    found = rows >= 0
    picked[found] = values[rows[found]]
    return picked


class _Limits(NamedTuple):
    """A configuration's exit and breaker thresholds as floats (0 or None: off)."""

    stop_loss: float
    take_profit: float
    trail: float
    max_hold: timedelta | None
    max_loss: float
    daily_loss: float

    @classmethod
    def of(cls, config: TradingConfig) -> _Limits:
        hours = config.max_hold_hours
        return cls(
            stop_loss=float(config.stop_loss_percent),
            take_profit=float(config.take_profit_percent),
            trail=float(config.trailing_stop_percent),
            max_hold=hold_limit(hours) if hours else None,
            max_loss=float(config.max_portfolio_loss_percent),
            daily_loss=float(config.daily_loss_limit_percent),
        )


def _extremes(values: FloatArray) -> tuple[float, float]:
    """The smallest and largest value: through a list, faster than numpy for a few ticks."""
    listed: list[float] = values.tolist()
    return min(listed), max(listed)


def _first(flags: BoolArray | np.bool_ | bool) -> int | None:
    """The first flagged tick's offset (0 for a flag over the whole stretch), None for none."""
    hits = np.flatnonzero(flags)
    return int(hits[0]) if len(hits) else None


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
    held: FloatArray,
    ticks: Sequence[datetime],
    start: int,
    limits: _Limits,
) -> int | None:
    """The first of ticks `start` .. `start + len(prices) - 1` (as an offset) where one of the
    exit rules (`risk.DEFAULT_EXITS`) might close `position`, worth `held` there; None if none."""
    cost = float(position.cost_basis_usd)
    margin = _CENTS + _RELATIVE * cost
    firsts: list[int | None] = []
    low, high = _extremes(held)
    if limits.stop_loss:
        line = cost * (1 - limits.stop_loss / 100) + margin
        if low <= line:
            firsts.append(_first(held <= line))
    if limits.take_profit:
        line = cost * (1 + limits.take_profit / 100) - margin
        if high >= line:
            firsts.append(_first(held >= line))
    if limits.trail:
        peak = np.maximum.accumulate(np.maximum(prices, float(position.peak_price_usd)))
        entry = float(position.average_entry_price_usd)
        firsts.append(
            _first(
                (peak >= entry * (1 - _RELATIVE))
                & (prices <= peak * (1 - limits.trail / 100) * (1 + _RELATIVE))
            )
        )
    if limits.max_hold is not None:
        end = start + len(prices)
        due = bisect.bisect_left(ticks, position.opened_at + limits.max_hold, start, end)
        if due < end:
            firsts.append(due - start)
    return min((f for f in firsts if f is not None), default=None)
