"""A swap as a paper transaction over scripted and modelled base-fee paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from paper_trading.engine.chains import ARBITRUM, ETHEREUM, PoolKind, PoolSpec
from paper_trading.engine.dex.gas import GasModel
from paper_trading.engine.dex.quote import Side, SwapQuote
from paper_trading.engine.dex.simulator import V2_REVERT_GAS, DexSimulator
from paper_trading.engine.tx.fee_path import ModelledFeePath, ScriptedFeePath
from paper_trading.engine.tx.gas_strategies import (
    FAST,
    SLOW,
    STANDARD,
    GasStrategy,
    Legacy,
    WaitForCheaper,
)
from paper_trading.engine.tx.lifecycle import TxOutcome, TxState
from paper_trading.engine.tx.manager import PriceAt, TransactionManager
from paper_trading.engine.tx.retry import RetryPolicy

GWEI = 10**9
NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
MID = Decimal(2500)
ETH_USD = Decimal(2500)
V2_WETH = {"WETH": PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))}
SIM = DexSimulator(ETHEREUM, pool_overrides=V2_WETH)
BLOCK = timedelta(seconds=12)
LEGACY = Legacy()


def _flat(_: datetime) -> Decimal:
    return MID


def _quote(sim: DexSimulator = SIM, usdc: str = "1000") -> SwapQuote:
    return sim.quote("WETH", Side.BUY, Decimal(usdc), MID, ETH_USD, Decimal("0.5"), NOW)


def _send(
    base_fees: list[int],
    strategy: GasStrategy = LEGACY,
    rewards: list[tuple[int, int, int]] | None = None,
    retry: RetryPolicy | None = None,
    price_at: PriceAt = _flat,
) -> TxOutcome:
    path = ScriptedFeePath(ETHEREUM, NOW, base_fees, rewards or [(0, 0, 0)])
    manager = TransactionManager(SIM, path, strategy, retry)
    return manager.send(_quote(), NOW, price_at, needs_approval=False)


def _states(outcome: TxOutcome) -> list[tuple[TxState, int, int]]:
    return [(e.state, e.attempt, e.block) for e in outcome.events]


def test_included_in_the_next_block_at_the_offered_gas_price() -> None:
    outcome = _send([10 * GWEI])
    assert _states(outcome) == [(TxState.SUBMITTED, 0, 1), (TxState.INCLUDED, 0, 1)]
    submitted, included = outcome.events
    assert submitted.at == NOW
    assert included.at == NOW + BLOCK
    assert included.max_fee_wei == 12_500_000_000
    assert included.base_fee_wei == 10 * GWEI
    assert outcome.state is TxState.INCLUDED
    assert not outcome.failed
    assert outcome.failures == 0
    assert outcome.delay_blocks == 1
    assert outcome.strategy == "legacy"
    # A legacy price is paid whole: 121,000 gas x 12.5 gwei = 0.0015125 ETH = $3.78125.
    fill = outcome.fill
    assert fill is not None
    assert not fill.reverted
    assert fill.gas.base_fee_gwei == Decimal(10)
    assert fill.gas.priority_fee_gwei == Decimal("2.5")
    assert fill.gas.total_usd == Decimal("3.78125") == outcome.gas_usd
    assert fill.amount_out == Decimal("0.398402792415961286")  # the hand-worked V2 pool


def test_eip1559_pays_base_plus_tip_not_the_max_fee() -> None:
    outcome = _send([10 * GWEI], STANDARD, rewards=[(GWEI, 2 * GWEI, 5 * GWEI)])
    fill = outcome.fill
    assert fill is not None
    assert outcome.events[-1].max_fee_wei == 22 * GWEI
    # 121,000 x (10 + 2) gwei = 0.001452 ETH = $3.63, cheaper than legacy's $3.78125.
    assert fill.gas.total_usd == Decimal("3.63")


def test_fill_uses_the_price_at_inclusion_and_reverts_below_the_minimum() -> None:
    # The price jumps 1% the moment block 1 lands: a 0.5% tolerance BUY reverts.
    def jump(at: datetime) -> Decimal:
        return MID * Decimal("1.01") if at >= NOW + BLOCK else MID

    outcome = _send([10 * GWEI], price_at=jump)
    assert _states(outcome) == [(TxState.SUBMITTED, 0, 1), (TxState.REVERTED, 0, 1)]
    assert outcome.failed
    assert outcome.failures == 1
    fill = outcome.fill
    assert fill is not None
    assert fill.reverted
    assert fill.amount_out == 0
    assert fill.inclusion_mid_price_usd == Decimal(2525)
    # V2 checks the minimum first: 30,000 gas x 12.5 gwei = 0.000375 ETH = $0.9375 burned.
    assert fill.gas.gas_units == V2_REVERT_GAS
    assert fill.gas.total_usd == Decimal("0.9375") == outcome.gas_usd
    assert "below minimum" in outcome.events[-1].reason


#: Block 1 wants a 5 gwei tip; blocks 2-3 spike the base fee to 3 gwei; block 4 is back to 1.
SPIKE = [GWEI, GWEI, 3 * GWEI, 3 * GWEI, GWEI]
SPIKE_REWARDS = [(0, 0, 0), (5 * GWEI, 5 * GWEI, 5 * GWEI), (0, 0, 0)]


def test_pending_through_a_base_fee_spike_then_included() -> None:
    outcome = _send(SPIKE, rewards=SPIKE_REWARDS, retry=RetryPolicy(stuck_after_blocks=10))
    assert _states(outcome) == [
        (TxState.SUBMITTED, 0, 1),
        (TxState.PENDING, 0, 1),
        (TxState.INCLUDED, 0, 4),
    ]
    assert outcome.delay_blocks == 4
    assert outcome.failures == 0
    assert outcome.events[-1].at == NOW + 4 * BLOCK
    # Legacy offered 1.25 gwei: a 0.25 gwei tip over the 1 gwei base of block 4.
    assert outcome.fill is not None
    assert outcome.fill.gas.priority_fee_gwei == Decimal("0.25")


def test_stuck_transaction_is_replaced_with_a_ten_percent_bump_then_included() -> None:
    # Legacy at 12.5 gwei over a 10 gwei base leaves a 2.5 gwei tip; blocks want at least 3.
    outcome = _send(
        [10 * GWEI],
        Legacy(),
        rewards=[(3 * GWEI, 4 * GWEI, 5 * GWEI)],
        retry=RetryPolicy(stuck_after_blocks=2),
    )
    assert _states(outcome) == [
        (TxState.SUBMITTED, 0, 1),
        (TxState.PENDING, 0, 1),
        (TxState.REPLACED, 0, 2),
        (TxState.SUBMITTED, 1, 3),
        (TxState.INCLUDED, 1, 3),
    ]
    replacement = outcome.events[3]
    assert replacement.max_fee_wei == replacement.max_priority_fee_wei == 13_750_000_000
    assert replacement.at == NOW + 2 * BLOCK  # sent when block 2 landed without it
    assert "tip 2.5 gwei below the block's least 3 gwei" in outcome.events[1].reason
    assert outcome.state is TxState.INCLUDED
    assert not outcome.failed
    assert outcome.failures == 1  # the replaced attempt
    # 121,000 gas x 13.75 gwei = 0.00166375 ETH = $4.159375.
    assert outcome.gas_usd == Decimal("4.159375")


def test_dropped_after_the_last_replacement_pays_no_gas() -> None:
    outcome = _send(
        [10 * GWEI],
        Legacy(),
        rewards=[(100 * GWEI, 100 * GWEI, 100 * GWEI)],
        retry=RetryPolicy(stuck_after_blocks=2, max_replacements=1),
    )
    assert _states(outcome) == [
        (TxState.SUBMITTED, 0, 1),
        (TxState.PENDING, 0, 1),
        (TxState.REPLACED, 0, 2),
        (TxState.SUBMITTED, 1, 3),
        (TxState.PENDING, 1, 3),
        (TxState.DROPPED, 1, 4),
    ]
    assert outcome.fill is None
    assert outcome.gas_usd == 0
    assert outcome.failed
    assert outcome.failures == 2
    assert "still stuck after 1 replacements" in outcome.events[-1].reason


def test_dropped_when_a_replacement_would_pass_the_fee_cap() -> None:
    outcome = _send(
        [10 * GWEI],
        Legacy(),
        rewards=[(3 * GWEI, 3 * GWEI, 3 * GWEI)],
        retry=RetryPolicy(stuck_after_blocks=2, max_fee_cap_wei=13 * GWEI),
    )
    assert _states(outcome) == [
        (TxState.SUBMITTED, 0, 1),
        (TxState.PENDING, 0, 1),
        (TxState.DROPPED, 0, 2),
    ]
    assert "13.75 gwei, above the cap 13 gwei" in outcome.events[-1].reason
    assert outcome.failures == 1


def test_dropped_at_the_deadline() -> None:
    retry = RetryPolicy(stuck_after_blocks=10, deadline_blocks=3)
    outcome = _send(SPIKE, rewards=SPIKE_REWARDS, retry=retry)
    assert _states(outcome)[-1] == (TxState.DROPPED, 0, 3)
    assert outcome.events[-1].reason == (
        "not included within 3 blocks: max fee 1.25 gwei below base fee 3 gwei"
    )
    assert outcome.fill is None
    assert outcome.failures == 1


def test_wait_for_cheaper_sends_once_the_base_fee_drops() -> None:
    wait = WaitForCheaper(threshold_wei=8 * GWEI, deadline_blocks=10)
    outcome = _send([10 * GWEI, 10 * GWEI, 9 * GWEI, 7 * GWEI], wait)
    assert _states(outcome) == [(TxState.SUBMITTED, 0, 3), (TxState.INCLUDED, 0, 3)]
    assert outcome.events[0].at == NOW + 2 * BLOCK
    assert "after holding 2 blocks" in outcome.events[0].reason
    assert outcome.decided_block == 0
    assert outcome.delay_blocks == 3
    # 121,000 gas x 7 gwei (no tips in this history) = $2.1175, against legacy's 12.5 gwei now.
    assert outcome.gas_usd == Decimal("2.1175")


def test_wait_for_cheaper_gives_up_waiting_at_its_deadline() -> None:
    outcome = _send([10 * GWEI], WaitForCheaper(threshold_wei=8 * GWEI, deadline_blocks=2))
    assert _states(outcome) == [(TxState.SUBMITTED, 0, 3), (TxState.INCLUDED, 0, 3)]


def test_slow_tier_waits_for_a_block_whose_cheapest_tip_it_beats() -> None:
    # History tips 1 gwei at the 10th percentile; blocks 1-2 are busy (3 gwei), block 3 quiet.
    rewards = [(GWEI, 2 * GWEI, 3 * GWEI)] + [(3 * GWEI, 3 * GWEI, 3 * GWEI)] * 2
    rewards += [(GWEI // 2, GWEI, 2 * GWEI)]
    outcome = _send([10 * GWEI], SLOW, rewards=rewards, retry=RetryPolicy(stuck_after_blocks=5))
    assert _states(outcome) == [
        (TxState.SUBMITTED, 0, 1),
        (TxState.PENDING, 0, 1),
        (TxState.INCLUDED, 0, 3),
    ]
    fast = _send([10 * GWEI], FAST, rewards=rewards)
    assert fast.events[-1].block == 1


def test_first_come_first_served_chain_includes_without_a_tip() -> None:
    sim = DexSimulator(ARBITRUM)
    path = ScriptedFeePath(ARBITRUM, NOW, [GWEI // 100], [(GWEI, GWEI, GWEI)])
    outcome = TransactionManager(sim, path, Legacy()).send(_quote(sim), NOW, _flat, False)
    assert outcome.state is TxState.INCLUDED
    assert outcome.events[-1].block == 1
    fill = outcome.fill
    assert fill is not None
    assert fill.gas.priority_fee_gwei == 0
    assert fill.gas.base_fee_gwei == Decimal("0.01")


def test_modelled_path_is_deterministic_and_bills_the_block_it_lands_in() -> None:
    def run(seed: int) -> TxOutcome:
        model = GasModel(ETHEREUM, seed=seed)
        sim = DexSimulator(ETHEREUM, seed=seed, pool_overrides=V2_WETH, gas_model=model)
        manager = TransactionManager(sim, ModelledFeePath(model), STANDARD)
        return manager.send(_quote(sim), NOW, _flat, needs_approval=True)

    first = run(3)
    assert first == run(3)
    landed = first.events[-1]
    fill = first.fill
    assert fill is not None
    assert fill.approval_gas is not None
    assert fill.gas.base_fee_gwei == Decimal(landed.base_fee_wei).scaleb(-9)
    assert fill.approval_gas.base_fee_gwei == fill.gas.base_fee_gwei
    assert first.gas_usd == fill.gas.total_usd + fill.approval_gas.total_usd
