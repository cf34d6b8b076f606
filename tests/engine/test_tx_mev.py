"""Sandwich risk: profitable or not for the attacker, the victim's loss, privacy and seeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine import money
from paper_trading.engine.chains import ARBITRUM, ETHEREUM, PoolKind, PoolSpec
from paper_trading.engine.dex.pools import V2Pool, build_pool, v2_amount_out
from paper_trading.engine.dex.quote import Side, SwapFill
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.tx.fee_path import ScriptedFeePath
from paper_trading.engine.tx.gas_strategies import STANDARD
from paper_trading.engine.tx.lifecycle import TxState
from paper_trading.engine.tx.manager import TransactionManager
from paper_trading.engine.tx.mev import SandwichPolicy, assess_sandwich, plan_sandwich

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
MID = Decimal(2500)
GAS_USD = Decimal(10)
V2_WETH = {"WETH": PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))}
SIM = DexSimulator(ETHEREUM, pool_overrides=V2_WETH)
ALWAYS = SandwichPolicy(probability=Decimal(1))


def _fill(usdc: str, tolerance: str, sim: DexSimulator = SIM, side: Side = Side.BUY) -> SwapFill:
    quote = sim.quote("WETH", side, Decimal(usdc), MID, MID, Decimal(tolerance), NOW)
    return sim.execute(quote, NOW, MID, needs_approval=False)


def test_small_swap_with_tight_tolerance_is_not_worth_sandwiching() -> None:
    # $1,000 at 0.5% leaves about $5 to take; moving a $2M V2 pool 0.5% costs the attacker
    # 0.3% each way on a ~$2,500 front-run, ~$15 of pool fees, before gas.
    fill = _fill("1000", "0.5")
    outcome, got = assess_sandwich(ALWAYS, SIM, fill, NOW, GAS_USD)
    assert not outcome.profitable
    assert not outcome.sandwiched
    assert -GAS_USD - 15 < outcome.attacker_profit_usd < -GAS_USD
    assert outcome.cost_usd == 0
    assert got is fill


def test_large_swap_with_loose_tolerance_is_sandwiched_down_to_its_minimum() -> None:
    fill = _fill("50000", "1")
    outcome, got = assess_sandwich(ALWAYS, SIM, fill, NOW, GAS_USD)
    assert outcome.profitable
    assert outcome.sandwiched
    assert not outcome.private
    assert outcome.attacker_profit_usd > 0
    quote = fill.quote
    assert got.amount_out == quote.min_amount_out < fill.amount_out
    assert got.amount_in == fill.amount_in
    assert got.gas == fill.gas
    assert got.execution_price_usd == money.price(fill.amount_in / quote.min_amount_out)
    # The victim's loss is the tolerance bound: output minus minimum, valued at the mid.
    loss = money.usd((fill.amount_out - quote.min_amount_out) * MID)
    assert outcome.cost_usd == loss
    bound = fill.amount_out * Decimal("0.01") * MID
    assert bound - Decimal("0.000001") <= outcome.cost_usd <= bound + Decimal("0.000001")
    assert got.slippage_bps == pytest.approx(Decimal(100), abs=Decimal("0.0001"))


def test_gas_alone_can_make_a_sandwich_unprofitable() -> None:
    fill = _fill("50000", "0.5")
    cheap, _ = assess_sandwich(ALWAYS, SIM, fill, NOW, GAS_USD)
    assert cheap.sandwiched
    dear, got = assess_sandwich(ALWAYS, SIM, fill, NOW, cheap.attacker_profit_usd + 2 * GAS_USD)
    assert not dear.profitable
    assert not dear.sandwiched
    assert got is fill


def test_a_sell_is_sandwiched_and_its_loss_is_in_usdc() -> None:
    fill = _fill("20", "1", side=Side.SELL)
    outcome, got = assess_sandwich(ALWAYS, SIM, fill, NOW, GAS_USD)
    assert outcome.sandwiched
    assert got.amount_out == fill.quote.min_amount_out
    assert outcome.cost_usd == money.usd(fill.amount_out - fill.quote.min_amount_out)


def test_front_run_is_the_largest_the_victims_minimum_allows() -> None:
    token = ETHEREUM.token("WETH")
    usdc = ETHEREUM.quote_token
    pool = build_pool(V2_WETH["WETH"], token, usdc, MID)
    assert isinstance(pool, V2Pool)
    amount_in = 50_000 * 10**6
    min_out = 18 * 10**18
    attack = plan_sandwich(pool, usdc, amount_in, min_out, Decimal(1), GAS_USD)

    def victim_out(front_run: int) -> int:
        # USDC is token0 on mainnet (lower address): reserve0 is USDC, reserve1 WETH.
        bought = v2_amount_out(front_run, pool.reserve0, pool.reserve1, 3000)
        return v2_amount_out(amount_in, pool.reserve0 + front_run, pool.reserve1 - bought, 3000)

    assert victim_out(attack.front_run_in) >= min_out > victim_out(attack.front_run_in + 1)
    # Profit: what the back-run returns over the front-run, in USDC, less gas.
    gain = Decimal(attack.back_run_out - attack.front_run_in).scaleb(-6)
    assert attack.profit_usd == money.usd(gain - GAS_USD)


def test_deep_concentrated_pool_is_not_worth_sandwiching() -> None:
    # The default $150M 0.05% V3 WETH pool: a 0.5% move costs a multi-million front-run.
    sim = DexSimulator(ETHEREUM)
    outcome, _ = assess_sandwich(ALWAYS, sim, _fill("50000", "0.5", sim), NOW, GAS_USD)
    assert not outcome.profitable


def test_private_routing_avoids_the_sandwich_at_its_cost() -> None:
    policy = SandwichPolicy(probability=Decimal(1), private_routing=True)
    fill = _fill("50000", "1")
    outcome, got = assess_sandwich(policy, SIM, fill, NOW, GAS_USD)
    assert outcome.private
    assert not outcome.sandwiched
    assert got is fill
    assert outcome.cost_usd == Decimal("0.5")


def test_no_sandwich_without_a_public_mempool() -> None:
    sim = DexSimulator(ARBITRUM, pool_overrides=V2_WETH)
    fill = _fill("50000", "3", sim)
    outcome, got = assess_sandwich(ALWAYS, sim, fill, NOW, GAS_USD)
    assert not outcome.sandwiched
    assert outcome.cost_usd == 0
    assert got is fill
    assert "no public mempool" in outcome.reason


def test_probability_draw_is_seeded_and_deterministic() -> None:
    def verdicts(seed: int) -> list[bool]:
        policy = SandwichPolicy(probability=Decimal("0.5"), seed=seed)
        fill = _fill("50000", "1")
        return [
            assess_sandwich(policy, SIM, fill, NOW + timedelta(minutes=m), GAS_USD)[0].sandwiched
            for m in range(40)
        ]

    first = verdicts(7)
    assert first == verdicts(7)
    assert first != verdicts(8)
    assert 10 <= sum(first) <= 30
    never = SandwichPolicy(probability=Decimal(0))
    assert not assess_sandwich(never, SIM, _fill("50000", "1"), NOW, GAS_USD)[0].sandwiched


def test_manager_records_the_sandwich_of_a_landed_swap() -> None:
    path = ScriptedFeePath(ETHEREUM, NOW, [10**10])
    manager = TransactionManager(SIM, path, STANDARD, sandwich=ALWAYS)
    quote = SIM.quote("WETH", Side.BUY, Decimal(50_000), MID, MID, Decimal(1), NOW)
    outcome = manager.send(quote, NOW, lambda _: MID, needs_approval=False)
    assert outcome.state is TxState.INCLUDED
    assert outcome.sandwich is not None
    assert outcome.sandwich.sandwiched
    assert outcome.fill is not None
    assert outcome.fill.amount_out == quote.min_amount_out
    assert "sandwiched" in outcome.events[-1].reason


def test_sandwich_policy_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="probability"):
        SandwichPolicy(probability=Decimal("1.5"))
