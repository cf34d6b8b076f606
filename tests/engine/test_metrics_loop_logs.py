"""Performance figures, the bot loop's stop conditions, and the tagged log lines."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from paper_trading.engine import metrics
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.events import (
    PortfolioSnapshot,
    TickResult,
    TradeExecuted,
    TradeStatus,
)
from paper_trading.engine.log_sink import LogSink
from paper_trading.engine.loop import BotLoop, EndReason
from paper_trading.engine.schedule import ReplaySchedule, TickSchedule
from tests.engine.test_analyzer import (
    START_PRICES,
    TOKENS,
    ScriptedStrategy,
    at,
    buy,
    harness,
)
from tests.engine.test_price_cache import FakeClock

D = Decimal
YEAR = metrics.SECONDS_PER_YEAR  # as the bar length, annualizing multiplies by 1

# -- metrics ---------------------------------------------------------------------------------


def test_max_drawdown_of_a_hand_series() -> None:
    # Peaks 120 then 130: falls of 30/120 = 25% and 26/130 = 20%; the worst is 25%.
    assert metrics.max_drawdown_percent([D(100), D(120), D(90), D(130), D(104)]) == D(25)
    # 100 -> 80 is 20%, and the later high of 150 does not undo it.
    assert metrics.max_drawdown_percent([D(100), D(80), D(150)]) == D(20)
    assert metrics.max_drawdown_percent([D(100), D(101), D(102)]) == 0
    assert metrics.max_drawdown_percent([]) == 0


def test_sharpe_needs_two_returns() -> None:
    assert metrics.sharpe_ratio([], YEAR) is None
    assert metrics.sharpe_ratio([D(100)], YEAR) is None
    assert metrics.sharpe_ratio([D(100), D(110)], YEAR) is None  # one return
    assert metrics.sortino_ratio([D(100), D(110)], YEAR) is None


def test_sharpe_is_none_without_variation() -> None:
    # +10% and +10%: no spread to divide by; and no losing bar for Sortino.
    assert metrics.sharpe_ratio([D(100), D(110), D(121)], YEAR) is None
    assert metrics.sortino_ratio([D(100), D(110), D(121)], YEAR) is None


def test_sharpe_and_sortino_of_a_hand_series() -> None:
    equity = [D(100), D(110), D(121), D("108.9")]
    # Returns +0.1, +0.1, -0.1: mean 1/30; sample stdev sqrt((2 x (1/15)^2 + (2/15)^2) / 2)
    # = sqrt(1/75). Sharpe = (1/30) / sqrt(1/75) = sqrt(75) / 30 = 0.288675.
    assert metrics.sharpe_ratio(equity, YEAR) == D("0.2887")
    # Hourly bars annualize by sqrt(8,760): sqrt(75 x 8,760) / 30 = 810.5554 / 30 = 27.01851.
    assert metrics.sharpe_ratio(equity, 3600) == D("27.0185")
    # Downside deviation sqrt(0.01 / 3) = 0.0577350; (1/30) / 0.0577350 = 0.577350.
    assert metrics.sortino_ratio(equity, YEAR) == D("0.5774")


def _snapshot(total: str) -> PortfolioSnapshot:
    return PortfolioSnapshot(
        initial_balance_usd=D(10_000),
        cash_usd=D(total),
        positions_value_usd=D(0),
        total_value_usd=D(total),
        realized_pnl_usd=D(480),
        unrealized_pnl_usd=D(0),
        fees_usd=D(12),
        gas_usd=D("0.5"),
    )


def test_compute_profit_factor_and_win_rate() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    result = metrics.compute(
        now=now,
        portfolio=_snapshot("10500"),
        equity=[D(10_000), D(10_500)],
        bar_seconds=3600,
        closed_trade_pnls=[D(30), D(-10), D(20), D(-5), D(0)],
        total_trades=9,
        reverted_trades=1,
    )
    # Wins 30 + 20 = 50; losses (a break-even counts as one) 10 + 5 + 0 = 15: 50 / 15 = 3.3333.
    assert result.profit_factor == D("3.3333")
    assert (result.closed_trades, result.winning_trades, result.losing_trades) == (5, 2, 3)
    assert result.win_rate_percent == D(40)  # 2 of 5
    assert (result.best_trade_usd, result.worst_trade_usd) == (D(30), D(-10))
    assert result.total_pnl_usd == D(500)
    assert result.return_percent == D(5)  # 500 / 10,000
    assert (result.total_trades, result.reverted_trades) == (9, 1)
    assert (result.fees_usd, result.gas_usd) == (D(12), D("0.5"))
    assert result.sharpe_ratio is None  # a single return
    assert result.max_drawdown_percent == 0
    assert result.computed_at == now


@pytest.mark.parametrize(
    "pnls",
    [
        pytest.param([D(5), D(7)], id="no-losses"),
        pytest.param([D(-5), D(0)], id="no-wins"),
        pytest.param([], id="no-trades"),
    ],
)
def test_profit_factor_is_undefined_without_wins_and_losses(pnls: list[Decimal]) -> None:
    result = metrics.compute(
        now=datetime(2026, 1, 5, tzinfo=UTC),
        portfolio=_snapshot("10000"),
        equity=[],
        bar_seconds=3600,
        closed_trade_pnls=pnls,
        total_trades=len(pnls),
        reverted_trades=0,
    )
    assert result.profit_factor is None
    wins = sum(1 for p in pnls if p > 0)
    assert result.win_rate_percent == (D(wins * 100) / len(pnls) if pnls else 0)
    assert result.best_trade_usd == (max(pnls) if pnls else None)


# -- the bot loop ----------------------------------------------------------------------------


class _Collect:
    def __init__(self, stop_after: int | None = None, stop: threading.Event | None = None):
        self.results: list[TickResult] = []
        self.stop_after = stop_after
        self.stop = stop

    def publish(self, result: TickResult) -> None:
        self.results.append(result)
        if self.stop is not None and len(self.results) == self.stop_after:
            self.stop.set()


def _loop(
    ticks: int,
    *,
    config_source: Callable[[], TradingConfig] | None = None,
    max_runtime_seconds: float | None = None,
    max_ticks: int | None = None,
    monotonic: Callable[[], float] | None = None,
) -> tuple[BotLoop, _Collect, threading.Event, list[datetime]]:
    """A bot over `ticks` hours of constant prices whose strategy always holds."""
    h = harness()
    timeline = [at(k) for k in range(ticks)]
    for now in timeline:
        h.source.table[now] = dict(START_PRICES)
    stop = threading.Event()
    sink = _Collect()
    loop = BotLoop(
        h.analyzer,
        ReplaySchedule(timeline),
        [sink],
        stop,
        config_source=config_source,
        max_runtime_seconds=max_runtime_seconds,
        max_ticks=max_ticks,
    )
    if monotonic is not None:
        loop.monotonic = monotonic
    return loop, sink, stop, timeline


def test_the_loop_completes_when_the_schedule_ends() -> None:
    loop, sink, _, timeline = _loop(5)
    outcome = loop.run()
    assert (outcome.ticks, outcome.reason) == (5, EndReason.COMPLETED)
    assert [r.timestamp for r in sink.results] == timeline
    assert [r.tick_number for r in sink.results] == [1, 2, 3, 4, 5]


def test_the_loop_stops_on_the_stop_event() -> None:
    loop, sink, stop, _ = _loop(10)
    sink.stop, sink.stop_after = stop, 3  # the third result asks to stop
    outcome = loop.run()
    assert (outcome.ticks, outcome.reason) == (3, EndReason.STOPPED)
    assert len(sink.results) == 3


def test_a_loop_stopped_before_it_starts_runs_no_tick() -> None:
    loop, sink, stop, _ = _loop(10)
    stop.set()
    assert loop.run().ticks == 0
    assert sink.results == []


def test_the_loop_stops_at_max_ticks() -> None:
    loop, sink, _, _ = _loop(10, max_ticks=4)
    outcome = loop.run()
    assert (outcome.ticks, outcome.reason) == (4, EndReason.TICK_LIMIT)
    assert len(sink.results) == 4


class _Busy:
    """A sink that takes `seconds(result)` of the fake clock's time to publish."""

    def __init__(self, clock: FakeClock, seconds: Callable[[TickResult], float]) -> None:
        self.clock, self.seconds = clock, seconds

    def publish(self, result: TickResult) -> None:
        self.clock.advance(self.seconds(result))


class _Paced:
    """A schedule that waits `seconds` of the fake clock's time before each tick."""

    def __init__(self, inner: TickSchedule, clock: FakeClock, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def ticks(self, stop: threading.Event) -> Iterator[datetime]:
        for now in self.inner.ticks(stop):
            self.clock.advance(self.seconds)
            yield now


def test_the_loop_stops_at_the_runtime_limit() -> None:
    clock = FakeClock(0.0)
    # 10 s per tick: 10, 20, 30 >= 25 after the third tick.
    loop, sink, _, _ = _loop(10, max_runtime_seconds=25.0, monotonic=clock)
    loop.sinks = [*loop.sinks, _Busy(clock, lambda _: 10.0)]
    outcome = loop.run()
    assert (outcome.ticks, outcome.reason) == (3, EndReason.RUNTIME_LIMIT)
    assert len(sink.results) == 3


@pytest.mark.parametrize("reads_config", [True, False])
def test_the_loop_reports_each_ticks_duration_without_pacing(reads_config: bool) -> None:
    clock = FakeClock(0.0)
    loop, _, _, _ = _loop(3, monotonic=clock)
    config = loop.analyzer.config

    def slow_config() -> TradingConfig:
        clock.advance(1.0)
        return config

    if reads_config:
        loop.config_source = slow_config
    loop.schedule = _Paced(loop.schedule, clock, 100.0)  # waiting for a tick is not its time
    loop.sinks = [*loop.sinks, _Busy(clock, lambda result: 0.5 * result.tick_number)]
    durations: list[float] = []
    loop.on_tick_duration = durations.append
    assert loop.run().ticks == 3
    read = 1.0 if reads_config else 0.0
    assert durations == [read + 0.5, read + 1.0, read + 1.5]


def test_the_loop_applies_the_config_source_every_tick() -> None:
    # The user narrows the bot to LINK, then switches it to AAVE, then to both.
    configs = iter(
        [
            TradingConfig(allowed_tokens=("LINK",)),
            TradingConfig(allowed_tokens=("AAVE",)),
            TradingConfig(allowed_tokens=TOKENS, confidence_threshold=D(90)),
        ]
    )
    loop, sink, _, _ = _loop(3, config_source=lambda: next(configs))
    strategy = loop.analyzer.strategy
    assert isinstance(strategy, ScriptedStrategy)
    outcome = loop.run()
    assert outcome.ticks == 3
    views = strategy.views
    assert [(v.now, v.symbol) for v in views] == [
        (at(0), "LINK"),
        (at(1), "AAVE"),
        (at(2), "AAVE"),
        (at(2), "LINK"),
    ]
    assert views[-1].config.confidence_threshold == D(90)
    assert loop.analyzer.config.confidence_threshold == D(90)
    assert len(sink.results) == 3


# -- the log sink ----------------------------------------------------------------------------

LOGGER = "tests.dexpaper.bot"
TAGS = ("[PRICE]", "[DECISION]", "[TRADE]", "[POSITION]", "[CIRCUIT BREAKER]", "[PERFORMANCE]")


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]
    caplog.clear()
    return lines


def _tags(lines: list[tuple[int, str]]) -> set[str]:
    return {tag for _, message in lines for tag in TAGS if message.startswith(tag)}


def test_log_sink_tags_each_kind_of_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    sink = LogSink(logging.getLogger(LOGGER), "REPLAY")
    h = harness(TradingConfig(allowed_tokens=("LINK",), max_daily_trades=1, metrics_every_ticks=2))

    # Tick 1: prices and a HOLD; no trade, no position, no metrics (every 2nd tick).
    sink.publish(h.tick(0))
    lines = _lines(caplog)
    assert _tags(lines) == {"[PRICE]", "[DECISION]"}
    (price,) = [m for _, m in lines if m.startswith("[PRICE]")]
    assert (
        price == "[PRICE] REPLAY 2026-01-05 00:00:00+00:00 tick 1: ETH $3,000.0000, LINK $20.0000"
    )
    (decision,) = [(lvl, m) for lvl, m in lines if m.startswith("[DECISION]")]
    assert decision == (
        logging.DEBUG,  # HOLDs are chatter
        "[DECISION] 2026-01-05 00:00:00+00:00 HOLD LINK (confidence 10, risk 20): Nothing to do.",
    )

    # Tick 2: a BUY, its trade and position, and the metrics.
    result = h.tick(1, plan=[buy("LINK", "1000")])
    sink.publish(result)
    lines = _lines(caplog)
    assert _tags(lines) == {"[PRICE]", "[DECISION]", "[TRADE]", "[POSITION]", "[PERFORMANCE]"}
    (trade_event,) = result.of_type(TradeExecuted)
    trade = trade_event.trade
    (trade_line,) = [(lvl, m) for lvl, m in lines if m.startswith("[TRADE]")]
    assert trade_line[0] == logging.INFO
    assert trade_line[1] == (
        f"[TRADE] 2026-01-05 01:00:00+00:00 BUY {trade.amount_in} USDC -> "
        f"{trade.amount_out} LINK @ ${trade.execution_price_usd} fee ${trade.fee_usd} "
        f"impact {trade.price_impact_bps} bps gas ${trade.gas_usd}"
    )
    assert any(lvl == logging.INFO and "BUY LINK (confidence 80" in m for lvl, m in lines)
    (position_line,) = [(lvl, m) for lvl, m in lines if m.startswith("[POSITION]")]
    assert position_line[0] == logging.DEBUG
    assert f"LINK qty {trade.amount_out}" in position_line[1]
    assert "(closed)" not in position_line[1]
    (performance,) = [(lvl, m) for lvl, m in lines if m.startswith("[PERFORMANCE]")]
    assert performance[0] == logging.INFO
    value = result.portfolio.total_value_usd
    assert performance[1].startswith(
        f"[PERFORMANCE] value ${value:,.2f} P&L ${value - D(10_000):,.2f} ("
    )
    assert "trades 1 win rate 0.00% max drawdown" in performance[1]  # nothing closed yet

    # Tick 3: LINK's stop-loss sells and closes (the day's 2nd trade), then the one-trade daily
    # limit is checked and trips.
    sink.publish(h.tick(2, LINK="18"))
    lines = _lines(caplog)
    assert "[CIRCUIT BREAKER]" in _tags(lines)
    (breaker,) = [(lvl, m) for lvl, m in lines if m.startswith("[CIRCUIT BREAKER]")]
    assert breaker == (
        logging.WARNING,
        "[CIRCUIT BREAKER] daily_trade_limit: 2 trades today reached the daily limit of 1; "
        "entries resume at 00:00 UTC",
    )
    assert any(m.startswith("[POSITION]") and m.endswith("(closed)") for _, m in lines)
    assert any(m.startswith("[TRADE]") and " SELL " in m for _, m in lines)

    # Tick 4: ETH is missing; tick 5: it is back.
    sink.publish(h.tick(3, missing={"ETH": "gap"}))
    lines = _lines(caplog)
    assert (logging.WARNING, "[PRICE] no ETH price to value gas (gap); not trading") in lines
    assert "[CIRCUIT BREAKER]" not in _tags(lines)
    sink.publish(h.tick(4))
    assert (logging.INFO, "[PRICE] prices available again; trading resumes") in _lines(caplog)


def test_log_sink_warns_about_a_reverted_trade(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    h = harness()
    result = h.tick(0, plan=[buy("LINK", "100")])
    (event,) = result.of_type(TradeExecuted)
    reverted = replace(
        event.trade, status=TradeStatus.REVERTED, revert_reason="price moved 1.20% against"
    )
    LogSink(logging.getLogger(LOGGER), "LIVE").publish(
        replace(result, events=(TradeExecuted(reverted),))
    )
    assert _lines(caplog) == [
        (
            logging.WARNING,
            "[TRADE] 2026-01-05 00:00:00+00:00 BUY LINK REVERTED (price moved 1.20% against); "
            f"gas ${reverted.gas_usd} paid",
        )
    ]
