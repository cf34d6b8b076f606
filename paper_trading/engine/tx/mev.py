"""Sandwich risk: would an attacker watching the public mempool profit from this swap?

The attacker front-runs in the victim's direction with the most the victim's minimum output
allows, lets the victim swap at the worse price, then sells back. Pool fees on both legs come
from the pool math itself; the attacker also pays gas for two swaps. On chains without a public
mempool (a private sequencer) nothing can be seen in time, and private routing hides the swap
at its own cost.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.chains import Token
from paper_trading.engine.dex.pools import (
    InsufficientLiquidityError,
    Pool,
    PoolSwap,
    V2Pool,
    build_pool,
    v3_swap_exact_in,
)
from paper_trading.engine.dex.quote import Side, SwapFill
from paper_trading.engine.dex.simulator import DexSimulator, fill_at_minimum

#: A front-run search never doubles its size more often than this (2**128 base units).
_MAX_DOUBLINGS = 128


@dataclass(frozen=True)
class SandwichPolicy:
    """How likely a profitable sandwich is taken, and whether the account routes privately."""

    probability: Decimal = Decimal("0.8")
    private_routing: bool = False
    #: What private routing (a protect RPC, a builder's bundle) costs per swap.
    private_routing_cost_usd: Decimal = Decimal("0.50")
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.probability <= 1:
            raise ValueError(f"sandwich probability must be 0 to 1, got {self.probability}")
        if self.private_routing_cost_usd < 0:
            raise ValueError("private routing cannot cost less than nothing")


@dataclass(frozen=True)
class SandwichAttack:
    """The attacker's best play against one swap, in the victim's input token's base units."""

    front_run_in: int
    back_run_out: int
    #: Profit after both pool fees and the attacker's gas; negative when not worth it.
    profit_usd: Decimal

    @property
    def profitable(self) -> bool:
        return self.profit_usd > 0


@dataclass(frozen=True)
class SandwichOutcome:
    """What the mempool did to a landed swap, and what it cost the trader in USD."""

    sandwiched: bool
    profitable: bool
    private: bool
    #: The victim's loss when sandwiched, private routing's cost, else 0.
    cost_usd: Decimal
    attacker_profit_usd: Decimal
    reason: str


def plan_sandwich(
    pool: Pool,
    token_in: Token,
    amount_in: int,
    min_out: int,
    token_in_usd: Decimal,
    attacker_gas_usd: Decimal,
) -> SandwichAttack:
    """The largest front-run that still leaves the victim its minimum output, and its profit."""
    largest = 0
    if _victim_out(pool, token_in, 0, amount_in) >= min_out:
        size = max(amount_in, 1)
        for _ in range(_MAX_DOUBLINGS):
            if _victim_out(pool, token_in, size, amount_in) < min_out:
                break
            largest, size = size, size * 2
        while size - largest > 1:
            middle = (largest + size) // 2
            if _victim_out(pool, token_in, middle, amount_in) >= min_out:
                largest = middle
            else:
                size = middle
    if largest == 0:
        return SandwichAttack(0, 0, money.usd(-attacker_gas_usd))
    front_swap, after_front = _swap(pool, token_in, largest)
    _, after_victim = _swap(after_front, token_in, amount_in)
    token_out = pool.token1 if token_in == pool.token0 else pool.token0
    try:
        back_out = after_victim.swap_exact_in(token_out, front_swap.amount_out).amount_out
    except InsufficientLiquidityError:
        back_out = 0
    gain = money.from_base_units(back_out - largest, token_in.decimals)
    profit = money.usd(money.mul(gain, token_in_usd) - attacker_gas_usd)
    return SandwichAttack(largest, back_out, profit)


def assess_sandwich(
    policy: SandwichPolicy,
    simulator: DexSimulator,
    fill: SwapFill,
    now: datetime,
    attacker_gas_usd: Decimal,
) -> tuple[SandwichOutcome, SwapFill]:
    """The sandwich verdict for a fill and the fill the trader really gets."""
    chain = simulator.chain
    zero = money.ZERO
    if not chain.public_mempool:
        reason = f"{chain.name} has no public mempool: the sequencer orders privately"
        return SandwichOutcome(False, False, False, zero, zero, reason), fill
    if policy.private_routing:
        cost = money.usd(policy.private_routing_cost_usd)
        reason = f"routed privately for ${cost}: invisible to sandwich bots"
        return SandwichOutcome(False, False, True, cost, zero, reason), fill
    if fill.reverted:
        return SandwichOutcome(
            False, False, False, zero, zero, "reverted: nothing to sandwich"
        ), fill
    quote = fill.quote
    token = chain.token(quote.symbol)
    usdc = chain.quote_token
    token_in, token_out = (usdc, token) if quote.side is Side.BUY else (token, usdc)
    mid = fill.inclusion_mid_price_usd
    attack = plan_sandwich(
        build_pool(simulator.pool_spec(quote.symbol), token, usdc, mid),
        token_in,
        money.to_base_units(fill.amount_in, token_in.decimals),
        money.to_base_units(quote.min_amount_out, token_out.decimals),
        Decimal(1) if quote.side is Side.BUY else mid,
        attacker_gas_usd,
    )
    if not attack.profitable:
        reason = (
            f"not worth sandwiching: attacker would make ${attack.profit_usd} "
            f"after pool fees and ${money.usd(attacker_gas_usd)} gas"
        )
        return SandwichOutcome(False, False, False, zero, attack.profit_usd, reason), fill
    draw = random.Random(f"{policy.seed}:{chain.chain_id}:{quote.symbol}:{now.isoformat()}:mev")
    if Decimal(draw.random()) >= policy.probability:
        reason = f"a sandwich worth ${attack.profit_usd} to an attacker was not taken this time"
        return SandwichOutcome(False, True, False, zero, attack.profit_usd, reason), fill
    worst = fill_at_minimum(fill)
    lost = fill.amount_out - worst.amount_out
    loss_usd = money.usd(money.mul(lost, mid) if quote.side is Side.BUY else lost)
    reason = (
        f"sandwiched: front-run left the swap its minimum {worst.amount_out} {token_out.symbol}, "
        f"costing ${loss_usd}; attacker made ${attack.profit_usd}"
    )
    return SandwichOutcome(True, True, False, loss_usd, attack.profit_usd, reason), worst


def _swap(pool: Pool, token_in: Token, amount_in: int) -> tuple[PoolSwap, Pool]:
    """Swap through the pool and return it as the swap leaves it."""
    swap = pool.swap_exact_in(token_in, amount_in)
    zero_for_one = token_in == pool.token0
    if isinstance(pool, V2Pool):
        # V2 keeps the fee in the reserves: the whole input goes in.
        if zero_for_one:
            return swap, replace(
                pool, reserve0=pool.reserve0 + amount_in, reserve1=pool.reserve1 - swap.amount_out
            )
        return swap, replace(
            pool, reserve0=pool.reserve0 - swap.amount_out, reserve1=pool.reserve1 + amount_in
        )
    step = v3_swap_exact_in(
        pool.sqrt_price_x96, pool.liquidity, amount_in, pool.fee_pips, zero_for_one
    )
    return swap, replace(pool, sqrt_price_x96=step.sqrt_price_next_x96)


def _victim_out(pool: Pool, token_in: Token, front_run: int, amount_in: int) -> int:
    """The victim's output after a front-run of `front_run` (-1 if the pool cannot take it)."""
    try:
        if front_run:
            _, pool = _swap(pool, token_in, front_run)
        return pool.swap_exact_in(token_in, amount_in).amount_out
    except InsufficientLiquidityError:
        return -1
