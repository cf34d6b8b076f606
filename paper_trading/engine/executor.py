"""Turns a decision into a fill: breakers first, then the DEX simulator, then the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.chains import Chain
from paper_trading.engine.dex.pools import InsufficientLiquidityError
from paper_trading.engine.dex.quote import Side, SwapFill
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import TradeRecord, TradeStatus
from paper_trading.engine.portfolio import LedgerEntry, Portfolio
from paper_trading.engine.risk import RiskState, tripped_breakers


@dataclass(frozen=True)
class TradeRequest:
    symbol: str
    side: Side
    #: BUY: USD (stablecoin) to spend. SELL: token quantity to sell.
    amount: Decimal
    mid_price_usd: Decimal
    native_price_usd: Decimal
    #: Per-second price volatility, for how far the price may move while the swap is pending.
    volatility_per_sqrt_second: float
    now: datetime
    #: "strategy" or the exit rule that asked for it.
    reason: str
    thought_id: uuid.UUID
    trade_id: uuid.UUID
    position_id: uuid.UUID


@dataclass(frozen=True)
class Execution:
    trade: TradeRecord | None
    ledger: LedgerEntry | None
    #: Why nothing was executed, for the thought log ("" when a trade was made).
    blocked: str = ""


class TradeExecutor:
    def __init__(self, chain: Chain, simulator: DexSimulator, portfolio: Portfolio) -> None:
        self.chain = chain
        self.simulator = simulator
        self.portfolio = portfolio

    def execute(self, request: TradeRequest, risk: RiskState) -> Execution:
        if request.side is Side.BUY:
            tripped = tripped_breakers(risk)
            if tripped:
                return Execution(None, None, "; ".join(r.message for r in tripped))
        token = self.chain.token(request.symbol)
        quote_token = self.chain.quote_token
        amount = request.amount
        if request.side is Side.BUY:
            # The stablecoin has its own decimals; a wallet cannot spend a fraction of a unit.
            amount = money.from_base_units(
                money.to_base_units(amount, quote_token.decimals), quote_token.decimals
            )
        if amount <= 0:
            return Execution(None, None, "trade size rounds to zero")
        needs_approval = self.portfolio.needs_approval(
            request.side, request.symbol, quote_token.symbol
        )
        try:
            quote = self.simulator.quote(
                request.symbol,
                request.side,
                amount,
                request.mid_price_usd,
                request.native_price_usd,
                risk.config.slippage_tolerance_percent,
                request.now,
            )
        except InsufficientLiquidityError as exc:
            return Execution(None, None, str(exc))
        gas_budget = quote.gas.total_usd * 2 if needs_approval else quote.gas.total_usd
        if request.side is Side.BUY and amount + gas_budget > self.portfolio.cash_usd:
            return Execution(
                None,
                None,
                f"cash ${self.portfolio.cash_usd:,.2f} cannot cover ${amount:,.2f} "
                f"plus about ${gas_budget:,.4f} gas",
            )
        if request.side is Side.SELL and gas_budget > self.portfolio.cash_usd:
            return Execution(None, None, "not enough cash left to pay gas for the sale")
        inclusion = self.simulator.inclusion_price(
            request.symbol, request.mid_price_usd, request.now, request.volatility_per_sqrt_second
        )
        fill = self.simulator.execute(quote, request.now, inclusion, needs_approval)
        entry = self.portfolio.apply(
            fill,
            token_address=token.address,
            quote_symbol=quote_token.symbol,
            now=request.now,
            position_id=request.position_id,
        )
        return Execution(_record(request, fill, entry, token.address, quote_token.symbol), entry)


def _record(
    request: TradeRequest,
    fill: SwapFill,
    entry: LedgerEntry,
    token_address: str,
    quote_symbol: str,
) -> TradeRecord:
    quote = fill.quote
    buying = quote.side is Side.BUY
    mid = fill.inclusion_mid_price_usd
    amount_in_usd = fill.amount_in if buying else money.usd(money.mul(fill.amount_in, mid))
    amount_out_usd = money.usd(money.mul(fill.amount_out, mid)) if buying else fill.amount_out
    gas = fill.gas
    return TradeRecord(
        trade_id=request.trade_id,
        created_at=request.now,
        chain_id=quote.chain_id,
        symbol=quote.symbol,
        token_address=token_address,
        side=quote.side.value,
        status=TradeStatus.REVERTED if fill.reverted else TradeStatus.EXECUTED,
        reason=request.reason,
        token_in=quote_symbol if buying else quote.symbol,
        token_out=quote.symbol if buying else quote_symbol,
        amount_in=fill.amount_in,
        amount_out=fill.amount_out,
        amount_in_usd=money.usd(amount_in_usd),
        amount_out_usd=money.usd(amount_out_usd),
        mid_price_usd=mid,
        execution_price_usd=fill.execution_price_usd,
        pool_kind=quote.pool_kind.value,
        fee_pips=quote.fee_pips,
        fee_usd=fill.fee_usd,
        fee_bps=quote.fee_bps,
        price_impact_bps=fill.price_impact_bps,
        slippage_bps=fill.slippage_bps,
        slippage_tolerance_bps=quote.slippage_tolerance_bps,
        min_amount_out=quote.min_amount_out,
        gas_units=gas.gas_units,
        gas_price_gwei=gas.base_fee_gwei + gas.priority_fee_gwei,
        gas_native=gas.total_native,
        l1_fee_native=gas.l1_fee_native,
        approval_gas_usd=fill.approval_gas.total_usd if fill.approval_gas else money.ZERO,
        gas_usd=fill.total_gas_usd,
        gas_source=gas.source,
        realized_pnl_usd=entry.realized_pnl_usd,
        net_pnl_usd=entry.net_pnl_usd,
        revert_reason=fill.revert_reason or "",
        thought_id=request.thought_id,
        position_id=entry.position.position_id if entry.position else None,
    )
