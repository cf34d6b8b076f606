"""The engine over recorded history with no database: the same objects the bot runs.

`run_backtest` wires a `MarketAnalyzer` exactly as the paper bot does and runs it as fast as
possible, collecting trades and the equity curve in memory; a test proves it makes exactly the
trades a paper bot makes on the same replay. `BacktestConfig` and `prepare` turn the `backtest`
command's options (strategy, tokens, period, data folder, fee model) into those inputs, checking
each one and naming the option at fault.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, Protocol

from paper_trading.engine import metrics, money
from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.chains import Chain, PoolSpec, Token, get_chain
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.pools import PIPS
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import (
    EventSink,
    PerformanceSnapshot,
    PortfolioSnapshot,
    QuietTicks,
    QuietTicksSink,
    ThoughtLogged,
    TickResult,
    TradeExecuted,
    TradeRecord,
)
from paper_trading.engine.fast_forward import FastForward
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.portfolio import Portfolio
from paper_trading.engine.prices.feed import PriceFeedService, PriceSource, PriceUnavailableError
from paper_trading.engine.prices.replay import (
    DEFAULT_DATA_DIR,
    ReplaySource,
    candle_file,
    interval_to_seconds,
)
from paper_trading.engine.strategies.base import Strategy
from paper_trading.engine.strategies.catalog import load_strategy_class
from paper_trading.engine.strategies.contract import StrategyContractError, check_recording

BACKTEST_NAMESPACE = uuid.UUID("00000000-0000-0000-0000-00000000b4c7")
#: Basis points in a pool fee expressed in pips (hundredths of a basis point).
_PIPS_PER_BPS = 100


def priced_universe(chain: Chain, available_symbols: Sequence[str]) -> list[Token]:
    """The chain's tradable tokens that the price source can actually price."""
    available = set(available_symbols)
    return [t for t in chain.tradable_tokens if t.price_symbol in available]


class EquityPoint(NamedTuple):
    """One tick's value (a named tuple: a long backtest makes one per bar)."""

    at: datetime
    value_usd: Decimal
    #: The part of `value_usd` held in tokens, at market prices (for exposure).
    positions_usd: Decimal


@dataclass
class Collector:
    """An in-memory event sink: keeps trades, the equity curve and the last tick's figures.

    Ticks without prices (a feed gap) add no equity point, as in the analyzer's own curve.
    """

    trades: list[TradeRecord] = field(default_factory=list)
    thoughts: int = 0
    equity: list[EquityPoint] = field(default_factory=list)
    last: TickResult | None = None

    def publish(self, result: TickResult) -> None:
        self.trades.extend(e.trade for e in result.of_type(TradeExecuted))
        self.thoughts += len(result.of_type(ThoughtLogged))
        if not result.counters.feed_problem:
            p = result.portfolio
            self.equity.append(
                EquityPoint(result.timestamp, p.total_value_usd, p.positions_value_usd)
            )
        self.last = result

    def publish_quiet(self, ticks: QuietTicks) -> None:
        self.thoughts += ticks.thoughts
        self.equity.extend(map(EquityPoint._make, ticks.equity))
        self.last = ticks.last


@dataclass(frozen=True)
class BacktestResult:
    ticks: int
    trades: list[TradeRecord]
    thoughts: int
    portfolio: PortfolioSnapshot
    performance: PerformanceSnapshot
    equity: tuple[EquityPoint, ...] = ()
    bar_seconds: int = 0

    @property
    def period_seconds(self) -> float:
        """From the bar before the first tick (cash only) to the last tick."""
        if not self.equity:
            return 0.0
        return (self.equity[-1].at - self.equity[0].at).total_seconds() + self.bar_seconds

    @property
    def annualized_return_percent(self) -> Decimal | None:
        return metrics.annualized_return_percent(
            self.portfolio.initial_balance_usd, self.portfolio.total_value_usd, self.period_seconds
        )

    @property
    def exposure_percent(self) -> Decimal:
        return metrics.exposure_percent((p.positions_usd, p.value_usd) for p in self.equity)

    @property
    def drawdown_percent(self) -> list[Decimal]:
        return metrics.drawdown_series(p.value_usd for p in self.equity)

    @property
    def per_token(self) -> list[metrics.TradeGroup]:
        return metrics.per_token(self.trades)

    @property
    def per_exit_reason(self) -> list[metrics.TradeGroup]:
        return metrics.per_exit_reason(self.trades)

    def breakdown(self, period: str) -> list[metrics.PeriodResult]:
        """Results per calendar day, week or month (`metrics.PERIODS`)."""
        return metrics.breakdown(
            ((p.at, p.value_usd) for p in self.equity),
            self.trades,
            self.portfolio.initial_balance_usd,
            period,
        )


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
    pool_overrides: Mapping[str, PoolSpec] | None = None,
    sinks: Sequence[EventSink] = (),
    namespace: uuid.UUID = BACKTEST_NAMESPACE,
    skip_quiet_ticks: bool = True,
) -> BacktestResult:
    """Run `strategy` over `timeline` as fast as possible and return what it did.

    `pool_overrides` replace tokens' pools (e.g. another fee tier); `sinks` see every tick after
    the collector (a progress bar, a recorder for the database); `namespace` derives the ids.
    Ticks where the strategy can only hold run in bulk (`FastForward`) when every sink takes
    `QuietTicks`; `skip_quiet_ticks=False` runs each one through the analyzer (same result).
    """
    ticks = list(timeline)[strategy.warmup_bars :]
    analyzer = MarketAnalyzer(
        chain=chain,
        feed=PriceFeedService(source, max_age=timedelta(seconds=bar_seconds)),
        strategy=strategy,
        simulator=DexSimulator(chain, seed=seed, pool_overrides=pool_overrides),
        portfolio=Portfolio.new(initial_balance_usd),
        config=config or TradingConfig(),
        ids=IdFactory(namespace),
        bar_seconds=bar_seconds,
        universe=priced_universe(chain, source.symbols_available()),
    )
    if ticks:
        analyzer.warm_up(ticks[0] - timedelta(seconds=1))
    collector = Collector()
    everyone: list[EventSink] = [collector, *sinks]
    quiet_sinks = [s for s in everyone if isinstance(s, QuietTicksSink)]
    bulk = skip_quiet_ticks and len(quiet_sinks) == len(everyone)
    fast = FastForward(analyzer, ticks) if bulk else None
    i = 0
    while i < len(ticks):
        end = fast.quiet_until(i) if fast is not None else i
        if fast is not None and end > i:
            quiet = fast.run(i, end)
            for sink in quiet_sinks:
                sink.publish_quiet(quiet)
            i = end
            continue
        result = analyzer.tick(ticks[i])
        for each in everyone:
            each.publish(result)
        i += 1
    assert collector.last is not None, "the timeline had no ticks"
    portfolio = collector.last.portfolio
    return BacktestResult(
        ticks=len(ticks),
        trades=collector.trades,
        thoughts=collector.thoughts,
        portfolio=portfolio,
        performance=analyzer.performance(collector.last.timestamp, portfolio),
        equity=tuple(collector.equity),
        bar_seconds=bar_seconds,
    )


# -- the backtest command's options ----------------------------------------------------------


class OptionError(ValueError):
    """A backtest option is wrong; `option` names it as the command line spells it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option


def fee_overrides(chain: Chain, fee_model: str) -> dict[str, PoolSpec]:
    """Pools for a fee model: `pool` (each pool's own tier), `flat:<bps>` or `none` (no fee).

    Only the fee tier changes; pool kind and depth stay the chain's, so the simulator prices
    impact and gas exactly as before.
    """
    text = fee_model.strip().lower()
    if text == "pool":
        return {}
    if text == "none":
        pips = 0
    else:
        kind, _, value = text.partition(":")
        try:
            bps = Decimal(value) if kind == "flat" else None
        except InvalidOperation:
            bps = None
        if bps is None or not bps.is_finite():
            raise OptionError(
                "--fee-model", f"{fee_model!r} is not pool, none or flat:<bps> (e.g. flat:30)"
            )
        if not 0 <= bps < 100 * _PIPS_PER_BPS:
            raise OptionError(
                "--fee-model", f"a flat fee must be from 0 to under 10000 bps, not {bps}"
            )
        pips_exact = bps * _PIPS_PER_BPS
        if pips_exact != pips_exact.to_integral_value():
            raise OptionError("--fee-model", f"{bps} bps is finer than a pool fee (0.01 bps steps)")
        pips = int(pips_exact)
    assert pips < PIPS
    return {
        t.symbol: dataclasses.replace(t.pool, fee_pips=pips)
        for t in chain.tradable_tokens
        if t.pool is not None
    }


@dataclass(frozen=True)
class BacktestConfig:
    """What to backtest, as the command's options give it (text where the user typed text)."""

    strategy: str = "intel_slider"
    params: Mapping[str, str] = field(default_factory=dict)
    chain: str = "base"
    #: Token symbols to trade; empty means every token the data prices on the chain.
    tokens: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    bar: str = "1h"
    initial_balance_usd: Decimal = Decimal(10_000)
    fee_model: str = "pool"
    seed: int = 0


@dataclass(frozen=True)
class PreparedBacktest:
    """Checked inputs, ready to run."""

    config: BacktestConfig
    chain: Chain
    strategy: Strategy
    source: ReplaySource
    timeline: list[datetime]
    universe: list[Token]
    pool_overrides: dict[str, PoolSpec]
    data_files: list[Path]
    trading: TradingConfig

    @property
    def ticks(self) -> int:
        return max(0, len(self.timeline) - self.strategy.warmup_bars)

    def run(
        self, *, sinks: Sequence[EventSink] = (), namespace: uuid.UUID = BACKTEST_NAMESPACE
    ) -> BacktestResult:
        return run_backtest(
            chain=self.chain,
            source=self.source,
            timeline=self.timeline,
            bar_seconds=self.source.interval_seconds,
            strategy=self.strategy,
            config=self.trading,
            initial_balance_usd=self.config.initial_balance_usd,
            seed=self.config.seed,
            pool_overrides=self.pool_overrides,
            sinks=sinks,
            namespace=namespace,
        )

    @cached_property
    def prices(self) -> dict[str, list[tuple[datetime, Decimal]]]:
        """Each traded token's closes over the ticks run (for price charts)."""
        ticks = self.timeline[self.strategy.warmup_bars :]
        if not ticks:
            return {}
        first, last = ticks[0], ticks[-1]
        limit = len(self.timeline)
        return {
            t.symbol: [
                (at, price)
                for at, price in self.source.history(t.price_symbol, last, limit)
                if at >= first
            ]
            for t in self.universe
        }


def prepare(config: BacktestConfig) -> PreparedBacktest:
    """Check every option and load the data; an `OptionError` names the first one at fault."""
    try:
        chain = get_chain(config.chain)
    except ValueError as exc:
        raise OptionError("--chain", str(exc)) from None
    try:
        strategy_class = load_strategy_class(config.strategy)
    except ValueError as exc:
        raise OptionError("--strategy", str(exc)) from None
    try:
        strategy = strategy_class.from_params(config.params)
    except (TypeError, ValueError) as exc:
        raise OptionError("--param", str(exc)) from None
    if config.initial_balance_usd <= 0:
        raise OptionError(
            "--initial-balance", f"must be positive, not {config.initial_balance_usd}"
        )
    if config.initial_balance_usd > money.MAX_INITIAL_BALANCE_USD:
        # As for an account made on the dashboard: --save stores it, the report prints it.
        raise OptionError(
            "--initial-balance",
            f"must be at most {money.MAX_INITIAL_BALANCE_USD:,}, not {config.initial_balance_usd}",
        )
    pool_overrides = fee_overrides(chain, config.fee_model)
    try:
        interval_to_seconds(config.bar)
    except ValueError as exc:
        raise OptionError("--bar", str(exc)) from None
    if config.start and config.end and config.start >= config.end:
        raise OptionError("--to", f"{config.end:%Y-%m-%d %H:%M} is not after --from")
    if not config.data_dir.is_dir():
        raise OptionError("--data", f"{config.data_dir} is not a folder")
    tokens = _chosen_tokens(chain, config.tokens)
    native = chain.token(chain.native_price_token).price_symbol
    symbols = sorted({t.price_symbol for t in tokens} | {native}) if config.tokens else None
    try:
        source = ReplaySource(config.data_dir, config.bar, symbols)
    except (PriceUnavailableError, ValueError) as exc:
        raise OptionError("--data", str(exc)) from None
    available = source.symbols_available()
    universe = priced_universe(chain, available)
    missing = [t.symbol for t in tokens if t not in universe]
    if missing or not universe:
        raise OptionError(
            "--tokens",
            f"no recorded {config.bar} prices for {', '.join(missing) or 'any token'} on "
            f"{chain.name} in {config.data_dir} (it has {', '.join(available)})",
        )
    timeline = source.timeline(config.start, config.end)
    if len(timeline) <= strategy.warmup_bars:
        whole = source.timeline()
        raise OptionError(
            "--from/--to",
            f"the period has {len(timeline)} {config.bar} bars, and {strategy.name} needs more "
            f"than {strategy.warmup_bars} to warm up (the data covers "
            f"{whole[0]:%Y-%m-%d %H:%M} .. {whole[-1]:%Y-%m-%d %H:%M} UTC)",
        )
    chosen = [t for t in universe if not config.tokens or t in tokens]
    try:
        check_recording(strategy, source, sorted({t.price_symbol for t in chosen}))
    except StrategyContractError as exc:
        raise OptionError("--strategy", str(exc)) from None
    return PreparedBacktest(
        config=config,
        chain=chain,
        strategy=strategy,
        source=source,
        timeline=timeline,
        universe=chosen,
        pool_overrides=pool_overrides,
        data_files=[candle_file(config.data_dir, s, config.bar) for s in available],
        trading=TradingConfig(allowed_tokens=tuple(t.symbol for t in tokens)),
    )


def _chosen_tokens(chain: Chain, symbols: Sequence[str]) -> list[Token]:
    tokens: list[Token] = []
    for symbol in symbols:
        try:
            token = chain.token(symbol)
        except ValueError as exc:
            raise OptionError("--tokens", str(exc)) from None
        if token not in chain.tradable_tokens:
            raise OptionError("--tokens", f"{token.symbol} is not tradable on {chain.name}")
        tokens.append(token)
    return tokens
