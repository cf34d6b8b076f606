"""The engine over recorded history with no database: the same objects the bot runs.

Used by benchmarks now (and by the `backtest` command later); a test proves it makes exactly the
trades a paper bot makes on the same replay.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Protocol

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.chains import Chain, Token
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import (
    PerformanceSnapshot,
    PortfolioSnapshot,
    ThoughtLogged,
    TickResult,
    TradeExecuted,
    TradeRecord,
)
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.loop import BotLoop
from paper_trading.engine.portfolio import Portfolio
from paper_trading.engine.prices.feed import PriceFeedService, PriceSource
from paper_trading.engine.schedule import ReplaySchedule
from paper_trading.engine.strategies.base import Strategy

BACKTEST_NAMESPACE = uuid.UUID("00000000-0000-0000-0000-00000000b4c7")


def priced_universe(chain: Chain, available_symbols: Sequence[str]) -> list[Token]:
    """The chain's tradable tokens that the price source can actually price."""
    available = set(available_symbols)
    return [t for t in chain.tradable_tokens if t.price_symbol in available]


@dataclass
class Collector:
    """An in-memory event sink: keeps trades and the last tick's figures."""

    trades: list[TradeRecord] = field(default_factory=list)
    thoughts: int = 0
    last: TickResult | None = None

    def publish(self, result: TickResult) -> None:
        self.trades.extend(e.trade for e in result.of_type(TradeExecuted))
        self.thoughts += len(result.of_type(ThoughtLogged))
        self.last = result


@dataclass(frozen=True)
class BacktestResult:
    ticks: int
    trades: list[TradeRecord]
    thoughts: int
    portfolio: PortfolioSnapshot
    performance: PerformanceSnapshot


class _PricedSource(PriceSource, Protocol):
    def symbols_available(self) -> list[str]: ...


def run_backtest(
    *,
    chain: Chain,
    source: _PricedSource,
    timeline: Sequence,  # type: ignore[type-arg]
    bar_seconds: int,
    strategy: Strategy,
    config: TradingConfig | None = None,
    initial_balance_usd: Decimal = Decimal(10_000),
    seed: int = 0,
) -> BacktestResult:
    """Run `strategy` over `timeline` as fast as possible and return what it did."""
    ticks = list(timeline)[strategy.warmup_bars :]
    analyzer = MarketAnalyzer(
        chain=chain,
        feed=PriceFeedService(source, max_age=timedelta(seconds=bar_seconds)),
        strategy=strategy,
        simulator=DexSimulator(chain, seed=seed),
        portfolio=Portfolio.new(initial_balance_usd),
        config=config or TradingConfig(),
        ids=IdFactory(BACKTEST_NAMESPACE),
        bar_seconds=bar_seconds,
        universe=priced_universe(chain, source.symbols_available()),
    )
    if ticks:
        analyzer.warm_up(ticks[0] - timedelta(seconds=1))
    collector = Collector()
    outcome = BotLoop(analyzer, ReplaySchedule(ticks, None), [collector], threading.Event()).run()
    assert collector.last is not None, "the timeline had no ticks"
    portfolio = collector.last.portfolio
    return BacktestResult(
        ticks=outcome.ticks,
        trades=collector.trades,
        thoughts=collector.thoughts,
        portfolio=portfolio,
        performance=analyzer.performance(collector.last.timestamp, portfolio),
    )
