"""Quotes, fills and reverts as a trader sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from paper_trading.engine.chains import BASE, ETHEREUM, PoolKind, PoolSpec
from paper_trading.engine.dex.gas import GasModel, LiveGasFigures
from paper_trading.engine.dex.quote import Side, SwapQuote
from paper_trading.engine.dex.simulator import V2_REVERT_GAS, DexSimulator

NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
ZERO = Decimal(0)
MID = Decimal(2500)
ETH_USD = Decimal(2500)
HALF_PERCENT = Decimal("0.5")
V2_WETH = {"WETH": PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))}


def _buy(sim: DexSimulator, usdc: str, symbol: str = "WETH") -> SwapQuote:
    return sim.quote(symbol, Side.BUY, Decimal(usdc), MID, ETH_USD, HALF_PERCENT, NOW)


def test_v2_buy_quote_matches_the_hand_worked_pool() -> None:
    # 2,000,000 USD at 2,500 -> reserves 1,000,000 USDC / 400 WETH; 1,000 USDC in gives
    # 398_402_792_415_961_286 wei (see test_dex_pools).
    sim = DexSimulator(ETHEREUM, pool_overrides=V2_WETH)
    quote = _buy(sim, "1000")
    assert quote.pool_kind is PoolKind.V2
    assert quote.amount_in == Decimal("1000")
    assert quote.amount_out == Decimal("0.398402792415961286")
    # Fee: 0.3% of 1,000 USDC, already in USD.
    assert quote.fee_amount == Decimal(3)
    assert quote.fee_usd == Decimal(3)
    assert quote.fee_bps == Decimal(30)
    # Whole shortfall: 1 - 0.398402792415961286 * 2500 / 1000 = 0.00399301896009678
    # = 39.9302 bps, of which 30 are the fee and 9.9302 the impact.
    assert quote.price_impact_bps == Decimal("9.9302")
    assert quote.execution_price_usd == pytest.approx(Decimal(1000) / quote.amount_out)
    # floor(398_402_792_415_961_286 * 0.995) = 396_410_778_453_881_479
    assert quote.min_amount_out == Decimal("0.396410778453881479")
    assert quote.slippage_tolerance_bps == Decimal(50)
    assert quote.gas.gas_units == ETHEREUM.gas.v2_swap_gas
    assert quote.chain_id == 1
    assert quote.mid_price_usd == MID


def test_sell_quote_values_the_fee_at_the_mid() -> None:
    sim = DexSimulator(BASE)
    quote = sim.quote("weth", Side.SELL, Decimal(2), MID, ETH_USD, HALF_PERCENT, NOW)
    assert quote.symbol == "WETH"
    assert quote.pool_kind is PoolKind.V3
    assert quote.fee_pips == 500
    assert quote.fee_amount == Decimal("0.001")  # 0.05% of 2 WETH
    assert quote.fee_usd == Decimal("2.5")
    assert quote.fee_bps == Decimal(5)
    assert quote.execution_price_usd < MID
    assert 4990 < quote.amount_out < 4997.5
    assert quote.gas.gas_units == BASE.gas.v3_swap_gas
    assert quote.gas.l1_fee_native > 0


def test_fee_and_impact_add_up_to_the_shortfall() -> None:
    quote = _buy(DexSimulator(BASE), "250000")
    shortfall_bps = (1 - quote.amount_out * MID / quote.amount_in) * 10_000
    assert quote.fee_bps + quote.price_impact_bps == pytest.approx(
        shortfall_bps, abs=Decimal("0.001")
    )
    assert quote.execution_price_usd > MID


def test_fee_bps_follows_the_fee_tier() -> None:
    sim = DexSimulator(ETHEREUM)
    assert _buy(sim, "5000").fee_bps == Decimal(5)  # WETH 0.05% pool
    assert _buy(sim, "5000", "UNI").fee_bps == Decimal(30)  # UNI 0.3% pool


def test_larger_trades_move_the_price_more() -> None:
    sim = DexSimulator(BASE)
    impacts = [_buy(sim, size).price_impact_bps for size in ("1000", "100000", "1000000")]
    assert impacts == sorted(impacts)
    assert impacts[0] < impacts[2]
    assert impacts[0] >= 0


def test_deeper_pools_move_the_price_less() -> None:
    shallow = DexSimulator(
        BASE, pool_overrides={"WETH": PoolSpec(PoolKind.V3, 500, Decimal(10**6))}
    )
    deep = DexSimulator(BASE, pool_overrides={"weth": PoolSpec(PoolKind.V3, 500, Decimal(10**8))})
    assert _buy(deep, "50000").price_impact_bps < _buy(shallow, "50000").price_impact_bps


@pytest.mark.parametrize(
    ("symbol", "amount", "message"),
    [
        ("WETH", "0", "must be positive"),
        ("WETH", "-5", "must be positive"),
        ("WETH", "0.0000001", "smallest unit"),
        ("PEPE", "100", "unknown token"),
        ("USDC", "100", "not tradable"),
        ("DAI", "100", "not tradable"),
    ],
)
def test_bad_quotes_explain_themselves(symbol: str, amount: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _buy(DexSimulator(BASE), amount, symbol)


def test_tolerance_must_be_a_percentage_below_100() -> None:
    with pytest.raises(ValueError, match="slippage tolerance"):
        DexSimulator(BASE).quote("WETH", Side.BUY, Decimal(10), MID, ETH_USD, Decimal(100), NOW)


def test_too_large_a_trade_for_the_range_raises() -> None:
    with pytest.raises(ValueError, match="past its liquidity range"):
        _buy(DexSimulator(BASE), "50000000")


def test_fill_at_the_quoted_price_has_no_slippage() -> None:
    sim = DexSimulator(BASE)
    quote = _buy(sim, "10000")
    fill = sim.execute(quote, NOW, MID, needs_approval=False)
    assert not fill.reverted
    assert fill.amount_out == quote.amount_out
    assert fill.amount_in == quote.amount_in
    assert fill.slippage_bps == 0
    assert fill.approval_gas is None
    assert fill.gas == quote.gas
    assert fill.total_gas_usd == quote.gas.total_usd


def test_fill_after_a_small_move_slips_within_tolerance() -> None:
    sim = DexSimulator(BASE)
    quote = _buy(sim, "10000")
    worse = sim.execute(quote, NOW, MID * Decimal("1.003"), needs_approval=True)
    assert not worse.reverted
    assert 25 < worse.slippage_bps < 35  # 0.3% dearer WETH: ~30 bps less out
    assert worse.amount_out >= quote.min_amount_out
    assert worse.approval_gas is not None
    assert worse.total_gas_usd == worse.gas.total_usd + worse.approval_gas.total_usd
    better = sim.execute(quote, NOW, MID * Decimal("0.99"), needs_approval=False)
    assert better.slippage_bps < 0
    assert better.amount_out > quote.amount_out


def test_move_past_tolerance_reverts_and_still_pays_gas() -> None:
    sim = DexSimulator(BASE)
    quote = _buy(sim, "10000")
    fill = sim.execute(quote, NOW, MID * Decimal("1.0082"), needs_approval=True)
    assert fill.reverted
    assert (fill.amount_in, fill.amount_out, fill.fee_amount, fill.fee_usd) == (ZERO,) * 4
    assert fill.revert_reason is not None
    assert fill.revert_reason.startswith("price moved 0.82% against the swap while pending")
    assert "WETH below minimum" in fill.revert_reason
    assert fill.slippage_bps > 50
    # V3 checks the minimum after swapping: 95% of the swap gas burned, plus the approval.
    assert fill.gas.gas_units == BASE.gas.v3_swap_gas * 95 // 100
    assert fill.gas.total_usd > 0
    assert fill.approval_gas is not None
    assert fill.total_gas_usd > fill.gas.total_usd


def test_sell_reverts_when_the_price_falls() -> None:
    sim = DexSimulator(BASE)
    quote = sim.quote("WETH", Side.SELL, Decimal(1), MID, ETH_USD, HALF_PERCENT, NOW)
    fill = sim.execute(quote, NOW, MID * Decimal("0.99"), needs_approval=False)
    assert fill.reverted
    assert fill.revert_reason is not None
    assert "1.00% against" in fill.revert_reason
    assert "USDC below minimum" in fill.revert_reason


def test_v2_reverts_cost_less_gas_than_v3() -> None:
    v2 = DexSimulator(ETHEREUM, pool_overrides=V2_WETH)
    v3 = DexSimulator(ETHEREUM)
    v2_fill = v2.execute(_buy(v2, "1000"), NOW, MID * Decimal("1.02"), needs_approval=False)
    v3_fill = v3.execute(_buy(v3, "1000"), NOW, MID * Decimal("1.02"), needs_approval=False)
    assert v2_fill.reverted
    assert v3_fill.reverted
    assert v2_fill.gas.gas_units == V2_REVERT_GAS
    assert v2_fill.gas.total_usd < v3_fill.gas.total_usd


def test_execute_rejects_a_quote_from_another_chain() -> None:
    quote = _buy(DexSimulator(BASE), "100")
    with pytest.raises(ValueError, match="not Ethereum"):
        DexSimulator(ETHEREUM).execute(quote, NOW, MID, needs_approval=False)


def test_live_gas_figures_flow_into_quotes() -> None:
    live = GasModel(BASE, overrides=LiveGasFigures(Decimal("0.01"), Decimal("0.001")))
    quote = _buy(DexSimulator(BASE, gas_model=live), "100")
    assert quote.gas.source == "rpc"
    assert quote.gas.base_fee_gwei == Decimal("0.01")


def test_inclusion_price_is_deterministic() -> None:
    first = DexSimulator(BASE, seed=9).inclusion_price("WETH", MID, NOW, 0.0005)
    assert DexSimulator(BASE, seed=9).inclusion_price("weth", MID, NOW, 0.0005) == first
    assert first != MID
    # 1-3 Base blocks is 2-6 s: with 5 bps per sqrt(s) the move is a few bps.
    assert abs(first / MID - 1) < Decimal("0.01")
    later = {
        DexSimulator(BASE, seed=9).inclusion_price("WETH", MID, NOW.replace(second=s), 0.0005)
        for s in range(10)
    }
    assert len(later) == 10


def test_inclusion_price_without_volatility_is_the_mid() -> None:
    assert DexSimulator(BASE).inclusion_price("WETH", MID, NOW, 0.0) == MID


def test_inclusion_price_rejects_bad_inputs() -> None:
    sim = DexSimulator(BASE)
    with pytest.raises(ValueError, match="mid price"):
        sim.inclusion_price("WETH", Decimal(0), NOW, 0.001)
    with pytest.raises(ValueError, match="volatility"):
        sim.inclusion_price("WETH", MID, NOW, -0.001)
