"""Gas strategies compared on the same swaps, fee path and prices, against hand-worked fees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine.chains import ETHEREUM, PoolKind, PoolSpec
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.tx.comparison import (
    PriceWalk,
    StrategyFigures,
    Swap,
    compare,
    default_strategies,
    fixed,
)
from paper_trading.engine.tx.fee_path import ScriptedFeePath
from paper_trading.engine.tx.gas_strategies import FAST, SLOW, Legacy
from paper_trading.engine.tx.retry import RetryPolicy

GWEI = 10**9
NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
#: A V2 WETH pool: 121,000 gas a swap, so 1 gwei per gas is 0.000121 ETH = $0.3025 at $2,500.
V2_WETH = {"WETH": PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))}
SIM = DexSimulator(ETHEREUM, pool_overrides=V2_WETH)


def _swap(at: datetime = NOW, volatility: float = 0.0, tolerance: str = "0.5") -> Swap:
    return Swap(
        symbol="WETH",
        side=Side.BUY,
        amount_in=Decimal(1000),
        at=at,
        mid_price_usd=Decimal(2500),
        native_price_usd=Decimal(2500),
        slippage_tolerance_percent=Decimal(tolerance),
        volatility_per_sqrt_second=volatility,
    )


def _by_name(figures: list[StrategyFigures]) -> dict[str, StrategyFigures]:
    return {f.strategy: f for f in figures}


def test_on_rising_fees_fast_lands_in_one_block_and_slow_waits_for_a_replacement() -> None:
    # Base fee 10, 11, 12, ... gwei; tips were (1, 2, 4) gwei at the 10th/50th/90th percentiles
    # up to the decision (block 0) and the least tip rises to 1.05 gwei from block 1.
    rising = [(10 + n) * GWEI for n in range(10)]
    rewards = [(GWEI, 2 * GWEI, 4 * GWEI), (1_050_000_000, 2 * GWEI, 4 * GWEI)]
    path = ScriptedFeePath(ETHEREUM, NOW, rising, rewards)
    strategies = {"legacy": fixed(Legacy()), "slow": fixed(SLOW), "fast": fixed(FAST)}

    got = _by_name(compare([_swap()], SIM, path, strategies))

    # fast: 11 gwei base + 4 gwei tip in block 1 = 15 gwei x 121,000 gas = $4.5375.
    assert (got["fast"].delays_blocks, got["fast"].gas_usd) == ((1,), Decimal("4.5375"))
    assert got["fast"].delays_seconds == (Decimal(12),)
    # legacy: 1.25 x 11 gwei = 13.75 gwei, all paid, in block 1 = $4.159375.
    assert (got["legacy"].delays_blocks, got["legacy"].gas_usd) == ((1,), Decimal("4.159375"))
    # slow: a 1 gwei tip misses blocks 1-3; replaced (+10%: 1.1 gwei) it lands in block 4 at
    # 14 + 1.1 gwei = $4.56775.
    assert (got["slow"].delays_blocks, got["slow"].gas_usd) == ((4,), Decimal("4.56775"))
    assert got["slow"].p95_delay_seconds == Decimal(48)
    # Savings against legacy per included swap: (4.159375 - 4.5375) / 4.159375 = -9.0909%.
    assert got["fast"].savings_percent == Decimal("-9.0909")
    assert got["slow"].savings_percent == Decimal("-9.8182")
    assert got["legacy"].savings_percent == Decimal(0)


def test_on_falling_fees_waiting_for_cheaper_pays_less_than_legacy() -> None:
    # Legacy pays 1.25 x 100 gwei in block 1. Waiting wants under 90 gwei (10% below block 1),
    # holds through block 1 and sends as `standard` in block 2: 85 + 2 gwei tip = 87 gwei.
    path = ScriptedFeePath(
        ETHEREUM, NOW, [100 * GWEI, 100 * GWEI, 85 * GWEI], [(GWEI, 2 * GWEI, 4 * GWEI)]
    )
    strategies = default_strategies()

    got = _by_name(compare([_swap()], SIM, path, strategies))

    legacy, waiting = got["legacy"], got["wait_for_cheaper"]
    assert legacy.gas_usd == Decimal("37.8125")  # 125 gwei x 121,000 gas x $2,500
    assert waiting.gas_usd == Decimal("26.3175")  # 87 gwei
    assert waiting.delays_blocks == (2,)
    assert waiting.savings_percent == Decimal("30.4")  # (125 - 87) / 125
    assert list(got) == ["legacy", "slow", "standard", "fast", "wait_for_cheaper"]


def test_totals_rates_and_delays_add_up_over_included_reverted_and_dropped_swaps() -> None:
    # Blocks want a 1 gwei tip; a legacy price of exactly the base fee tips nothing and, with no
    # replacement allowed, is dropped once stuck.
    path = ScriptedFeePath(ETHEREUM, NOW, [10 * GWEI], [(GWEI, 2 * GWEI, 4 * GWEI)])
    minute = timedelta(minutes=1)
    # With no slippage allowed, a buy reverts whenever the price walk rises by its block.
    swaps = [_swap(NOW + n * minute, volatility=0.001, tolerance="0") for n in range(8)]
    strategies = {"legacy": fixed(Legacy()), "tipless": fixed(Legacy(Decimal(1), "tipless"))}

    legacy, tipless = compare(swaps, SIM, path, strategies, RetryPolicy(max_replacements=0), 3)

    landing = [NOW + (n * 5 + 1) * timedelta(seconds=12) for n in range(8)]
    walks = [PriceWalk(s, Decimal(12), 3) for s in swaps]
    rose = sum(w(at) > w.swap.mid_price_usd for w, at in zip(walks, landing, strict=True))
    assert 0 < rose < 8  # the seed gives both outcomes
    assert (legacy.transactions, legacy.reverted, legacy.included) == (8, rose, 8 - rose)
    assert legacy.reverted_rate + legacy.included_rate == Decimal(100)
    assert legacy.reverted_rate == Decimal(rose * 100) / 8
    assert legacy.delays_blocks == (1,) * 8  # reverted swaps landed too
    assert legacy.mean_delay_seconds == Decimal(12)
    # A revert burns 30,000 gas on a V2 pool, a swap 121,000, each at 12.5 gwei ($0.00003125/gas).
    per_gas = Decimal("0.00003125")
    assert legacy.gas_usd == per_gas * (121_000 * (8 - rose) + 30_000 * rose)
    assert legacy.gas_per_included_usd == legacy.gas_usd / (8 - rose)

    assert (tipless.dropped, tipless.dropped_rate, tipless.gas_usd) == (8, Decimal(100), Decimal(0))
    assert tipless.delays_blocks == ()
    assert (tipless.mean_delay_blocks, tipless.p95_delay_blocks) == (None, None)
    assert (tipless.gas_per_included_usd, tipless.savings_percent) == (None, None)


def test_p95_is_the_nearest_rank_and_the_walk_is_the_same_in_any_order() -> None:
    figures = StrategyFigures("x", 20, 20, 0, 0, Decimal(0), tuple(range(1, 21)), (), None)
    assert figures.p95_delay_blocks == 19  # ceil(0.95 x 20) = 19th of 1..20
    assert figures.mean_delay_blocks == Decimal("10.5")

    late = NOW + timedelta(seconds=60)
    forward = PriceWalk(_swap(volatility=0.001), Decimal(12), 7)
    backward = PriceWalk(_swap(volatility=0.001), Decimal(12), 7)
    assert (
        backward(late) == forward(late) != PriceWalk(_swap(volatility=0.001), Decimal(12), 8)(late)
    )
    assert [backward(NOW + timedelta(seconds=s)) for s in (12, 24)] == [
        forward(NOW + timedelta(seconds=s)) for s in (12, 24)
    ]
    assert forward(NOW) == Decimal(2500)


def test_the_same_seed_gives_the_same_figures() -> None:
    path = ScriptedFeePath(ETHEREUM, NOW, [10 * GWEI, 12 * GWEI, 9 * GWEI], [(GWEI, GWEI, GWEI)])
    swaps = [_swap(NOW + timedelta(minutes=n), 0.001, "0.1") for n in range(5)]
    first = compare(swaps, SIM, path, seed=1)
    assert compare(swaps, SIM, path, seed=1) == first
    assert [f.to_dict() for f in compare(swaps, SIM, path, seed=2)] != [f.to_dict() for f in first]


def test_the_comparison_needs_legacy_as_its_baseline() -> None:
    path = ScriptedFeePath(ETHEREUM, NOW, [10 * GWEI])
    with pytest.raises(ValueError, match="needs the legacy strategy"):
        compare([_swap()], SIM, path, {"fast": fixed(FAST)})
