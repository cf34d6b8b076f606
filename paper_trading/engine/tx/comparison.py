"""Gas strategies side by side: the same swaps, fee path and prices, one strategy at a time.

The design notes claim 23.1% gas savings for the transaction manager over legacy gas pricing;
this replays a list of swaps (a backtest's trades) through a `TransactionManager` per strategy
over ONE fee path, with ONE seeded price walk per swap, so the strategies differ only in how they
bid. Savings compare gas per included swap (gas burned by reverts included), so a strategy cannot
look cheap by dropping or reverting swaps instead of doing them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from paper_trading.engine import money
from paper_trading.engine.backtest import BacktestResult, PreparedBacktest
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import TradeStatus
from paper_trading.engine.strategies.indicators import volatility
from paper_trading.engine.tx.fee_path import FeePath
from paper_trading.engine.tx.gas_strategies import (
    FAST,
    SLOW,
    STANDARD,
    WAIT_DEADLINE_BLOCKS,
    WAIT_DISCOUNT_PERCENT,
    GasStrategy,
    Legacy,
    wait_for_cheaper_at,
)
from paper_trading.engine.tx.lifecycle import TxOutcome, TxState
from paper_trading.engine.tx.manager import TransactionManager
from paper_trading.engine.tx.retry import RetryPolicy

#: The strategy every other one is measured against ("TX Manager vs Legacy").
BASELINE = "legacy"
#: Bars of closes the pending-price volatility is measured over, as the paper bot measures it.
VOLATILITY_BARS = 50
_P95 = Decimal("0.95")
_Delay = TypeVar("_Delay", int, Decimal)

#: The strategy for a swap decided while `block` was being built on `path`.
StrategyFor = Callable[[FeePath, int], GasStrategy]


@dataclass(frozen=True)
class Swap:
    """A trade to replay: what was swapped, when it was decided and the market then."""

    symbol: str
    side: Side
    #: BUY: stablecoin to spend; SELL: token quantity to sell.
    amount_in: Decimal
    at: datetime
    mid_price_usd: Decimal
    native_price_usd: Decimal
    slippage_tolerance_percent: Decimal
    #: How fast the mid price wanders while the swap is pending (log returns per sqrt second).
    volatility_per_sqrt_second: float = 0.0
    needs_approval: bool = False


class PriceWalk:
    """The mid price after a swap's decision: a seeded log-normal walk, one step per block.

    Seeded by (seed, symbol, decision time) and drawn in block order, so every strategy sees the
    same price in the same block, whatever order they ask in.
    """

    def __init__(self, swap: Swap, block_seconds: Decimal, seed: int) -> None:
        self.swap = swap
        self.block_seconds = float(block_seconds)
        self.step_sigma = swap.volatility_per_sqrt_second * math.sqrt(self.block_seconds)
        self._rng = random.Random(f"{seed}:{swap.symbol}:{swap.at.isoformat()}:walk")
        self._levels = [0.0]

    def __call__(self, when: datetime) -> Decimal:
        elapsed = (when - self.swap.at).total_seconds()
        steps = max(0, math.ceil(elapsed / self.block_seconds))
        while len(self._levels) <= steps:
            self._levels.append(self._levels[-1] + self._rng.gauss(0.0, self.step_sigma))
        factor = Decimal(math.exp(self._levels[steps]))
        return money.price(money.mul(self.swap.mid_price_usd, factor))


def fixed(strategy: GasStrategy) -> StrategyFor:
    """The same strategy for every swap."""
    return lambda path, block: strategy


def wait_for_cheaper(
    discount_percent: int = WAIT_DISCOUNT_PERCENT, deadline_blocks: int = WAIT_DEADLINE_BLOCKS
) -> StrategyFor:
    """Hold each swap for a base fee `discount_percent` below the next block's at decision."""

    def build(path: FeePath, block: int) -> GasStrategy:
        return wait_for_cheaper_at(path, block, discount_percent, deadline_blocks)

    return build


def default_strategies() -> dict[str, StrategyFor]:
    """Every strategy an account can select, legacy first."""
    return {
        BASELINE: fixed(Legacy()),
        SLOW.name: fixed(SLOW),
        STANDARD.name: fixed(STANDARD),
        FAST.name: fixed(FAST),
        "wait_for_cheaper": wait_for_cheaper(),
    }


@dataclass(frozen=True)
class StrategyFigures:
    """What one strategy did with the swaps; rates and savings in percent."""

    strategy: str
    transactions: int
    included: int
    reverted: int
    dropped: int
    gas_usd: Decimal
    #: Blocks and seconds from each decision to its landing (included or reverted).
    delays_blocks: tuple[int, ...]
    delays_seconds: tuple[Decimal, ...]
    #: Against the baseline's gas per included swap; None when either included none.
    savings_percent: Decimal | None

    @property
    def included_rate(self) -> Decimal:
        return _rate(self.included, self.transactions)

    @property
    def reverted_rate(self) -> Decimal:
        return _rate(self.reverted, self.transactions)

    @property
    def dropped_rate(self) -> Decimal:
        return _rate(self.dropped, self.transactions)

    @property
    def gas_per_included_usd(self) -> Decimal | None:
        """All gas paid (reverts' burned gas too) per swap that actually happened."""
        if not self.included:
            return None
        return money.usd(money.div(self.gas_usd, Decimal(self.included)))

    @property
    def mean_delay_blocks(self) -> Decimal | None:
        return _mean([Decimal(d) for d in self.delays_blocks])

    @property
    def p95_delay_blocks(self) -> int | None:
        return _p95(self.delays_blocks)

    @property
    def mean_delay_seconds(self) -> Decimal | None:
        return _mean(list(self.delays_seconds))

    @property
    def p95_delay_seconds(self) -> Decimal | None:
        return _p95(self.delays_seconds)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures: Decimals as strings, so no money turns into a float."""
        figures: dict[str, object] = {
            "strategy": self.strategy,
            "transactions": self.transactions,
            "included": self.included,
            "reverted": self.reverted,
            "dropped": self.dropped,
            "included_rate_percent": self.included_rate,
            "reverted_rate_percent": self.reverted_rate,
            "dropped_rate_percent": self.dropped_rate,
            "gas_usd": self.gas_usd,
            "gas_per_included_usd": self.gas_per_included_usd,
            "mean_delay_blocks": self.mean_delay_blocks,
            "p95_delay_blocks": self.p95_delay_blocks,
            "mean_delay_seconds": self.mean_delay_seconds,
            "p95_delay_seconds": self.p95_delay_seconds,
            "savings_vs_legacy_percent": self.savings_percent,
        }
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in figures.items()}


def compare(
    swaps: Sequence[Swap],
    simulator: DexSimulator,
    path: FeePath,
    strategies: Mapping[str, StrategyFor] | None = None,
    retry: RetryPolicy | None = None,
    seed: int = 0,
) -> list[StrategyFigures]:
    """Replay `swaps` under each strategy over `path`; figures in the strategies' order.

    The baseline (`legacy`) must be among the strategies: savings are measured against it.
    """
    chosen = default_strategies() if strategies is None else dict(strategies)
    if BASELINE not in chosen:
        raise ValueError(f"the comparison needs the {BASELINE} strategy to measure savings")
    walks = [PriceWalk(s, path.chain.gas.block_time_seconds, seed) for s in swaps]
    quotes = [
        simulator.quote(
            s.symbol,
            s.side,
            s.amount_in,
            s.mid_price_usd,
            s.native_price_usd,
            s.slippage_tolerance_percent,
            s.at,
        )
        for s in swaps
    ]
    outcomes: dict[str, list[tuple[Swap, TxOutcome]]] = {}
    for name, strategy_for in chosen.items():
        results = outcomes[name] = []
        for swap, quote, walk in zip(swaps, quotes, walks, strict=True):
            strategy = strategy_for(path, path.block_at(swap.at))
            manager = TransactionManager(simulator, path, strategy, retry)
            results.append((swap, manager.send(quote, swap.at, walk, swap.needs_approval)))
    baseline = _figures(BASELINE, outcomes[BASELINE], None)
    return [_figures(name, done, baseline) for name, done in outcomes.items()]


def swaps_from_backtest(prepared: PreparedBacktest, result: BacktestResult) -> list[Swap]:
    """The backtest's executed trades as swaps decided at their tick, priced from its candles.

    A trade that reverted in the backtest records no size, so only executed trades replay.
    """
    source, chain = prepared.source, prepared.chain
    native = chain.token(chain.native_price_token).price_symbol
    bar_seconds = source.interval_seconds
    swaps = []
    for trade in result.trades:
        if trade.status is not TradeStatus.EXECUTED:
            continue
        symbol = chain.token(trade.symbol).price_symbol
        history = source.history(symbol, trade.created_at, VOLATILITY_BARS + 1)
        closes = [close for _, close in history]
        percent_per_bar = volatility(closes, VOLATILITY_BARS) or 0.0
        swaps.append(
            Swap(
                symbol=trade.symbol,
                side=Side(trade.side),
                amount_in=trade.amount_in,
                at=trade.created_at,
                mid_price_usd=closes[-1],
                native_price_usd=source.history(native, trade.created_at, 1)[-1][1],
                slippage_tolerance_percent=trade.slippage_tolerance_bps / 100,
                volatility_per_sqrt_second=percent_per_bar / 100 / math.sqrt(bar_seconds),
                needs_approval=trade.approval_gas_usd > 0,
            )
        )
    return swaps


def _figures(
    name: str, done: list[tuple[Swap, TxOutcome]], baseline: StrategyFigures | None
) -> StrategyFigures:
    states = [outcome.state for _, outcome in done]
    landed = [(s, o) for s, o in done if o.state in (TxState.INCLUDED, TxState.REVERTED)]
    figures = StrategyFigures(
        strategy=name,
        transactions=len(done),
        included=states.count(TxState.INCLUDED),
        reverted=states.count(TxState.REVERTED),
        dropped=states.count(TxState.DROPPED),
        gas_usd=money.usd(sum((o.gas_usd for _, o in done), money.ZERO)),
        delays_blocks=tuple(o.delay_blocks for _, o in landed),
        delays_seconds=tuple(
            Decimal(str((o.events[-1].at - s.at).total_seconds())) for s, o in landed
        ),
        savings_percent=None,
    )
    ours = figures.gas_per_included_usd
    theirs = (baseline or figures).gas_per_included_usd
    if ours is None or not theirs:
        return figures
    with_savings = money.ratio(money.div(theirs - ours, theirs) * money.HUNDRED)
    return replace(figures, savings_percent=with_savings)


def _rate(count: int, total: int) -> Decimal:
    if not total:
        return money.ZERO
    return money.ratio(money.div(Decimal(count) * money.HUNDRED, Decimal(total)))


def _mean(values: list[Decimal]) -> Decimal | None:
    if not values:
        return None
    return money.ratio(money.div(sum(values, money.ZERO), Decimal(len(values))))


def _p95(values: Sequence[_Delay]) -> _Delay | None:
    """Nearest-rank 95th percentile: the smallest value at least 95% of them do not exceed."""
    if not values:
        return None
    rank = math.ceil(_P95 * len(values))
    return sorted(values)[rank - 1]
