"""Engine events -> ORM rows, one database transaction per tick; and the state to resume from.

A tick is committed whole or not at all, and a tick already committed is never written again,
so a bot killed at any instant restarts from exactly what the database holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from paper_trading.engine.chains import Chain
from paper_trading.engine.events import (
    EngineCounters,
    MetricsComputed,
    PositionChanged,
    PositionSnapshot,
    PricesObserved,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
    TradeRecord,
)
from paper_trading.engine.portfolio import Portfolio, Position
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPerformanceMetrics,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
    PriceHistory,
)

Status = PaperTradingSession.Status

_POSITION_FIELDS = [
    "quantity",
    "cost_basis_usd",
    "entry_costs_usd",
    "average_entry_price_usd",
    "current_price_usd",
    "current_value_usd",
    "unrealized_pnl_usd",
    "realized_pnl_usd",
    "peak_price_usd",
    "is_open",
    "closed_at",
    "updated_at",
]


def position_row(
    p: PositionSnapshot, account_id: uuid.UUID, session_id: uuid.UUID, updated_at: datetime
) -> PaperPosition:
    """The one mapping from the engine's position to its row (the store and the socket share it)."""
    return PaperPosition(
        position_id=p.position_id,
        account_id=account_id,
        session_id=session_id,
        token_symbol=p.symbol,
        token_address=p.token_address,
        chain_id=p.chain_id,
        quantity=p.quantity,
        cost_basis_usd=p.cost_basis_usd,
        entry_costs_usd=p.entry_costs_usd,
        average_entry_price_usd=p.average_entry_price_usd,
        current_price_usd=p.current_price_usd,
        current_value_usd=p.current_value_usd,
        unrealized_pnl_usd=p.unrealized_pnl_usd,
        realized_pnl_usd=p.realized_pnl_usd,
        peak_price_usd=p.peak_price_usd,
        is_open=p.is_open,
        opened_at=p.opened_at,
        closed_at=p.closed_at,
        updated_at=updated_at,
    )


def thought_row(
    t: ThoughtRecord, account_id: uuid.UUID, session_id: uuid.UUID
) -> PaperAIThoughtLog:
    return PaperAIThoughtLog(
        thought_id=t.thought_id,
        account_id=account_id,
        session_id=session_id,
        token_symbol=t.symbol,
        decision_type=t.decision_type.value,
        confidence_level=t.confidence,
        risk_assessment=t.risk_score,
        opportunity_score=t.opportunity_score,
        reasoning=t.reasoning,
        market_data=dict(t.market_data),
        strategy_name=t.strategy,
        created_at=t.created_at,
    )


def trade_row(t: TradeRecord, account_id: uuid.UUID, session_id: uuid.UUID) -> PaperTrade:
    return PaperTrade(
        trade_id=t.trade_id,
        account_id=account_id,
        session_id=session_id,
        position_id=t.position_id,
        decision_id=t.thought_id,
        chain_id=t.chain_id,
        token_symbol=t.symbol,
        token_address=t.token_address,
        side=t.side,
        status=t.status.value,
        reason=t.reason,
        token_in=t.token_in,
        token_out=t.token_out,
        amount_in=t.amount_in,
        amount_out=t.amount_out,
        amount_in_usd=t.amount_in_usd,
        amount_out_usd=t.amount_out_usd,
        mid_price_usd=t.mid_price_usd,
        execution_price_usd=t.execution_price_usd,
        pool_kind=t.pool_kind,
        fee_pips=t.fee_pips,
        swap_fee_usd=t.fee_usd,
        swap_fee_bps=t.fee_bps,
        price_impact_bps=t.price_impact_bps,
        slippage_bps=t.slippage_bps,
        slippage_tolerance_bps=t.slippage_tolerance_bps,
        min_amount_out=t.min_amount_out,
        gas_units=t.gas_units,
        gas_price_gwei=t.gas_price_gwei,
        gas_cost_native=t.gas_native,
        l1_fee_native=t.l1_fee_native,
        approval_gas_usd=t.approval_gas_usd,
        gas_cost_usd=t.gas_usd,
        gas_source=t.gas_source,
        realized_pnl_usd=t.realized_pnl_usd,
        net_pnl_usd=t.net_pnl_usd,
        revert_reason=t.revert_reason,
        gas_strategy=t.gas_strategy,
        tx_attempts=t.tx_attempts,
        inclusion_delay_blocks=t.inclusion_delay_blocks,
        sandwiched=t.sandwiched,
        mev_cost_usd=t.mev_cost_usd,
        private_routing_fee_usd=t.private_routing_fee_usd,
        transactions=[e.to_json() for e in t.transactions],
        created_at=t.created_at,
    )


class DjangoStore:
    """The event sink that makes a tick durable."""

    def __init__(self, session: PaperTradingSession, chain: Chain) -> None:
        self.session_id = session.session_id
        self.account_id = session.account_id
        self.chain = chain
        self._tokens_by_price_symbol: dict[str, list[tuple[str, str]]] = {}
        for token in chain.tokens.values():
            self._tokens_by_price_symbol.setdefault(token.price_symbol, []).append(
                (token.symbol, token.address)
            )

    def publish(self, result: TickResult) -> None:
        with transaction.atomic():
            # The account before the session, in the order `start_session` locks them: the other
            # order deadlocks on PostgreSQL when a start request arrives during a tick.
            PaperTradingAccount.objects.select_for_update().filter(pk=self.account_id).first()
            session = PaperTradingSession.objects.select_for_update().get(pk=self.session_id)
            if result.tick_number <= int(session.engine_state.get("tick_number", 0)):
                return  # already durable: a retried tick must not write twice
            self._positions(result, session)
            self._thoughts(result)
            self._trades(result)
            self._metrics(result)
            self._prices(result)
            self._account(result)
            self._session(result, session)

    def _positions(self, result: TickResult, session: PaperTradingSession) -> None:
        now = timezone.now()
        rows = [
            position_row(p, self.account_id, session.session_id, now)
            for p in (e.position for e in result.of_type(PositionChanged))
        ]
        # Closed before open, so the one-open-position-per-token rule holds after each statement.
        for batch in ([r for r in rows if not r.is_open], [r for r in rows if r.is_open]):
            if batch:
                PaperPosition.objects.bulk_create(
                    batch,
                    update_conflicts=True,
                    unique_fields=["position_id"],
                    update_fields=_POSITION_FIELDS,
                )

    def _thoughts(self, result: TickResult) -> None:
        PaperAIThoughtLog.objects.bulk_create(
            thought_row(t, self.account_id, self.session_id)
            for t in (e.thought for e in result.of_type(ThoughtLogged))
        )

    def _trades(self, result: TickResult) -> None:
        PaperTrade.objects.bulk_create(
            trade_row(t, self.account_id, self.session_id)
            for t in (e.trade for e in result.of_type(TradeExecuted))
        )

    def _metrics(self, result: TickResult) -> None:
        for event in result.of_type(MetricsComputed):
            m = event.metrics
            PaperPerformanceMetrics.objects.create(
                account_id=self.account_id,
                session_id=self.session_id,
                computed_at=m.computed_at,
                portfolio_value_usd=m.portfolio_value_usd,
                total_pnl_usd=m.total_pnl_usd,
                return_percent=m.return_percent,
                realized_pnl_usd=m.realized_pnl_usd,
                unrealized_pnl_usd=m.unrealized_pnl_usd,
                total_fees_usd=m.fees_usd,
                total_gas_usd=m.gas_usd,
                total_trades=m.total_trades,
                reverted_trades=m.reverted_trades,
                closed_trades=m.closed_trades,
                winning_trades=m.winning_trades,
                losing_trades=m.losing_trades,
                win_rate=m.win_rate_percent,
                profit_factor=m.profit_factor,
                sharpe_ratio=m.sharpe_ratio,
                sortino_ratio=m.sortino_ratio,
                max_drawdown_percent=m.max_drawdown_percent,
                best_trade_usd=m.best_trade_usd,
                worst_trade_usd=m.worst_trade_usd,
            )

    def _prices(self, result: TickResult) -> None:
        rows = [
            PriceHistory(
                token_symbol=symbol,
                token_address=address,
                chain_id=self.chain.chain_id,
                source=event.source,
                timestamp=observed_at,
                price_usd=price,
            )
            for event in result.of_type(PricesObserved)
            for price_symbol, (observed_at, price) in event.prices.items()
            for symbol, address in self._tokens_by_price_symbol.get(price_symbol, [])
        ]
        PriceHistory.objects.bulk_create(rows, ignore_conflicts=True)

    def _account(self, result: TickResult) -> None:
        p = result.portfolio
        PaperTradingAccount.objects.filter(pk=self.account_id).update(
            current_balance_usd=p.cash_usd,
            realized_pnl_usd=p.realized_pnl_usd,
            total_fees_usd=p.fees_usd,
            total_gas_usd=p.gas_usd,
            total_pnl_usd=p.total_pnl_usd,
            updated_at=timezone.now(),
        )

    def _session(self, result: TickResult, session: PaperTradingSession) -> None:
        c = result.counters
        session.engine_state = c.to_json()
        session.last_tick_at = result.timestamp
        session.heartbeat_at = timezone.now()
        session.total_ticks = c.tick_number
        session.total_trades = c.total_trades
        session.successful_trades = c.successful_trades
        session.failed_trades = c.failed_trades
        session.total_thoughts = c.thoughts
        session.tripped_breakers = list(c.tripped)
        session.status_reason = c.feed_problem
        if session.status in (Status.RUNNING, Status.PAUSED):
            # Paused while the price feed is down; running again as soon as prices return.
            session.status = Status.PAUSED if c.feed_problem else Status.RUNNING
        session.save(
            update_fields=[
                "status",
                "engine_state",
                "last_tick_at",
                "heartbeat_at",
                "total_ticks",
                "total_trades",
                "successful_trades",
                "failed_trades",
                "total_thoughts",
                "tripped_breakers",
                "status_reason",
            ]
        )


def load_portfolio(account: PaperTradingAccount) -> Portfolio:
    """The account's books as last committed."""
    positions = {
        row.token_symbol: Position(
            position_id=row.position_id,
            symbol=row.token_symbol,
            chain_id=row.chain_id,
            token_address=row.token_address,
            quantity=row.quantity,
            cost_basis_usd=row.cost_basis_usd,
            entry_costs_usd=row.entry_costs_usd,
            opened_at=row.opened_at,
            current_price_usd=row.current_price_usd,
            peak_price_usd=row.peak_price_usd,
            realized_pnl_usd=row.realized_pnl_usd,
        )
        for row in account.positions.filter(is_open=True)
    }
    approvals = set(account.trades.values_list("token_in", flat=True).distinct())
    return Portfolio(
        initial_balance_usd=account.initial_balance_usd,
        cash_usd=account.current_balance_usd,
        realized_pnl_usd=account.realized_pnl_usd,
        fees_usd=account.total_fees_usd,
        gas_usd=account.total_gas_usd,
        positions=positions,
        approvals=approvals,
    )


def load_counters(session: PaperTradingSession) -> EngineCounters:
    return EngineCounters.from_json(session.engine_state)


def load_equity(session: PaperTradingSession) -> list[Decimal]:
    """The equity curve as far as metrics rows kept it (every N ticks)."""
    return list(
        session.metrics.order_by("computed_at").values_list("portfolio_value_usd", flat=True)
    )


def load_closed_trade_pnls(session: PaperTradingSession) -> list[Decimal]:
    return list(
        session.trades.filter(side=PaperTrade.Side.SELL, status=PaperTrade.Status.EXECUTED)
        .order_by("created_at")
        .values_list("net_pnl_usd", flat=True)
    )
