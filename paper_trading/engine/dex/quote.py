"""Immutable values a swap produces: the gas bill, the quote, and the fill."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from paper_trading.engine.chains import PoolKind
from paper_trading.engine.frozen import set_at_once


class Side(StrEnum):
    """BUY spends the USD stablecoin for the token; SELL spends the token for the stablecoin."""

    BUY = "BUY"
    SELL = "SELL"


@set_at_once
@dataclass(frozen=True)
class GasCost:
    gas_units: int
    base_fee_gwei: Decimal
    #: Tip actually paid (0 on chains whose sequencer ignores tips).
    priority_fee_gwei: Decimal
    #: Execution fee on the chain itself, in the native token.
    execution_fee_native: Decimal
    #: OP-stack L1 data fee in the native token (0 elsewhere).
    l1_fee_native: Decimal
    total_native: Decimal
    native_price_usd: Decimal
    #: Ledger-quantized USD cost.
    total_usd: Decimal
    #: Where the fee figures came from: "default" (chain profile model) or "rpc".
    source: str = "default"


@set_at_once
@dataclass(frozen=True)
class SwapQuote:
    """What a swap would do if included now, with every cost in the units a trader reads.

    Amounts are in the input/output token's own units (USDC for a BUY's input). Basis points
    are relative to the mid price.
    """

    chain_id: int
    symbol: str
    side: Side
    pool_kind: PoolKind
    fee_pips: int
    amount_in: Decimal
    amount_out: Decimal
    #: Output below this reverts: amount_out x (1 - slippage tolerance).
    min_amount_out: Decimal
    mid_price_usd: Decimal
    #: USD per token actually achieved (after fee and impact).
    execution_price_usd: Decimal
    fee_amount: Decimal
    fee_usd: Decimal
    fee_bps: Decimal
    price_impact_bps: Decimal
    slippage_tolerance_bps: Decimal
    gas: GasCost


@set_at_once
@dataclass(frozen=True)
class SwapFill:
    """The outcome at inclusion: filled at the price then, or reverted and still paying gas."""

    quote: SwapQuote
    reverted: bool
    #: Input actually spent (0 when reverted: the tokens never left the wallet).
    amount_in: Decimal
    amount_out: Decimal
    execution_price_usd: Decimal
    #: Mid price when the transaction was included.
    inclusion_mid_price_usd: Decimal
    fee_amount: Decimal
    fee_usd: Decimal
    price_impact_bps: Decimal
    #: Shortfall of the actual output against the quoted output, in bps (negative = better).
    slippage_bps: Decimal
    #: Gas for the swap (full or revert).
    gas: GasCost
    #: One-off token approval paid with this swap, if it was the first for the token.
    approval_gas: GasCost | None
    revert_reason: str | None = None

    @property
    def total_gas_usd(self) -> Decimal:
        extra = self.approval_gas.total_usd if self.approval_gas else Decimal(0)
        return self.gas.total_usd + extra
