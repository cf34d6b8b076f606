"""Keeping a backtest in the database, so the dashboard's pages and analytics can show it.

A saved run is a COMPLETED replay session of an account of its own (analytics are per account),
holding the run's trades with the thoughts that caused them, its positions, its periodic
metrics (the equity curve) and the prices it traded on. Nothing is written while the run goes:
`StoreRecorder` keeps those events in memory, and `save_run` hands them to the bot's own
`DjangoStore` as one final tick, in one transaction, so the rows are exactly what a paper bot
would have written.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from paper_trading.engine.backtest import BacktestResult, PreparedBacktest
from paper_trading.engine.events import (
    Event,
    MetricsComputed,
    PositionChanged,
    PositionSnapshot,
    PricesObserved,
    QuietTicks,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
)
from paper_trading.engine.strategies.catalog import portable_spec
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services.accounts import create_account
from paper_trading.store import DjangoStore


class StoreRecorder:
    """An event sink that keeps what the database needs, not every thought of every tick."""

    def __init__(self) -> None:
        self.thoughts: list[ThoughtRecord] = []
        self.trades: list[TradeExecuted] = []
        self.metrics: list[MetricsComputed] = []
        self.positions: dict[uuid.UUID, PositionSnapshot] = {}
        self.last: TickResult | None = None

    def publish(self, result: TickResult) -> None:
        for event in result.events:
            if isinstance(event, ThoughtLogged):
                if event.thought.trade_id is not None:
                    self.thoughts.append(event.thought)
            elif isinstance(event, TradeExecuted):
                self.trades.append(event)
            elif isinstance(event, PositionChanged):
                self.positions[event.position.position_id] = event.position
            elif isinstance(event, MetricsComputed):
                self.metrics.append(event)
        self.last = result

    def publish_quiet(self, ticks: QuietTicks) -> None:
        """Bulk-run ticks trade nothing: keep their metrics and where positions ended."""
        self.metrics.extend(ticks.metrics)
        for event in ticks.last.of_type(PositionChanged):
            self.positions[event.position.position_id] = event.position
        self.last = ticks.last


def save_run(
    prepared: PreparedBacktest,
    result: BacktestResult,
    recorder: StoreRecorder,
    *,
    session_id: uuid.UUID,
    username: str,
) -> PaperTradingSession:
    """Store the run as session `session_id` (the run's id namespace) of a new account."""
    last = recorder.last
    if last is None:
        raise ValueError("the backtest recorded no ticks")
    config = prepared.config
    chain = prepared.chain
    first_tick = result.equity[0].at if result.equity else last.timestamp
    price_events: list[Event] = []
    for symbol, points in prepared.prices.items():
        price_symbol = chain.token(symbol).price_symbol
        price_events += [PricesObserved("replay", {price_symbol: (at, p)}) for at, p in points]
    events: list[Event] = [
        *(ThoughtLogged(t) for t in recorder.thoughts),
        *recorder.trades,
        *(PositionChanged(p) for p in recorder.positions.values()),
        *recorder.metrics,
        *price_events,
    ]
    # Counting only the thoughts stored (those behind trades), so the counters match the rows.
    counters = dataclasses.replace(last.counters, thoughts=len(recorder.thoughts))
    final = dataclasses.replace(last, events=tuple(events), counters=counters)
    strategy = prepared.strategy
    user, _ = get_user_model().objects.get_or_create(username=username)
    with transaction.atomic():
        account = create_account(
            user, _account_name(prepared, first_tick, session_id), config.initial_balance_usd
        )
        session = PaperTradingSession.objects.create(
            session_id=session_id,
            account=account,
            name=f"backtest {prepared.strategy.name}",
            status=PaperTradingSession.Status.COMPLETED,
            status_reason="backtest",
            intel_level=strategy.level if isinstance(strategy, IntelSliderEngine) else 5,
            strategy_name=portable_spec(config.strategy),
            strategy_params=type(strategy).resolve_params(config.params),
            chain_id=chain.chain_id,
            price_source=PaperTradingSession.PriceSource.REPLAY,
            bar_interval=config.bar,
            data_dir=str(config.data_dir),
            period_start=config.start,
            period_end=config.end,
            tick_interval_seconds=prepared.source.interval_seconds,
            seed=config.seed,
            starting_balance_usd=account.initial_balance_usd,
            ended_at=timezone.now(),
        )
        DjangoStore(session, chain).publish(final)
        session.ending_value_usd = result.portfolio.total_value_usd
        session.save(update_fields=["ending_value_usd"])
    return session


def _account_name(prepared: PreparedBacktest, first_tick: datetime, run_id: uuid.UUID) -> str:
    name = (
        f"Backtest {prepared.strategy.name} {prepared.chain.slug} {first_tick:%Y-%m-%d} "
        f"#{run_id.hex[:8]}"
    )
    return name[: PaperTradingAccount._meta.get_field("name").max_length or 100]
