"""Gas bills per chain: EIP-1559 base fee model, tips, Arbitrum L1 gas, OP-stack L1 data fee."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine.chains import ARBITRUM, BASE, BASE_SEPOLIA, ETHEREUM, Chain
from paper_trading.engine.dex.gas import (
    HISTORY_BLOCKS,
    GasModel,
    LiveGasFigures,
    block_gas_used,
    fjord_l1_fee_wei,
    next_base_fee,
)

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
ETH_USD = Decimal(3000)
GWEI = 10**9

# Fjord with the default OP-stack params (swap of 200 FastLZ bytes, L1 base fee 2 gwei, blob
# base fee 1 wei, scalars 2269 / 1_055_762):
#   estimatedSizeScaled = max(100e6, -42_585_600 + 836_500 * 200) = 124_714_400
#   l1FeeScaled = 2269 * 2_000_000_000 * 16 + 1_055_762 * 1 = 72_608_001_055_762
#   l1Fee = 124_714_400 * 72_608_001_055_762 // 10**12 = 9_055_263_286 wei (~9 gwei of ETH)
SWAP_L1_FEE_WEI = 9_055_263_286


def test_eip1559_full_block_raises_by_exactly_one_eighth() -> None:
    limit = 30_000_000
    assert next_base_fee(GWEI, limit, limit) == 1_125_000_000
    assert next_base_fee(GWEI, 0, limit) == 875_000_000
    assert next_base_fee(GWEI, limit // 2, limit) == GWEI
    # 1 gas over target: 10**9 * 1 // 15_000_000 // 8 = 8 wei more.
    assert next_base_fee(GWEI, limit // 2 + 1, limit) == GWEI + 8
    # A tiny fee would round that to 0: it still rises by at least 1 wei.
    assert next_base_fee(100, limit // 2 + 1, limit) == 101


def test_eip1559_moves_at_most_12_5_percent() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        fee = rng.randint(10**6, 10**11)
        limit = rng.randint(10**6, 10**8)
        new = next_base_fee(fee, rng.randint(0, limit), limit)
        assert fee * 7 // 8 <= new <= fee * 9 // 8 + 1


def test_modelled_base_fee_is_deterministic_across_instances() -> None:
    first = GasModel(ETHEREUM, seed=3).modelled_base_fee_wei(NOW)
    assert GasModel(ETHEREUM, seed=3).modelled_base_fee_wei(NOW) == first
    assert GasModel(ETHEREUM, seed=3).cost(120_000, NOW, ETH_USD) == GasModel(
        ETHEREUM, seed=3
    ).cost(120_000, NOW, ETH_USD)
    # Same block (12 s blocks) -> same fee; another seed draws another path.
    assert GasModel(ETHEREUM, seed=3).modelled_base_fee_wei(NOW + timedelta(seconds=5)) == first
    others = {GasModel(ETHEREUM, seed=s).modelled_base_fee_wei(NOW) for s in range(10)}
    assert len(others) > 1


def test_block_gas_used_is_uniform_over_the_limit_and_keyed_by_seed_and_chain() -> None:
    draws = [block_gas_used(0, 1, n, 1000) for n in range(5000)]
    assert min(draws) == 0
    assert max(draws) == 1000
    assert 480 < sum(draws) / len(draws) < 520  # uniform: mean near half the limit
    assert draws[:50] != [block_gas_used(1, 1, n, 1000) for n in range(50)]
    assert draws[:50] != [block_gas_used(0, 10, n, 1000) for n in range(50)]


def test_modelled_base_fee_replays_the_rule_over_seeded_blocks() -> None:
    model = GasModel(ETHEREUM, seed=5)
    block = model.block_number(NOW)
    assert block == int(NOW.timestamp()) // 12
    fee = 2 * GWEI  # the profile's base fee, 2 gwei
    for number in range(block - HISTORY_BLOCKS, block):
        used = block_gas_used(5, 1, number, 45_000_000)
        assert 0 <= used <= 45_000_000
        fee = next_base_fee(fee, used, 45_000_000)
    assert model.modelled_base_fee_wei(NOW) == fee
    # 64 blocks of at most +/-12.5% each keep the fee within that envelope.
    assert 2 * GWEI * 0.875**64 < fee < 2 * GWEI * 1.125**64


def test_modelled_base_fee_clamps_each_block_at_the_floor_and_block_after_block() -> None:
    # Arbitrum starts on its floor: the rule is applied, then the floor, at every block. One
    # model asked block after block (overlapping windows) agrees with a fresh model per block.
    floor_wei = 10_000_000
    limit = ARBITRUM.gas.block_gas_limit
    model = GasModel(ARBITRUM, seed=9)
    for step in range(0, 200, 3):
        moment = NOW + timedelta(seconds=step / 4)
        block = model.block_number(moment)
        fee = floor_wei
        for number in range(block - HISTORY_BLOCKS, block):
            fee = max(floor_wei, next_base_fee(fee, block_gas_used(9, 42161, number, limit), limit))
        assert model.modelled_base_fee_wei(moment) == fee
        assert GasModel(ARBITRUM, seed=9).modelled_base_fee_wei(moment) == fee


@pytest.mark.parametrize("chain", [ARBITRUM, BASE_SEPOLIA, BASE, ETHEREUM])
def test_base_fee_never_under_the_chain_minimum(chain: Chain) -> None:
    floor_wei = int(chain.gas.min_base_fee_gwei * GWEI)
    for minutes in range(0, 600, 7):
        model = GasModel(chain, seed=minutes)
        assert model.modelled_base_fee_wei(NOW + timedelta(minutes=minutes)) >= floor_wei


def test_arbitrum_base_fee_sits_on_its_floor_at_times() -> None:
    # Arbitrum starts at its 0.01 gwei floor, so a falling path is clamped there.
    fees = [GasModel(ARBITRUM, seed=s).modelled_base_fee_wei(NOW) for s in range(20)]
    assert min(fees) == 10_000_000


def test_ethereum_has_no_l1_fee_and_pays_the_tip() -> None:
    model = GasModel(ETHEREUM)
    cost = model.cost(120_000, NOW, ETH_USD)
    base_wei = model.modelled_base_fee_wei(NOW)
    assert cost.gas_units == 120_000
    assert cost.l1_fee_native == 0
    assert cost.priority_fee_gwei == Decimal("0.5")
    expected_wei = 120_000 * (base_wei + 500_000_000)
    assert cost.execution_fee_native == Decimal(expected_wei) / 10**18
    assert cost.total_native == cost.execution_fee_native
    assert cost.total_usd == (cost.total_native * ETH_USD).quantize(Decimal("0.00000001"))
    assert cost.source == "default"


@pytest.mark.parametrize("chain", [BASE, BASE_SEPOLIA])
def test_op_stack_adds_the_fjord_l1_data_fee(chain: Chain) -> None:
    model = GasModel(chain)
    cost = model.cost(120_000, NOW, ETH_USD)
    assert cost.l1_fee_native == Decimal(SWAP_L1_FEE_WEI) / 10**18
    assert cost.l1_fee_native > 0
    assert cost.total_native == cost.execution_fee_native + cost.l1_fee_native
    base_wei = model.modelled_base_fee_wei(NOW)
    assert cost.execution_fee_native == Decimal(120_000 * (base_wei + 1_000_000)) / 10**18


def test_fjord_formula_and_its_size_floor() -> None:
    assert fjord_l1_fee_wei(200, 2 * GWEI, 1, 2269, 1_055_762) == SWAP_L1_FEE_WEI
    # Anything under ~171 compressed bytes is billed as 100 bytes:
    #   100_000_000 * 72_608_001_055_762 // 10**12 = 7_260_800_105 wei
    assert fjord_l1_fee_wei(90, 2 * GWEI, 1, 2269, 1_055_762) == 7_260_800_105
    assert fjord_l1_fee_wei(10, 2 * GWEI, 1, 2269, 1_055_762) == 7_260_800_105


def test_arbitrum_ignores_tips_and_adds_l1_gas_units() -> None:
    model = GasModel(ARBITRUM)
    cost = model.cost(120_000, NOW, ETH_USD)
    assert cost.gas_units == 180_000  # 120_000 execution + 60_000 for L1 data
    assert cost.priority_fee_gwei == 0
    assert cost.l1_fee_native == 0
    base_wei = model.modelled_base_fee_wei(NOW)
    assert cost.execution_fee_native == Decimal(180_000 * base_wei) / 10**18


def test_approval_uses_the_profile_approve_gas() -> None:
    cost = GasModel(BASE).approval_cost(NOW, ETH_USD)
    assert cost.gas_units == BASE.gas.approve_gas
    # A small approve tx is billed at Fjord's 100-byte floor.
    assert cost.l1_fee_native == Decimal(7_260_800_105) / 10**18


def test_rpc_overrides_replace_the_model() -> None:
    live = LiveGasFigures(
        base_fee_gwei=Decimal("12.5"),
        priority_fee_gwei=Decimal("1.5"),
        l1_fee_native=Decimal("0.0000001"),
    )
    cost = GasModel(BASE, overrides=live).cost(100_000, NOW, ETH_USD)
    assert cost.source == "rpc"
    assert cost.base_fee_gwei == Decimal("12.5")
    assert cost.priority_fee_gwei == Decimal("1.5")
    assert cost.execution_fee_native == Decimal("0.0014")  # 100_000 * 14 gwei
    assert cost.l1_fee_native == Decimal("0.0000001")
    assert cost.total_usd == Decimal("4.2003")  # 0.0014001 ETH * 3000


def test_rpc_overrides_keep_modelled_l1_fee_and_arbitrum_tip_rule() -> None:
    live = LiveGasFigures(base_fee_gwei=Decimal("0.02"), priority_fee_gwei=Decimal(1))
    base_cost = GasModel(BASE, overrides=live).cost(100_000, NOW, ETH_USD)
    assert base_cost.l1_fee_native == Decimal(SWAP_L1_FEE_WEI) / 10**18
    arb_cost = GasModel(ARBITRUM, overrides=live).cost(100_000, NOW, ETH_USD)
    assert arb_cost.priority_fee_gwei == 0
    assert arb_cost.source == "rpc"


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        GasModel(ETHEREUM).cost(100_000, datetime(2026, 1, 5), ETH_USD)
