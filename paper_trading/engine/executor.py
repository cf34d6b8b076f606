"""Turns a decision into a fill: breakers first, then the DEX simulator, then the ledger.

With the default gas strategy ("simulator") the swap lands 1-3 blocks later at the modelled gas
price, as the simulator always did. Any other strategy sends it through a `TransactionManager`
over the gas model's EIP-1559 fee path: it may wait, be replaced with a higher fee, be dropped
(no fill, no gas), revert, or be sandwiched, and fills at the price of the block it lands in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from paper_trading.engine import money
from paper_trading.engine.chains import Chain
from paper_trading.engine.config import SIMULATOR_GAS_STRATEGY, TradingConfig
from paper_trading.engine.dex.gas import GWEI_DECIMALS
from paper_trading.engine.dex.pools import InsufficientLiquidityError
from paper_trading.engine.dex.quote import Side, SwapFill, SwapQuote
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import TradeRecord, TradeStatus, TransactionChanged
from paper_trading.engine.frozen import set_at_once
from paper_trading.engine.portfolio import LedgerEntry, Portfolio
from paper_trading.engine.risk import RiskState, tripped_breakers
from paper_trading.engine.tx.fee_path import FeePath, ModelledFeePath
from paper_trading.engine.tx.gas_strategies import GasStrategy, gas_strategy, wait_for_cheaper_at
from paper_trading.engine.tx.lifecycle import TxOutcome, TxState
from paper_trading.engine.tx.manager import TransactionManager
from paper_trading.engine.tx.mev import SandwichPolicy


@set_at_once
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


@set_at_once
@dataclass(frozen=True)
class Execution:
    trade: TradeRecord | None
    ledger: LedgerEntry | None
    #: Why nothing was executed, for the thought log ("" when a trade was made).
    blocked: str = ""


class TradeExecutor:
    def __init__(
        self,
        chain: Chain,
        simulator: DexSimulator,
        portfolio: Portfolio,
        *,
        fee_path: FeePath | None = None,
    ) -> None:
        """`fee_path` replaces the gas model's EIP-1559 path (a recorded or scripted one)."""
        self.chain = chain
        self.simulator = simulator
        self.portfolio = portfolio
        self._path = fee_path

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
        if self._routes_privately(risk.config):
            gas_budget += SandwichPolicy.private_routing_cost_usd
        if request.side is Side.BUY and amount + gas_budget > self.portfolio.cash_usd:
            return Execution(
                None,
                None,
                f"cash ${self.portfolio.cash_usd:,.2f} cannot cover ${amount:,.2f} "
                f"plus about ${gas_budget:,.4f} gas",
            )
        if request.side is Side.SELL and gas_budget > self.portfolio.cash_usd:
            return Execution(None, None, "not enough cash left to pay gas for the sale")
        if risk.config.gas_strategy == SIMULATOR_GAS_STRATEGY:
            delay, inclusion = self.simulator.inclusion(
                request.symbol,
                request.mid_price_usd,
                request.now,
                request.volatility_per_sqrt_second,
            )
            fill = self.simulator.execute(quote, request.now, inclusion, needs_approval)
            entry = self._apply(request, fill, token.address)
            details = _TxDetails(inclusion_delay_blocks=delay)
            return Execution(
                _record(request, fill, entry, token.address, quote_token.symbol, details), entry
            )
        return self._send(request, quote, risk.config, needs_approval, token.address)

    def _send(
        self,
        request: TradeRequest,
        quote: SwapQuote,
        config: TradingConfig,
        needs_approval: bool,
        token_address: str,
    ) -> Execution:
        """Route the swap through the transaction manager and book whatever landed."""
        path = self._fee_path()
        sandwich = SandwichPolicy(
            probability=config.sandwich_probability,
            private_routing=config.private_routing,
            seed=self.simulator.seed,
        )
        strategy = _strategy(config.gas_strategy, path, request.now)
        manager = TransactionManager(self.simulator, path, strategy, sandwich=sandwich)
        price_at = self.simulator.price_path(
            request.symbol, request.mid_price_usd, request.now, request.volatility_per_sqrt_second
        )
        outcome = manager.send(quote, request.now, price_at, needs_approval)
        details = _tx_details(request, outcome)
        quote_symbol = self.chain.quote_token.symbol
        if outcome.fill is None:
            entry = LedgerEntry(
                self.portfolio.positions.get(request.symbol), money.ZERO, money.ZERO, False
            )
            return Execution(_dropped(request, quote, token_address, quote_symbol, details), entry)
        entry = self._apply(request, outcome.fill, token_address, details.private_routing_fee_usd)
        record = _record(request, outcome.fill, entry, token_address, quote_symbol, details)
        return Execution(record, entry)

    def _apply(
        self,
        request: TradeRequest,
        fill: SwapFill,
        token_address: str,
        routing_fee_usd: Decimal = money.ZERO,
    ) -> LedgerEntry:
        return self.portfolio.apply(
            fill,
            token_address=token_address,
            quote_symbol=self.chain.quote_token.symbol,
            now=request.now,
            position_id=request.position_id,
            routing_fee_usd=routing_fee_usd,
        )

    def _routes_privately(self, config: TradingConfig) -> bool:
        """Private routing is paid for only through the manager, on a public-mempool chain."""
        return (
            config.private_routing
            and config.gas_strategy != SIMULATOR_GAS_STRATEGY
            and self.chain.public_mempool
        )

    def _fee_path(self) -> FeePath:
        """The gas model's base-fee path, built once: it is a pure function of the block."""
        if self._path is None:
            self._path = ModelledFeePath(self.simulator.gas_model)
        return self._path


@set_at_once
@dataclass(frozen=True)
class _TxDetails:
    """What the transaction did, beyond the fill: copied onto the trade record."""

    gas_strategy: str = SIMULATOR_GAS_STRATEGY
    tx_attempts: int = 1
    inclusion_delay_blocks: int = 0
    sandwiched: bool = False
    mev_cost_usd: Decimal = money.ZERO
    private_routing_fee_usd: Decimal = money.ZERO
    transactions: tuple[TransactionChanged, ...] = ()
    #: Why the transaction was dropped ("" otherwise).
    dropped_reason: str = ""


def _strategy(name: str, path: FeePath, now: datetime) -> GasStrategy:
    if name != "wait_for_cheaper":
        return gas_strategy(name)
    return wait_for_cheaper_at(path, path.block_at(now))


def _tx_details(request: TradeRequest, outcome: TxOutcome) -> _TxDetails:
    sandwich = outcome.sandwich
    last = outcome.events[-1]
    return _TxDetails(
        gas_strategy=outcome.strategy,
        tx_attempts=last.attempt + 1,
        inclusion_delay_blocks=outcome.delay_blocks,
        sandwiched=bool(sandwich and sandwich.sandwiched),
        mev_cost_usd=sandwich.cost_usd if sandwich and sandwich.sandwiched else money.ZERO,
        private_routing_fee_usd=sandwich.cost_usd if sandwich and sandwich.private else money.ZERO,
        transactions=tuple(
            TransactionChanged(
                trade_id=request.trade_id,
                symbol=request.symbol.upper(),
                state=e.state.value,
                attempt=e.attempt,
                block=e.block,
                at=e.at,
                max_fee_gwei=_gwei(e.max_fee_wei),
                max_priority_fee_gwei=_gwei(e.max_priority_fee_wei),
                base_fee_gwei=_gwei(e.base_fee_wei),
                reason=e.reason,
            )
            for e in outcome.events
        ),
        dropped_reason=last.reason if last.state is TxState.DROPPED else "",
    )


def _gwei(wei: int) -> Decimal:
    return money.from_base_units(wei, GWEI_DECIMALS)


def _dropped(
    request: TradeRequest,
    quote: SwapQuote,
    token_address: str,
    quote_symbol: str,
    details: _TxDetails,
) -> TradeRecord:
    """A swap that never landed: nothing filled, no fee and no gas paid."""
    buying = quote.side is Side.BUY
    zero = money.ZERO
    return TradeRecord(
        trade_id=request.trade_id,
        created_at=request.now,
        chain_id=quote.chain_id,
        symbol=quote.symbol,
        token_address=token_address,
        side=quote.side.value,
        status=TradeStatus.DROPPED,
        reason=request.reason,
        token_in=quote_symbol if buying else quote.symbol,
        token_out=quote.symbol if buying else quote_symbol,
        amount_in=zero,
        amount_out=zero,
        amount_in_usd=zero,
        amount_out_usd=zero,
        mid_price_usd=quote.mid_price_usd,
        execution_price_usd=zero,
        pool_kind=quote.pool_kind.value,
        fee_pips=quote.fee_pips,
        fee_usd=zero,
        fee_bps=quote.fee_bps,
        price_impact_bps=zero,
        slippage_bps=zero,
        slippage_tolerance_bps=quote.slippage_tolerance_bps,
        min_amount_out=quote.min_amount_out,
        gas_units=0,
        gas_price_gwei=zero,
        gas_native=zero,
        l1_fee_native=zero,
        approval_gas_usd=zero,
        gas_usd=zero,
        gas_source=quote.gas.source,
        realized_pnl_usd=zero,
        net_pnl_usd=zero,
        revert_reason=details.dropped_reason,
        thought_id=request.thought_id,
        position_id=None,
        **_detail_fields(details),
    )


def _detail_fields(details: _TxDetails) -> dict[str, Any]:
    """The trade record's transaction fields."""
    return {
        "gas_strategy": details.gas_strategy,
        "tx_attempts": details.tx_attempts,
        "inclusion_delay_blocks": details.inclusion_delay_blocks,
        "sandwiched": details.sandwiched,
        "mev_cost_usd": details.mev_cost_usd,
        "private_routing_fee_usd": details.private_routing_fee_usd,
        "transactions": details.transactions,
    }


def _record(
    request: TradeRequest,
    fill: SwapFill,
    entry: LedgerEntry,
    token_address: str,
    quote_symbol: str,
    details: _TxDetails,
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
        gas_usd=fill.total_gas_usd + details.private_routing_fee_usd,
        gas_source=gas.source,
        realized_pnl_usd=entry.realized_pnl_usd,
        net_pnl_usd=entry.net_pnl_usd,
        revert_reason=fill.revert_reason or "",
        thought_id=request.thought_id,
        position_id=entry.position.position_id if entry.position else None,
        **_detail_fields(details),
    )
