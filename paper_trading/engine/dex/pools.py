"""Uniswap V2 and V3 pool math in integer base units, rounded the way the contracts round.

A pool is rebuilt for every quote, re-centred at the market mid price: arbitrageurs keep real
pools aligned with the wider market, so only the pool's depth (its TVL) and fee tier matter.
The stablecoin is taken to be worth exactly $1, so a token's USD mid is its price in USDC.

Tokens are ordered as Uniswap orders them (token0 has the lower address), which decides the
direction of a V3 swap (`zero_for_one`) and whether the raw pool price is token-in-USDC or
USDC-in-token. V3 models a single position spanning `mid x (1 +/- range_percent)`: a swap that
would leave it raises `InsufficientLiquidityError` instead of crossing into other ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import floor, isqrt

from paper_trading.engine import money
from paper_trading.engine.chains import PoolKind, PoolSpec, Token
from paper_trading.engine.frozen import set_at_once

#: Q64.96 fixed point: sqrtPriceX96 = sqrt(price) * 2**96.
Q96 = 2**96
#: Fees are in hundredths of a basis point (pips): 3000 = 0.3%.
PIPS = 1_000_000


class InsufficientLiquidityError(ValueError):
    """The pool cannot fill the swap within the liquidity the model gives it."""


@set_at_once
@dataclass(frozen=True)
class PoolSwap:
    """An exact-input swap in base units; `fee_amount` is the part of `amount_in` kept as fee."""

    amount_in: int
    amount_out: int
    fee_amount: int


# --- Uniswap V2 -------------------------------------------------------------------------------


def v2_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_pips: int) -> int:
    """UniswapV2Library.getAmountOut with the 997/1000 fee generalised to pips."""
    if amount_in <= 0 or reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidityError("V2 swap needs a positive input and both reserves")
    amount_in_with_fee = amount_in * (PIPS - fee_pips)
    return amount_in_with_fee * reserve_out // (reserve_in * PIPS + amount_in_with_fee)


def v2_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_pips: int) -> int:
    """UniswapV2Library.getAmountIn: an input that yields at least `amount_out`.

    The contract rounds up by adding 1 to the floor, so when the division is exact it asks one
    base unit more than the least input; a router charges that, so the simulator does too.
    """
    if amount_out <= 0 or amount_out >= reserve_out or reserve_in <= 0:
        raise InsufficientLiquidityError("V2 output must be positive and below the reserve")
    return reserve_in * amount_out * PIPS // ((reserve_out - amount_out) * (PIPS - fee_pips)) + 1


def fee_amount(amount_in: int, fee_pips: int) -> int:
    """The input the pool keeps as fee when it is taken first (rounded up, in the pool's favour)."""
    return amount_in - amount_in * (PIPS - fee_pips) // PIPS


# --- Uniswap V3 (one tick range) --------------------------------------------------------------


def _div_up(a: int, b: int) -> int:
    return -(-a // b)


def amount0_delta(sqrt_a_x96: int, sqrt_b_x96: int, liquidity: int, round_up: bool) -> int:
    """SqrtPriceMath.getAmount0Delta: token0 between two prices, L*(sqrtB - sqrtA)/(sqrtA*sqrtB)."""
    lo, hi = sorted((sqrt_a_x96, sqrt_b_x96))
    numerator1 = liquidity << 96
    numerator2 = hi - lo
    if round_up:
        return _div_up(_div_up(numerator1 * numerator2, hi), lo)
    return numerator1 * numerator2 // hi // lo


def amount1_delta(sqrt_a_x96: int, sqrt_b_x96: int, liquidity: int, round_up: bool) -> int:
    """SqrtPriceMath.getAmount1Delta: token1 between two prices, L*(sqrtB - sqrtA)."""
    lo, hi = sorted((sqrt_a_x96, sqrt_b_x96))
    if round_up:
        return _div_up(liquidity * (hi - lo), Q96)
    return liquidity * (hi - lo) // Q96


@set_at_once
@dataclass(frozen=True)
class V3Step:
    """One exact-input SwapMath.computeSwapStep that stays inside the range."""

    sqrt_price_next_x96: int
    amount_in: int
    amount_out: int
    fee_amount: int


def v3_swap_exact_in(
    sqrt_price_x96: int, liquidity: int, amount_in: int, fee_pips: int, zero_for_one: bool
) -> V3Step:
    """Swap `amount_in` of token0 (`zero_for_one`) or token1 at constant liquidity.

    The fee comes off first; the new price is rounded against the trader (up when token0 goes
    in, down when token1 goes in), the output is rounded down and whatever input the price move
    did not use is the fee, exactly as the pool contract settles a step that stops short of its
    target.
    """
    if amount_in <= 0 or liquidity <= 0:
        raise InsufficientLiquidityError("V3 swap needs a positive input and liquidity")
    less_fee = amount_in * (PIPS - fee_pips) // PIPS
    if zero_for_one:
        # getNextSqrtPriceFromAmount0RoundingUp: L*sqrtP / (L + dx*sqrtP)
        numerator1 = liquidity << 96
        sqrt_next = _div_up(numerator1 * sqrt_price_x96, numerator1 + less_fee * sqrt_price_x96)
        used = amount0_delta(sqrt_next, sqrt_price_x96, liquidity, round_up=True)
        out = amount1_delta(sqrt_next, sqrt_price_x96, liquidity, round_up=False)
    else:
        # getNextSqrtPriceFromAmount1RoundingDown: sqrtP + dy/L
        sqrt_next = sqrt_price_x96 + (less_fee << 96) // liquidity
        used = amount1_delta(sqrt_price_x96, sqrt_next, liquidity, round_up=True)
        out = amount0_delta(sqrt_price_x96, sqrt_next, liquidity, round_up=False)
    return V3Step(sqrt_next, amount_in, out, amount_in - used)


def sqrt_price_x96(raw_price: Fraction) -> int:
    """sqrtPriceX96 for a raw price (token1 base units per token0 base unit), rounded down."""
    return isqrt(floor(raw_price * Q96 * Q96))


def liquidity_for_amounts(
    sqrt_price: int, sqrt_a: int, sqrt_b: int, amount0: int, amount1: int
) -> int:
    """LiquidityAmounts.getLiquidityForAmounts: the most L both amounts can back."""
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    # For amount0 between prices lo < hi: amount0 * (lo * hi / Q96) / (hi - lo);
    # for amount1: amount1 * Q96 / (hi - lo).
    if sqrt_price <= sqrt_a:
        return amount0 * (sqrt_a * sqrt_b // Q96) // (sqrt_b - sqrt_a)
    if sqrt_price < sqrt_b:
        return min(
            amount0 * (sqrt_price * sqrt_b // Q96) // (sqrt_b - sqrt_price),
            amount1 * Q96 // (sqrt_price - sqrt_a),
        )
    return amount1 * Q96 // (sqrt_b - sqrt_a)


# --- Pools ------------------------------------------------------------------------------------


def _ordered(a: Token, b: Token) -> tuple[Token, Token]:
    """Uniswap's token0/token1: sorted by address as a number."""
    return (a, b) if int(a.address, 16) < int(b.address, 16) else (b, a)


def _human(units: int, token: Token) -> str:
    return f"{money.from_base_units(units, token.decimals).normalize():f}"


def _check_in(token_in: Token, token0: Token, token1: Token) -> None:
    if token_in not in (token0, token1):
        raise ValueError(f"{token_in.symbol} is not in the {token0.symbol}/{token1.symbol} pool")


@dataclass(frozen=True)
class V2Pool:
    token0: Token
    token1: Token
    reserve0: int
    reserve1: int
    fee_pips: int

    kind = PoolKind.V2

    def swap_exact_in(self, token_in: Token, amount_in: int) -> PoolSwap:
        _check_in(token_in, self.token0, self.token1)
        if token_in == self.token0:
            reserves = (self.reserve0, self.reserve1)
        else:
            reserves = (self.reserve1, self.reserve0)
        out = v2_amount_out(amount_in, *reserves, self.fee_pips)
        return PoolSwap(amount_in, out, fee_amount(amount_in, self.fee_pips))


@set_at_once
@dataclass(frozen=True)
class V3Pool:
    token0: Token
    token1: Token
    fee_pips: int
    liquidity: int
    sqrt_price_x96: int
    sqrt_lower_x96: int
    sqrt_upper_x96: int

    kind = PoolKind.V3

    def swap_exact_in(self, token_in: Token, amount_in: int) -> PoolSwap:
        """Raises if the swap would take the price out of the one modelled range."""
        _check_in(token_in, self.token0, self.token1)
        zero_for_one = token_in == self.token0
        step = v3_swap_exact_in(
            self.sqrt_price_x96, self.liquidity, amount_in, self.fee_pips, zero_for_one
        )
        if not self.sqrt_lower_x96 <= step.sqrt_price_next_x96 <= self.sqrt_upper_x96:
            limit = self.max_amount_in(token_in)
            raise InsufficientLiquidityError(
                f"swapping {_human(amount_in, token_in)} {token_in.symbol} would push the "
                f"{self.token0.symbol}/{self.token1.symbol} V3 pool past its liquidity range; "
                f"at most {_human(limit, token_in)} {token_in.symbol} fits "
                "(trade less or deepen the pool)"
            )
        return PoolSwap(step.amount_in, step.amount_out, step.fee_amount)

    def max_amount_in(self, token_in: Token) -> int:
        """Largest gross input whose price move ends inside the range (for error messages)."""
        if token_in == self.token0:
            net = amount0_delta(self.sqrt_lower_x96, self.sqrt_price_x96, self.liquidity, False)
        else:
            net = amount1_delta(self.sqrt_price_x96, self.sqrt_upper_x96, self.liquidity, False)
        return net * PIPS // (PIPS - self.fee_pips)


Pool = V2Pool | V3Pool


def _sqrt_price_at(num: int, den: int, shift: int, token_is_0: bool) -> int:
    """sqrtPriceX96 when the token is worth `num / den` USDC, in integers only.

    The raw price is quote base units per token base unit (`shift` is quote decimals minus
    token decimals), inverted when the token is token1; `sqrt_price_x96` of that exact ratio.
    """
    if shift >= 0:
        num *= 10**shift
    else:
        den *= 10**-shift
    if not token_is_0:
        num, den = den, num
    return isqrt((num << 192) // den)


@dataclass(frozen=True)
class PoolLayout:
    """A token's pool as far as it does not depend on the price.

    A backtest rebuilds the pool at a new mid price for every quote and fill: the token order
    and the spec's figures as integer ratios are worked out once per token instead.
    """

    spec: PoolSpec
    token: Token
    quote: Token
    token0: Token
    token1: Token
    token_is_0: bool
    #: V3 range half-width as a fraction of the mid price: numerator, denominator.
    width: tuple[int, int]
    tvl: tuple[int, int]

    @classmethod
    def of(cls, spec: PoolSpec, token: Token, quote: Token) -> PoolLayout:
        token0, token1 = _ordered(token, quote)
        width_num, width_den = spec.range_percent.as_integer_ratio()
        width = (width_num, width_den * 100)
        tvl = spec.tvl_usd.as_integer_ratio()
        return cls(spec, token, quote, token0, token1, token0 == token, width, tvl)

    def at(self, mid_price_usd: Decimal) -> Pool:
        """A pool holding `spec.tvl_usd`, re-centred so its price is `mid_price_usd`."""
        spec, token, quote = self.spec, self.token, self.quote
        if mid_price_usd <= 0:
            raise ValueError(f"mid price of {token.symbol} must be positive, got {mid_price_usd}")
        if spec.tvl_usd <= 0:
            raise InsufficientLiquidityError(f"the {token.symbol} pool has no liquidity (TVL 0)")
        if spec.kind is PoolKind.V2:
            half = money.div(spec.tvl_usd, Decimal(2))
            reserves = {
                quote: money.to_base_units(half, quote.decimals),
                token: money.to_base_units(money.div(half, mid_price_usd), token.decimals),
            }
            if min(reserves.values()) <= 0:
                raise InsufficientLiquidityError(f"the {token.symbol} pool is too small to trade")
            token0, token1 = self.token0, self.token1
            return V2Pool(token0, token1, reserves[token0], reserves[token1], spec.fee_pips)
        return _build_v3(self, mid_price_usd)


def build_pool(spec: PoolSpec, token: Token, quote: Token, mid_price_usd: Decimal) -> Pool:
    """A pool holding `spec.tvl_usd`, re-centred so its price is `mid_price_usd`."""
    return PoolLayout.of(spec, token, quote).at(mid_price_usd)


def _build_v3(layout: PoolLayout, mid: Decimal) -> V3Pool:
    """Deposit the TVL over the range at the current price, then derive L from the amounts.

    Exact rational arithmetic written out over integer numerators and denominators (a
    `Fraction` per step cost most of a backtest's swap); every floor is of the same rational.
    """
    spec, token, quote = layout.spec, layout.token, layout.quote
    width_num, width_den = layout.width
    if not 0 < width_num < width_den:
        raise ValueError(f"V3 range must be between 0 and 100 percent, got {spec.range_percent}")
    mid_num, mid_den = mid.as_integer_ratio()
    shift = quote.decimals - token.decimals
    token_is_0 = layout.token_is_0
    sqrt_p = _sqrt_price_at(mid_num, mid_den, shift, token_is_0)
    range_den = mid_den * width_den
    sqrt_a = _sqrt_price_at(mid_num * (width_den - width_num), range_den, shift, token_is_0)
    sqrt_b = _sqrt_price_at(mid_num * (width_den + width_num), range_den, shift, token_is_0)
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    # Amounts per unit of liquidity at this price (real numbers), valued in USD:
    # token0 Q96 (sb - sp) / (sp sb), token1 (sp - sa) / Q96, as numerator / denominator.
    per_l0 = (Q96 * (sqrt_b - sqrt_p), sqrt_p * sqrt_b)
    per_l1 = (sqrt_p - sqrt_a, Q96)
    usd_quote = (1, 10**quote.decimals)
    usd_token = (mid_num, mid_den * 10**token.decimals)
    u0, u1 = (usd_token, usd_quote) if token_is_0 else (usd_quote, usd_token)
    # USD per unit of liquidity, a / b.
    a = per_l0[0] * u0[0] * per_l1[1] * u1[1] + per_l1[0] * u1[0] * per_l0[1] * u0[1]
    b = per_l0[1] * u0[1] * per_l1[1] * u1[1]
    # Liquidity for the TVL is tvl / (a / b); each amount is floor(that x its per-L amount).
    tvl_num, tvl_den = layout.tvl
    tvl_b, tvl_a = tvl_num * b, tvl_den * a
    amount0 = tvl_b * per_l0[0] // (tvl_a * per_l0[1])
    amount1 = tvl_b * per_l1[0] // (tvl_a * per_l1[1])
    liquidity = liquidity_for_amounts(sqrt_p, sqrt_a, sqrt_b, amount0, amount1)
    if liquidity <= 0:
        raise InsufficientLiquidityError(f"the {token.symbol} pool is too small to trade")
    return V3Pool(layout.token0, layout.token1, spec.fee_pips, liquidity, sqrt_p, sqrt_a, sqrt_b)
