"""Quotes and fills for swaps against a token's pool, with the costs a real swap would carry.

A quote is priced through a pool re-centred at the mid price now; the fill is priced through the
same pool re-centred at the mid price when the transaction lands, a few blocks later. If the
price moved far enough that the output falls below the quote's minimum, the swap reverts and the
trader pays gas for nothing, as on chain.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Context, Decimal, localcontext
from typing import NamedTuple

from paper_trading.engine import money
from paper_trading.engine.chains import Chain, PoolKind, PoolSpec, Token
from paper_trading.engine.dex.gas import FeesPaid, GasModel
from paper_trading.engine.dex.pools import InsufficientLiquidityError, PoolLayout
from paper_trading.engine.dex.quote import GasCost, Side, SwapFill, SwapQuote

#: A V2 router checks the minimum output before touching the pool: the revert costs little more
#: than the call overhead and reading the reserves.
V2_REVERT_GAS = 30_000
#: A V3 router checks the minimum after the pool has swapped, so almost all the gas is burned.
V3_REVERT_GAS_PERCENT = 95

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_SHORT = Context(prec=8)


class _Leg(NamedTuple):
    """A swap through a pool at one mid price, in the units a trader reads (a tuple: a swap
    makes two and reads each once)."""

    amount_in: Decimal
    amount_out: Decimal
    out_units: int
    fee_amount: Decimal
    fee_usd: Decimal
    fee_bps: Decimal
    price_impact_bps: Decimal
    execution_price_usd: Decimal


class DexSimulator:
    """Swaps on one chain against each token's main USDC pool (or an override of it)."""

    def __init__(
        self,
        chain: Chain,
        seed: int = 0,
        pool_overrides: Mapping[str, PoolSpec] | None = None,
        gas_model: GasModel | None = None,
    ) -> None:
        self.chain = chain
        self.seed = seed
        self.pool_overrides = {s.upper(): p for s, p in (pool_overrides or {}).items()}
        self.gas_model = gas_model or GasModel(chain, seed)
        #: Each tradable symbol's pool, token and pool layout, looked up once (a swap asks twice).
        self._pools: dict[str, tuple[PoolSpec, Token, PoolLayout]] = {}

    def pool_spec(self, symbol: str) -> PoolSpec:
        """The pool a token trades in; raises ValueError for unknown or untradable tokens."""
        return self._pool(symbol)[0]

    def _pool(self, symbol: str) -> tuple[PoolSpec, Token, PoolLayout]:
        found = self._pools.get(symbol)
        if found is not None:
            return found
        token = self.chain.token(symbol)
        spec = self.pool_overrides.get(token.symbol, token.pool)
        if token.is_quote or spec is None:
            raise ValueError(
                f"{token.symbol} is not tradable on {self.chain.name}: "
                f"no pool against {self.chain.quote_token.symbol}"
            )
        layout = PoolLayout.of(spec, token, self.chain.quote_token)
        found = self._pools[symbol] = (spec, token, layout)
        return found

    def quote(
        self,
        symbol: str,
        side: Side,
        amount_in: Decimal,
        mid_price_usd: Decimal,
        native_price_usd: Decimal,
        slippage_tolerance_percent: Decimal,
        now: datetime,
    ) -> SwapQuote:
        """What swapping `amount_in` (USDC for a BUY, the token for a SELL) would give now.

        `price_impact_bps` excludes the fee: fee_bps + price_impact_bps is the whole shortfall of
        the output against `amount_in` converted at the mid price.
        """
        spec, token, layout = self._pool(symbol)
        token_in, token_out = self._tokens(token, side)
        if amount_in <= 0:
            raise ValueError(f"amount to swap must be positive, got {amount_in} {token_in.symbol}")
        if not _ZERO <= slippage_tolerance_percent < 100:
            raise ValueError(
                f"slippage tolerance must be from 0 to under 100%, got {slippage_tolerance_percent}"
            )
        in_units = money.to_base_units(amount_in, token_in.decimals)
        if in_units == 0:
            raise ValueError(f"{amount_in} {token_in.symbol} is below the token's smallest unit")
        leg = self._leg(layout, side, token_in, token_out, in_units, mid_price_usd)
        if leg.out_units == 0:
            raise ValueError(
                f"{amount_in} {token_in.symbol} is too small: the swap would return no "
                f"{token_out.symbol}"
            )
        c = money.CONTEXT
        keep = c.subtract(_ONE, c.divide(slippage_tolerance_percent, _HUNDRED))
        min_units = int(c.multiply(leg.out_units, keep).to_integral_value(ROUND_DOWN))
        return SwapQuote(
            chain_id=self.chain.chain_id,
            symbol=token.symbol,
            side=side,
            pool_kind=spec.kind,
            fee_pips=spec.fee_pips,
            amount_in=leg.amount_in,
            amount_out=leg.amount_out,
            min_amount_out=money.qty(money.from_base_units(min_units, token_out.decimals)),
            mid_price_usd=money.price(mid_price_usd),
            execution_price_usd=leg.execution_price_usd,
            fee_amount=leg.fee_amount,
            fee_usd=leg.fee_usd,
            fee_bps=leg.fee_bps,
            price_impact_bps=leg.price_impact_bps,
            slippage_tolerance_bps=money.ratio(slippage_tolerance_percent * 100),
            gas=self.gas_model.cost(_swap_gas(self.chain, spec.kind), now, native_price_usd),
        )

    def execute(
        self,
        quote: SwapQuote,
        now: datetime,
        inclusion_mid_price_usd: Decimal,
        needs_approval: bool,
        fees: FeesPaid | None = None,
    ) -> SwapFill:
        """Land the quoted swap at the price of its block, or revert it below the minimum.

        Gas is valued at the quote's native price, billed at `fees` when the transaction manager
        knows the block's fees. For a revert `slippage_bps` is the shortfall the swap would have
        had, which is why it reverted; an approval is paid either way.
        """
        if quote.chain_id != self.chain.chain_id:
            raise ValueError(f"quote is for chain {quote.chain_id}, not {self.chain.name}")
        spec, token, layout = self._pool(quote.symbol)
        token_in, token_out = self._tokens(token, quote.side)
        native_price = quote.gas.native_price_usd
        approval = self.gas_model.approval_cost(now, native_price, fees) if needs_approval else None
        in_units = money.to_base_units(quote.amount_in, token_in.decimals)
        min_units = money.to_base_units(quote.min_amount_out, token_out.decimals)
        try:
            leg: _Leg | None = self._leg(
                layout, quote.side, token_in, token_out, in_units, inclusion_mid_price_usd
            )
            problem = None
        except InsufficientLiquidityError as exc:
            leg, problem = None, str(exc)
        if leg is not None and leg.out_units >= min_units:
            return SwapFill(
                quote=quote,
                reverted=False,
                amount_in=leg.amount_in,
                amount_out=leg.amount_out,
                execution_price_usd=leg.execution_price_usd,
                inclusion_mid_price_usd=money.price(inclusion_mid_price_usd),
                fee_amount=leg.fee_amount,
                fee_usd=leg.fee_usd,
                price_impact_bps=leg.price_impact_bps,
                slippage_bps=_slippage_bps(quote, leg.amount_out),
                gas=self.gas_model.cost(
                    _swap_gas(self.chain, spec.kind), now, native_price, fees=fees
                ),
                approval_gas=approval,
            )
        with localcontext(money.CONTEXT):
            moved = (inclusion_mid_price_usd / quote.mid_price_usd - 1) * 100
        against = moved if quote.side is Side.BUY else -moved
        direction = "against" if against >= 0 else "in favour of"
        reason = f"price moved {abs(against):.2f}% {direction} the swap while pending; "
        if leg is None:
            reason += f"the pool could not fill it: {problem}"
        else:
            reason += (
                f"output {_short(leg.amount_out)} {token_out.symbol} below minimum "
                f"{_short(quote.min_amount_out)} {token_out.symbol}"
            )
        return SwapFill(
            quote=quote,
            reverted=True,
            amount_in=_ZERO,
            amount_out=_ZERO,
            execution_price_usd=_ZERO,
            inclusion_mid_price_usd=money.price(inclusion_mid_price_usd),
            fee_amount=_ZERO,
            fee_usd=_ZERO,
            price_impact_bps=_ZERO,
            slippage_bps=_slippage_bps(quote, _ZERO if leg is None else leg.amount_out),
            gas=self._revert_gas(spec.kind, now, native_price, fees),
            approval_gas=approval,
            revert_reason=reason,
        )

    def inclusion_price(
        self,
        symbol: str,
        mid_price_usd: Decimal,
        now: datetime,
        volatility_per_sqrt_second: float,
    ) -> Decimal:
        """The mid price when a transaction sent now is included (see `inclusion`)."""
        return self.inclusion(symbol, mid_price_usd, now, volatility_per_sqrt_second)[1]

    def inclusion(
        self,
        symbol: str,
        mid_price_usd: Decimal,
        now: datetime,
        volatility_per_sqrt_second: float,
    ) -> tuple[int, Decimal]:
        """Blocks until a transaction sent now is included (1-3), and the mid price then.

        Log-normal drift with the given volatility, drawn from a generator seeded by the
        simulator seed, chain, token and time, so backtests and replays see the same prices.
        """
        _check_drift_inputs(mid_price_usd, volatility_per_sqrt_second)
        rng = random.Random(self._price_seed(symbol, now))
        blocks = rng.randint(1, 3)
        delay_seconds = blocks * float(self.chain.gas.block_time_seconds)
        drift = rng.gauss(0.0, volatility_per_sqrt_second * math.sqrt(delay_seconds))
        return blocks, money.price(money.mul(mid_price_usd, Decimal(math.exp(drift))))

    def price_path(
        self,
        symbol: str,
        mid_price_usd: Decimal,
        now: datetime,
        volatility_per_sqrt_second: float,
    ) -> Callable[[datetime], Decimal]:
        """The mid price at any later moment, for a transaction manager's pending swap.

        The same log-normal model as `inclusion`: drift with standard deviation
        volatility x sqrt(seconds since `now`), seeded by (seed, chain, token, now, moment), so a
        replay sees the same price at the same block.
        """
        _check_drift_inputs(mid_price_usd, volatility_per_sqrt_second)
        base = self._price_seed(symbol, now)

        def price_at(moment: datetime) -> Decimal:
            seconds = max((moment - now).total_seconds(), 0.0)
            rng = random.Random(f"{base}:{moment.isoformat()}")
            drift = rng.gauss(0.0, volatility_per_sqrt_second * math.sqrt(seconds))
            return money.price(money.mul(mid_price_usd, Decimal(math.exp(drift))))

        return price_at

    def _price_seed(self, symbol: str, now: datetime) -> str:
        return f"{self.seed}:{self.chain.chain_id}:{symbol.upper()}:{now.isoformat()}"

    def _tokens(self, token: Token, side: Side) -> tuple[Token, Token]:
        quote_token = self.chain.quote_token
        return (quote_token, token) if side is Side.BUY else (token, quote_token)

    def _leg(
        self,
        layout: PoolLayout,
        side: Side,
        token_in: Token,
        token_out: Token,
        in_units: int,
        mid: Decimal,
    ) -> _Leg:
        pool = layout.at(mid)
        swap = pool.swap_exact_in(token_in, in_units)
        amount_in = money.from_base_units(swap.amount_in, token_in.decimals)
        amount_out = money.from_base_units(swap.amount_out, token_out.decimals)
        fee = money.from_base_units(swap.fee_amount, token_in.decimals)
        # The engine's context's operations, as `localcontext(money.CONTEXT)` would apply them.
        c = money.CONTEXT
        if side is Side.BUY:
            in_usd, out_usd, fee_usd = amount_in, c.multiply(amount_out, mid), fee
            execution_price = c.divide(amount_in, amount_out) if amount_out else _ZERO
        else:
            in_usd, out_usd, fee_usd = c.multiply(amount_in, mid), amount_out, c.multiply(fee, mid)
            execution_price = c.divide(amount_out, amount_in)
        fee_bps = c.multiply(c.divide(fee, amount_in), money.BPS)
        shortfall_bps = c.multiply(c.subtract(_ONE, c.divide(out_usd, in_usd)), money.BPS)
        return _Leg(
            amount_in=money.qty(amount_in),
            amount_out=money.qty(amount_out),
            out_units=swap.amount_out,
            fee_amount=money.qty(fee),
            fee_usd=money.usd(fee_usd),
            fee_bps=money.ratio(fee_bps),
            price_impact_bps=money.ratio(shortfall_bps - fee_bps),
            execution_price_usd=money.price(execution_price),
        )

    def _revert_gas(
        self, kind: PoolKind, now: datetime, native_price: Decimal, fees: FeesPaid | None
    ) -> GasCost:
        if kind is PoolKind.V2:
            units = V2_REVERT_GAS
        else:
            units = _swap_gas(self.chain, kind) * V3_REVERT_GAS_PERCENT // 100
        return self.gas_model.cost(units, now, native_price, fees=fees)


def _check_drift_inputs(mid_price_usd: Decimal, volatility_per_sqrt_second: float) -> None:
    if mid_price_usd <= 0:
        raise ValueError(f"mid price must be positive, got {mid_price_usd}")
    if volatility_per_sqrt_second < 0:
        raise ValueError(f"volatility must not be negative, got {volatility_per_sqrt_second}")


def fill_at_minimum(fill: SwapFill) -> SwapFill:
    """The fill of a sandwiched swap: the attacker leaves it exactly its minimum output."""
    if fill.reverted:
        raise ValueError("a reverted swap cannot be filled at its minimum")
    quote = fill.quote
    out = quote.min_amount_out
    with localcontext(money.CONTEXT):
        if quote.side is Side.BUY:
            execution_price = fill.amount_in / out if out else _ZERO
        else:
            execution_price = out / fill.amount_in
    return replace(
        fill,
        amount_out=out,
        execution_price_usd=money.price(execution_price),
        slippage_bps=_slippage_bps(quote, out),
    )


def _swap_gas(chain: Chain, kind: PoolKind) -> int:
    return chain.gas.v2_swap_gas if kind is PoolKind.V2 else chain.gas.v3_swap_gas


def _slippage_bps(quote: SwapQuote, actual_out: Decimal) -> Decimal:
    # The engine's context's operations, as `localcontext(money.CONTEXT)` would apply them.
    c = money.CONTEXT
    expected = quote.amount_out
    return money.ratio(c.multiply(c.divide(c.subtract(expected, actual_out), expected), money.BPS))


def _short(amount: Decimal) -> str:
    """Eight significant digits: enough to see why an output fell short of its minimum."""
    return f"{_SHORT.plus(amount).normalize():f}"
