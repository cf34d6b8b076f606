"""Fee offers of each gas strategy, the EIP-1559 base-fee rule and the replacement bump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine.chains import ARBITRUM, ETHEREUM
from paper_trading.engine.dex.gas import GasModel, next_base_fee
from paper_trading.engine.tx.fee_path import ModelledFeePath, ScriptedFeePath
from paper_trading.engine.tx.gas_strategies import (
    FAST,
    SLOW,
    STANDARD,
    FeeBid,
    Legacy,
    PercentileTier,
    WaitForCheaper,
    gas_strategy,
)
from paper_trading.engine.tx.retry import RetryPolicy

GWEI = 10**9
NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)


def _path(
    base_fees: list[int], rewards: list[tuple[int, int, int]] | None = None
) -> ScriptedFeePath:
    return ScriptedFeePath(ETHEREUM, NOW, base_fees, rewards or [(0, 0, 0)])


def test_eip1559_worked_examples_full_empty_and_at_target() -> None:
    limit = 30_000_000
    # Full block: +1/8 = +12.5%; empty block: -12.5%; exactly at target (half full): unchanged.
    assert next_base_fee(10 * GWEI, limit, limit) == 11_250_000_000
    assert next_base_fee(10 * GWEI, 0, limit) == 8_750_000_000
    assert next_base_fee(10 * GWEI, limit // 2, limit) == 10 * GWEI
    # Chained: 10 -> full 11.25 -> full 12.65625 -> empty 11.07421875 -> target 11.07421875.
    fee = 10 * GWEI
    for used, expected in [
        (limit, 11_250_000_000),
        (limit, 12_656_250_000),
        (0, 11_074_218_750),
        (limit // 2, 11_074_218_750),
    ]:
        fee = next_base_fee(fee, used, limit)
        assert fee == expected
    # Three quarters full: +1/8 x (0.75 - 0.5) / 0.5 = +6.25%.
    assert next_base_fee(16 * GWEI, limit * 3 // 4, limit) == 17 * GWEI


def test_legacy_offers_a_fixed_multiple_of_the_base_fee_as_its_whole_price() -> None:
    path = _path([8 * GWEI, 10 * GWEI])
    assert Legacy().bid(path, 1, 0) == FeeBid(12_500_000_000, 12_500_000_000)
    assert Legacy(Decimal(2)).bid(path, 0, 0) == FeeBid(16 * GWEI, 16 * GWEI)
    # Rounded up to the wei: 1.25 x 7 wei = 8.75 -> 9.
    assert Legacy().bid(_path([7]), 0, 0) == FeeBid(9, 9)


def test_percentile_tiers_tip_from_fee_history_and_cap_at_twice_the_base_fee() -> None:
    # Every block paid 1 / 2 / 5 gwei at the 10th / 50th / 90th percentile; next base 10 gwei.
    path = _path([10 * GWEI], [(1 * GWEI, 2 * GWEI, 5 * GWEI)])
    assert SLOW.bid(path, 30, 0) == FeeBid(21 * GWEI, 1 * GWEI)
    assert STANDARD.bid(path, 30, 0) == FeeBid(22 * GWEI, 2 * GWEI)
    assert FAST.bid(path, 30, 0) == FeeBid(25 * GWEI, 5 * GWEI)


def test_percentile_tip_is_the_mean_over_the_history_window() -> None:
    rows = [(n * GWEI, 10 * n * GWEI, 100 * n * GWEI) for n in range(6)]
    path = _path([3 * GWEI] * 6, rows)
    # Block 5 looks at blocks 1..4: mean 10th percentile = (1+2+3+4)/4 = 2.5 gwei.
    tier = PercentileTier("slow4", 10, history_blocks=4)
    assert tier.bid(path, 5, 0) == FeeBid(6 * GWEI + 2_500_000_000, 2_500_000_000)
    assert PercentileTier("fast4", 90, history_blocks=4).bid(path, 5, 0).max_priority_fee_wei == (
        250 * GWEI
    )
    with pytest.raises(ValueError, match="percentile must be one of"):
        PercentileTier("odd", 75)


def test_tiers_offer_no_tip_where_the_sequencer_ignores_tips() -> None:
    path = ScriptedFeePath(ARBITRUM, NOW, [GWEI // 100], [(GWEI, GWEI, GWEI)])
    assert FAST.bid(path, 30, 0) == FeeBid(GWEI // 50, 0)
    assert path.min_tip_wei(30) == 0


def test_wait_for_cheaper_holds_until_threshold_or_deadline() -> None:
    path = _path([10 * GWEI, 10 * GWEI, 9 * GWEI, 7 * GWEI])
    wait = WaitForCheaper(threshold_wei=8 * GWEI, deadline_blocks=5)
    assert wait.bid(path, 1, 0) is None
    assert wait.bid(path, 2, 1) is None
    # Below the threshold: bids as the standard tier (no tips in this history).
    assert wait.bid(path, 3, 2) == FeeBid(14 * GWEI, 0)
    # The deadline releases it even though the base fee is still high.
    assert wait.bid(path, 1, 5) == FeeBid(20 * GWEI, 0)
    assert WaitForCheaper(8 * GWEI, 5, then=Legacy()).bid(path, 3, 2) == FeeBid(
        8_750_000_000, 8_750_000_000
    )


def test_strategies_by_name() -> None:
    assert gas_strategy("fast") is FAST
    assert gas_strategy("legacy") == Legacy()
    with pytest.raises(ValueError, match="unknown gas strategy 'turbo'"):
        gas_strategy("turbo")


def test_replacement_bumps_tip_and_max_fee_by_at_least_ten_percent() -> None:
    retry = RetryPolicy()
    old = FeeBid(20 * GWEI, 2 * GWEI)
    # The strategy wants no more: the node's 10% bump decides.
    assert retry.bumped(old, old) == FeeBid(22 * GWEI, 2_200_000_000)
    # The strategy wants more tip: it gets it; the max fee still rises 10%.
    assert retry.bumped(old, FeeBid(21 * GWEI, 3 * GWEI)) == FeeBid(22 * GWEI, 3 * GWEI)
    # Rounded up so the node's threshold is met: 11 wei x 1.1 = 12.1 -> 13.
    assert retry.bumped(FeeBid(11, 11), FeeBid(11, 11)) == FeeBid(13, 13)
    assert RetryPolicy(bump_percent=25).bumped(old, old) == FeeBid(25 * GWEI, 2_500_000_000)
    with pytest.raises(ValueError, match="less than 10%"):
        RetryPolicy(bump_percent=5)


def test_fee_bid_rejects_a_tip_above_the_max_fee() -> None:
    with pytest.raises(ValueError, match="tip <= max fee"):
        FeeBid(1, 2)
    # What the builder gets: the tip, capped by what the max fee leaves above the base fee.
    assert FeeBid(22 * GWEI, 2 * GWEI).effective_tip_wei(10 * GWEI) == 2 * GWEI
    assert FeeBid(11 * GWEI, 2 * GWEI).effective_tip_wei(10 * GWEI) == GWEI


def test_modelled_path_follows_the_gas_model() -> None:
    model = GasModel(ETHEREUM, seed=4)
    path = ModelledFeePath(model)
    block = path.block_at(NOW)
    assert block == model.block_number(NOW)
    assert path.time_of(block) <= NOW < path.time_of(block + 1)
    assert path.time_of(block + 1) - path.time_of(block) == timedelta(seconds=12)
    for n in (block, block + 1, block + 7):
        assert path.base_fee_wei(n) == model.modelled_base_fee_wei(path.time_of(n))
    # Tips spread 0.5x / 1x / 2x around a seeded per-block level; same seed, same tips.
    low, mid, high = path.rewards_wei(block)
    assert 0 < low < mid < high
    assert mid - 2 * low in (0, 1)
    assert high - 2 * mid in (0, 1)
    assert ModelledFeePath(GasModel(ETHEREUM, seed=4)).rewards_wei(block) == (low, mid, high)
    assert ModelledFeePath(GasModel(ARBITRUM)).rewards_wei(block) == (0, 0, 0)
