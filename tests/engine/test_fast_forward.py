"""Quiet stretches run in bulk end exactly where the tick-by-tick run ends.

Each case backtests the same strategy twice over the shipped recordings, once with quiet ticks
run in bulk (the default) and once tick by tick, and requires the same trades, equity curve,
metrics, breaker trips, positions and counters. The cases push on what the bulk path screens:
stop-loss, take-profit, trailing stop and max hold exits, every circuit breaker tripping and
clearing, day roll-overs and gaps in the recording.
"""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from paper_trading.engine.backtest import BacktestConfig, BacktestResult, prepare, run_backtest
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.events import (
    BreakerTripped,
    MetricsComputed,
    PositionChanged,
    PriceFeedChanged,
    QuietTicks,
    TickResult,
    TradeExecuted,
)
from paper_trading.engine.prices.replay import DEFAULT_DATA_DIR


class Recorder:
    """Keeps what sinks persist: trades, trips, feed changes, metrics, final positions."""

    def __init__(self) -> None:
        self.events: list[tuple[int, str, object]] = []
        self.metrics: list[object] = []
        self.positions: dict[Any, object] = {}
        self.quiet_stretches = 0
        self.last: TickResult | None = None

    def publish(self, result: TickResult) -> None:
        for event in result.events:
            if isinstance(event, TradeExecuted | BreakerTripped | PriceFeedChanged):
                self.events.append((result.tick_number, type(event).__name__, event))
            elif isinstance(event, PositionChanged):
                self.positions[event.position.position_id] = event.position
        self.metrics.extend(m.metrics for m in result.of_type(MetricsComputed))
        self.last = result

    def publish_quiet(self, ticks: QuietTicks) -> None:
        self.quiet_stretches += 1
        self.metrics.extend(m.metrics for m in ticks.metrics)
        for event in ticks.last.events:
            if isinstance(event, PositionChanged):
                self.positions[event.position.position_id] = event.position
        self.last = ticks.last


def _run(
    config: BacktestConfig, trading: TradingConfig, *, bulk: bool
) -> tuple[BacktestResult, Recorder]:
    prepared = prepare(config)
    recorder = Recorder()
    result = run_backtest(
        chain=prepared.chain,
        source=prepared.source,
        timeline=prepared.timeline,
        bar_seconds=prepared.source.interval_seconds,
        strategy=prepared.strategy,
        config=dataclasses.replace(trading, allowed_tokens=prepared.trading.allowed_tokens),
        initial_balance_usd=config.initial_balance_usd,
        sinks=[recorder],
        skip_quiet_ticks=bulk,
    )
    return result, recorder


def _with_gaps(tmp_path: Path, interval: str) -> Path:
    """The shipped recordings, with every 37th bar of BTC and every 101st of ETH removed."""
    for source in DEFAULT_DATA_DIR.glob(f"*_USDT-{interval}.csv.gz"):
        target = tmp_path / source.name
        every = {"BTC": 37, "ETH": 101}.get(source.name.split("_")[0])
        if every is None:
            shutil.copy(source, target)
            continue
        with gzip.open(source, "rt") as handle:
            header, *rows = handle.read().splitlines()
        kept = [row for i, row in enumerate(rows) if i % every != every - 1]
        with gzip.open(target, "wt") as handle:
            handle.write("\n".join([header, *kept]) + "\n")
    return tmp_path


D = Decimal
CASES: Mapping[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "crossover, default limits, every token": (
        {"strategy": "ma_crossover", "chain": "base"},
        {},
    ),
    "crossover, tight exits and trailing stop, 15m": (
        {
            "strategy": "ma_crossover",
            "params": {"fast_period": "3", "slow_period": "8", "size_percent": "40"},
            "chain": "arbitrum",
            "bar": "15m",
        },
        {
            "stop_loss_percent": D("1.5"),
            "take_profit_percent": D(2),
            "trailing_stop_percent": D("0.8"),
            "max_hold_hours": D(3),
            "max_position_size_percent": D(50),
        },
    ),
    "rsi, breakers tripping": (
        {
            "strategy": "rsi_reversion",
            "params": {"period": "6", "oversold": "35", "overbought": "60", "size_percent": "90"},
            "chain": "ethereum",
        },
        {
            "max_position_size_percent": D(100),
            "stop_loss_percent": D(0),
            "take_profit_percent": D(0),
            "max_hold_hours": D(0),
            "daily_loss_limit_percent": D("0.5"),
            "max_portfolio_loss_percent": D(2),
            "max_daily_trades": 3,
            "max_consecutive_failures": 1,
            "min_balance_usd": D(2000),
            "metrics_every_ticks": 7,
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("gaps", [False, True], ids=["whole", "gaps"])
def test_bulk_quiet_ticks_end_exactly_where_tick_by_tick_ends(
    case: str, gaps: bool, tmp_path: Path
) -> None:
    options, limits = CASES[case]
    data = _with_gaps(tmp_path, options.get("bar", "1h")) if gaps else DEFAULT_DATA_DIR
    config = BacktestConfig(data_dir=data, **options)
    trading = TradingConfig(**limits)

    bulk, bulk_sink = _run(config, trading, bulk=True)
    each, each_sink = _run(config, trading, bulk=False)

    assert bulk_sink.quiet_stretches > 0  # the bulk path ran
    assert each_sink.quiet_stretches == 0
    assert len(each.trades) > 5
    assert bulk.trades == each.trades
    assert bulk.equity == each.equity
    assert (bulk.ticks, bulk.thoughts) == (each.ticks, each.thoughts)
    assert bulk.portfolio == each.portfolio
    assert bulk.performance == each.performance
    assert bulk_sink.events == each_sink.events
    assert bulk_sink.metrics == each_sink.metrics
    assert bulk_sink.positions == each_sink.positions
    assert bulk_sink.last is not None
    assert each_sink.last is not None
    assert bulk_sink.last.counters == each_sink.last.counters
    assert bulk_sink.last.portfolio == each_sink.last.portfolio
    if case == "rsi, breakers tripping":
        tripped = {e.code for _, kind, e in each_sink.events if isinstance(e, BreakerTripped)}
        assert {"daily_loss", "daily_trade_limit", "minimum_balance"} <= tripped
    if gaps:  # ETH, the native token valuing gas, goes missing now and then
        assert any(kind == "PriceFeedChanged" for _, kind, _ in each_sink.events)


def test_a_sink_without_publish_quiet_sees_every_tick() -> None:
    seen: list[datetime] = []

    class EveryTick:
        def publish(self, result: TickResult) -> None:
            seen.append(result.timestamp)

    prepared = prepare(BacktestConfig(strategy="ma_crossover", chain="base", tokens=("WETH",)))
    result = prepared.run(sinks=[EveryTick()])

    assert len(seen) == result.ticks == prepared.ticks
