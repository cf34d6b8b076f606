"""Pool math against integer cases worked out by hand from the Uniswap formulas."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor, isqrt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paper_trading.engine.chains import BASE, BASE_SEPOLIA, ETHEREUM, PoolKind, PoolSpec
from paper_trading.engine.dex.pools import (
    Q96,
    InsufficientLiquidityError,
    PoolLayout,
    V2Pool,
    V3Pool,
    build_pool,
    fee_amount,
    v2_amount_in,
    v2_amount_out,
    v3_swap_exact_in,
)

USDC_RESERVE = 1_000_000_000_000  # 1,000,000 USDC (6 decimals)
WETH_RESERVE = 400 * 10**18  # 400 WETH: a price of 2,500 USDC


def test_v2_buy_matches_hand_computed_output() -> None:
    # amount_in_with_fee = 1_000 * 10**6 * 997_000 = 997_000_000_000_000
    # numerator   = 997_000_000_000_000 * 400 * 10**18 = 398_800 * 10**30
    # denominator = 10**12 * 10**6 + 997_000_000_000_000 = 1_000_997_000_000_000_000
    # amount_out  = floor(398_800 * 10**30 / 1_000_997 * 10**12) = 398_402_792_415_961_286
    #   (0.3984 WETH, against 0.4 WETH at the mid price: 0.3% fee and ~0.1% impact)
    out = v2_amount_out(1_000 * 10**6, USDC_RESERVE, WETH_RESERVE, 3000)
    assert out == 398_402_792_415_961_286


def test_v2_amount_in_round_trips_hand_case() -> None:
    # numerator   = 10**12 * 398_402_792_415_961_286 * 10**6
    # denominator = (400 * 10**18 - 398_402_792_415_961_286) * 997_000
    #             = 398_402_792_415_961_286_597_858_000
    # floor(numerator / denominator) = 999_999_999 (the division above left a remainder),
    # +1 = 1_000_000_000: exactly the 1,000 USDC that produced this output.
    assert v2_amount_in(398_402_792_415_961_286, USDC_RESERVE, WETH_RESERVE, 3000) == 10**9


def test_v2_sell_matches_hand_computed_output() -> None:
    # 1 WETH in: 10**18 * 997_000 * 10**12 / (400 * 10**18 * 10**6 + 10**18 * 997_000)
    #          = 997 * 10**33 / (400_997 * 10**21) = 2_486_302_890.04...
    #          -> 2_486_302_890 (2486.30 USDC)
    assert v2_amount_out(10**18, WETH_RESERVE, USDC_RESERVE, 3000) == 2_486_302_890


@given(
    amount_in=st.integers(min_value=1, max_value=10**24),
    reserve_in=st.integers(min_value=10**6, max_value=10**30),
    reserve_out=st.integers(min_value=10**6, max_value=10**30),
    fee_pips=st.sampled_from([100, 500, 3000, 10_000]),
)
def test_v2_amount_in_never_undershoots(
    amount_in: int, reserve_in: int, reserve_out: int, fee_pips: int
) -> None:
    out = v2_amount_out(amount_in, reserve_in, reserve_out, fee_pips)
    if out > 0:
        needed = v2_amount_in(out, reserve_in, reserve_out, fee_pips)
        # At most one unit above an input known to give `out` (the contract's +1).
        assert needed <= amount_in + 1
        assert v2_amount_out(needed, reserve_in, reserve_out, fee_pips) >= out


def test_v2_amount_in_adds_one_even_to_an_exact_quotient() -> None:
    """getAmountIn is floor(n / d) + 1, as in UniswapV2Library, not the least input."""
    reserve_in, reserve_out, fee = 1_000_000, 1_417_477, 10_000
    out = v2_amount_out(1_000_000, reserve_in, reserve_out, fee)
    # 990_000 * 10**6 * 1_417_477 / (10**6 * 10**6 + 990_000 * 10**6) = 705_177 exactly
    assert out == 705_177
    # reserve_in * out * 10**6 / ((reserve_out - out) * 990_000) is exactly 1_000_000 here.
    assert reserve_in * out * 10**6 == 1_000_000 * (reserve_out - out) * 990_000
    assert v2_amount_in(out, reserve_in, reserve_out, fee) == 1_000_001


def test_v2_rejects_empty_input_and_draining_output() -> None:
    with pytest.raises(InsufficientLiquidityError):
        v2_amount_out(0, USDC_RESERVE, WETH_RESERVE, 3000)
    with pytest.raises(InsufficientLiquidityError):
        v2_amount_in(WETH_RESERVE, USDC_RESERVE, WETH_RESERVE, 3000)


def test_fee_is_taken_first_and_rounded_up() -> None:
    # 1_000 units at 0.3%: 1_000 - floor(1_000 * 997_000 / 10**6) = 1_000 - 997 = 3
    assert fee_amount(1_000, 3000) == 3
    # 1_001 units: 1_001 - floor(997.997) = 1_001 - 997 = 4 (the pool keeps the rounding)
    assert fee_amount(1_001, 3000) == 4


# V3 at constant liquidity L = 10**18, with 10**15 in at the 0.3% tier: 997 * 10**12 after fee.
L = 10**18
IN = 10**15


def test_v3_token1_in_at_price_one() -> None:
    # sqrtP = 2**96 = 79_228_162_514_264_337_593_543_950_336 (price 1)
    # sqrtP' = sqrtP + floor(997 * 10**12 * 2**96 / 10**18)
    #        = 79_228_162_514_264_337_593_543_950_336 + 78_990_478_026_721_544_580_763_318
    # At sqrtP = 1 the virtual reserves are x = y = L, so out0 = L*dy/(L+dy)
    #   = 10**18 * 997 * 10**12 / 1_000_997 * 10**12 = 996_006_981_039_903.2 -> rounded down.
    step = v3_swap_exact_in(Q96, L, IN, 3000, zero_for_one=False)
    assert step.sqrt_price_next_x96 == 79_307_152_992_291_059_138_124_713_654
    assert step.amount_out == 996_006_981_039_903
    assert step.fee_amount == 3 * 10**12


def test_v3_token0_in_at_price_one() -> None:
    # sqrtP' = ceil(L * 2**96 * sqrtP / (L * 2**96 + dx * sqrtP)) = ceil(2**96 * L / (L + dx))
    #        = ceil(2**96 * 10**18 / 1_000_997 * 10**12) = 79_149_250_711_305_166_342_700_278_159
    # Same virtual reserves, same output: 996_006_981_039_903.
    step = v3_swap_exact_in(Q96, L, IN, 3000, zero_for_one=True)
    assert step.sqrt_price_next_x96 == 79_149_250_711_305_166_342_700_278_159
    assert step.amount_out == 996_006_981_039_903
    assert step.fee_amount == 3 * 10**12


def test_v3_token0_in_at_price_four() -> None:
    # sqrtP = 2 * 2**96: virtual reserves x = L/2, y = 2L.
    # sqrtP' = ceil(2 * 2**96 * L / (L + 2 * dx)) = ceil(2 * 2**96 * 10**18 / 1_001_994 * 10**12)
    #        = 158_140_991_890_698_622_134_551_604_773
    # out1 = y*dx/(x+dx) = 4*L*dx/(L+2*dx) = 3_988 * 10**30 / 1_001_994 * 10**12
    #      = 3_980_063_752_876_763.5 -> 3_980_063_752_876_763
    step = v3_swap_exact_in(2 * Q96, L, IN, 3000, zero_for_one=True)
    assert step.sqrt_price_next_x96 == 158_140_991_890_698_622_134_551_604_773
    assert step.amount_out == 3_980_063_752_876_763


def test_v3_token1_in_at_price_four() -> None:
    # sqrtP' = 2 * 2**96 + 78_990_478_026_721_544_580_763_318 (same dy/L step as at price one)
    #        = 158_535_315_506_555_396_731_668_663_990
    # out0 = x*dy/(y+dy) = L*dy/(2*(2L+dy)) = 997 * 10**30 / 4_001_994 * 10**12
    #      = 249_125_810_783_324.5 -> 249_125_810_783_324
    step = v3_swap_exact_in(2 * Q96, L, IN, 3000, zero_for_one=False)
    assert step.sqrt_price_next_x96 == 158_535_315_506_555_396_731_668_663_990
    assert step.amount_out == 249_125_810_783_324


def test_token_order_follows_addresses() -> None:
    weth = ETHEREUM.token("WETH")
    # Ethereum: USDC 0xA0b8... sorts before WETH 0xC02a..., so USDC is token0.
    eth_pool = build_pool(
        PoolSpec(PoolKind.V3, 500, Decimal(10**8)), weth, ETHEREUM.quote_token, Decimal(2500)
    )
    assert eth_pool.token0.symbol == "USDC"
    # Base: WETH 0x4200... sorts before USDC 0x8335..., so WETH is token0.
    base_pool = build_pool(
        PoolSpec(PoolKind.V3, 500, Decimal(10**8)),
        BASE.token("WETH"),
        BASE.quote_token,
        Decimal(2500),
    )
    assert base_pool.token0.symbol == "WETH"


def test_v3_sqrt_price_is_the_mid_in_raw_units() -> None:
    spec = PoolSpec(PoolKind.V3, 500, Decimal(10**8))
    # WETH token0: 2500 USDC per WETH = 2500 * 10**6 / 10**18 = 2.5e-9 raw; sqrt = 5e-5
    # -> sqrtPriceX96 = floor(2**96 / 20_000) = 3_961_408_125_713_216_879_677_197
    base_pool = build_pool(spec, BASE.token("WETH"), BASE.quote_token, Decimal(2500))
    assert isinstance(base_pool, V3Pool)
    assert base_pool.sqrt_price_x96 == 3_961_408_125_713_216_879_677_197
    # USDC token0: 1 / 2.5e-9 = 4e8 WETH base units per USDC base unit; sqrt = 20_000 exactly.
    eth_pool = build_pool(spec, ETHEREUM.token("WETH"), ETHEREUM.quote_token, Decimal(2500))
    assert isinstance(eth_pool, V3Pool)
    assert eth_pool.sqrt_price_x96 == 20_000 * Q96


def test_v3_position_holds_the_tvl_within_its_range() -> None:
    spec = PoolSpec(PoolKind.V3, 500, Decimal(40_000_000), Decimal(10))
    pool = build_pool(spec, BASE.token("WETH"), BASE.quote_token, Decimal(2500))
    assert isinstance(pool, V3Pool)
    sp, sa, sb = (
        Fraction(s, Q96) for s in (pool.sqrt_price_x96, pool.sqrt_lower_x96, pool.sqrt_upper_x96)
    )
    weth = pool.liquidity * (sb - sp) / (sp * sb) / 10**18
    usdc = pool.liquidity * (sp - sa) / 10**6
    value = weth * 2500 + usdc
    assert abs(value - 40_000_000) < Fraction(1, 100)
    # Range edges: 2250 and 2750 USDC per WETH.
    assert sa * sa * 10**12 == pytest.approx(2250, rel=1e-12)
    assert sb * sb * 10**12 == pytest.approx(2750, rel=1e-12)


def _v3_by_fractions(spec: PoolSpec, mid: Fraction, token0_is_token: bool) -> tuple[int, ...]:
    """The V3 position worked out with `Fraction`s, step by step from the real-number formulas:
    (liquidity, sqrtP, sqrtA, sqrtB) for a token with 18 decimals against 6-decimal USDC."""
    to_raw = Fraction(10) ** (6 - 18)

    def sqrt_x96(usd: Fraction) -> int:
        raw = usd * to_raw if token0_is_token else 1 / (usd * to_raw)
        return isqrt(floor(raw * Q96 * Q96))

    width = Fraction(spec.range_percent) / 100
    sqrt_p = sqrt_x96(mid)
    sqrt_a, sqrt_b = sorted(sqrt_x96(mid * k) for k in (1 - width, 1 + width))
    sp, sa, sb = (Fraction(s, Q96) for s in (sqrt_p, sqrt_a, sqrt_b))
    per_l0, per_l1 = (sb - sp) / (sp * sb), sp - sa
    usd_token, usd_quote = mid / 10**18, Fraction(1, 10**6)
    u0, u1 = (usd_token, usd_quote) if token0_is_token else (usd_quote, usd_token)
    l_target = Fraction(spec.tvl_usd) / (per_l0 * u0 + per_l1 * u1)
    amount0, amount1 = floor(l_target * per_l0), floor(l_target * per_l1)
    lo, hi = sqrt_a, sqrt_b
    by0 = amount0 * (sqrt_p * hi // Q96) // (hi - sqrt_p)
    by1 = amount1 * Q96 // (sqrt_p - lo)
    return min(by0, by1), sqrt_p, sqrt_a, sqrt_b


@given(
    mid=st.decimals(min_value="0.000001", max_value="1000000", places=8),
    tvl=st.integers(min_value=10**4, max_value=10**10),
    range_percent=st.sampled_from(["0.5", "10", "33.3", "90"]),
)
def test_v3_pool_in_integers_equals_the_fraction_formulas(
    mid: Decimal, tvl: int, range_percent: str
) -> None:
    """The pool is built over integer numerators and denominators; same numbers as Fractions."""
    spec = PoolSpec(PoolKind.V3, 500, Decimal(tvl), Decimal(range_percent))
    # WETH is token0 on Base (address below USDC's) and token1 on Ethereum.
    for chain, token0_is_token in ((BASE, True), (ETHEREUM, False)):
        pool = build_pool(spec, chain.token("WETH"), chain.quote_token, mid)
        assert isinstance(pool, V3Pool)
        expected = _v3_by_fractions(spec, Fraction(mid), token0_is_token)
        assert (
            pool.liquidity,
            pool.sqrt_price_x96,
            pool.sqrt_lower_x96,
            pool.sqrt_upper_x96,
        ) == expected


@given(
    mids=st.lists(
        st.decimals(min_value="0.000001", max_value="1000000", places=8), min_size=2, max_size=4
    ),
    range_percent=st.sampled_from(["0.5", "10", "90"]),
)
def test_one_layout_rebuilds_the_pool_at_each_mid(mids: list[Decimal], range_percent: str) -> None:
    """A simulator keeps a token's layout for the whole run: nothing of one price carries over."""
    spec = PoolSpec(PoolKind.V3, 500, Decimal(10**7), Decimal(range_percent))
    for chain, token0_is_token in ((BASE, True), (ETHEREUM, False)):
        layout = PoolLayout.of(spec, chain.token("WETH"), chain.quote_token)
        for mid in mids:
            pool = layout.at(mid)
            assert isinstance(pool, V3Pool)
            expected = _v3_by_fractions(spec, Fraction(mid), token0_is_token)
            got = (pool.liquidity, pool.sqrt_price_x96, pool.sqrt_lower_x96, pool.sqrt_upper_x96)
            assert got == expected


def test_v3_pool_swaps_both_ways_near_the_mid() -> None:
    spec = PoolSpec(PoolKind.V3, 500, Decimal(40_000_000))
    weth, usdc = ETHEREUM.token("WETH"), ETHEREUM.quote_token
    pool = build_pool(spec, weth, usdc, Decimal(2500))
    bought = pool.swap_exact_in(usdc, 2_500 * 10**6)
    # 1 WETH at the mid, less the 0.05% fee and a sliver of impact.
    assert 0.9994 * 10**18 < bought.amount_out < 0.9995 * 10**18
    assert bought.fee_amount == 1_250_000  # 0.05% of 2,500 USDC
    sold = pool.swap_exact_in(weth, bought.amount_out)
    # Round trip pays the fee twice.
    assert 2_497 * 10**6 < sold.amount_out < 2_497.6 * 10**6


def test_v3_swap_past_the_range_raises() -> None:
    spec = PoolSpec(PoolKind.V3, 3000, Decimal(200_000), Decimal(10))
    weth, usdc = BASE_SEPOLIA.token("WETH"), BASE_SEPOLIA.quote_token
    pool = build_pool(spec, weth, usdc, Decimal(2500))
    assert isinstance(pool, V3Pool)
    limit = pool.max_amount_in(usdc)
    # About half the TVL sits in USDC below the price: buying more than that empties the range.
    assert 90_000 * 10**6 < limit < 110_000 * 10**6
    assert pool.swap_exact_in(usdc, limit).amount_out > 0
    with pytest.raises(InsufficientLiquidityError, match="past its liquidity range"):
        pool.swap_exact_in(usdc, limit + 10**6)
    with pytest.raises(InsufficientLiquidityError, match="past its liquidity range"):
        pool.swap_exact_in(weth, pool.max_amount_in(weth) + 10**18)


def test_v3_is_deeper_than_v2_for_the_same_tvl() -> None:
    weth, usdc = BASE.token("WETH"), BASE.quote_token
    v2 = build_pool(PoolSpec(PoolKind.V2, 3000, Decimal(10**6)), weth, usdc, Decimal(2500))
    v3 = build_pool(PoolSpec(PoolKind.V3, 3000, Decimal(10**6)), weth, usdc, Decimal(2500))
    assert isinstance(v2, V2Pool)
    amount = 50_000 * 10**6
    assert v3.swap_exact_in(usdc, amount).amount_out > v2.swap_exact_in(usdc, amount).amount_out


def test_v2_pool_is_split_half_and_half() -> None:
    # 2,000,000 USD at 2,500: 1,000,000 USDC and 400 WETH, the hand case above.
    spec = PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))
    pool = build_pool(spec, ETHEREUM.token("WETH"), ETHEREUM.quote_token, Decimal(2500))
    assert isinstance(pool, V2Pool)
    assert (pool.reserve0, pool.reserve1) == (USDC_RESERVE, WETH_RESERVE)
    out = pool.swap_exact_in(ETHEREUM.quote_token, 1_000 * 10**6).amount_out
    assert out == 398_402_792_415_961_286


def test_pool_rejects_a_foreign_token_and_bad_specs() -> None:
    weth, usdc = BASE.token("WETH"), BASE.quote_token
    pool = build_pool(PoolSpec(PoolKind.V2, 3000, Decimal(10**6)), weth, usdc, Decimal(2500))
    with pytest.raises(ValueError, match="not in the"):
        pool.swap_exact_in(BASE.token("DAI"), 10**18)
    with pytest.raises(ValueError, match="mid price"):
        build_pool(PoolSpec(PoolKind.V2, 3000, Decimal(10**6)), weth, usdc, Decimal(0))
    with pytest.raises(InsufficientLiquidityError, match="no liquidity"):
        build_pool(PoolSpec(PoolKind.V3, 3000, Decimal(0)), weth, usdc, Decimal(2500))
    with pytest.raises(ValueError, match="range"):
        build_pool(
            PoolSpec(PoolKind.V3, 3000, Decimal(10**6), Decimal(100)), weth, usdc, Decimal(2500)
        )
