"""Starting, running, resuming and finishing a paper-trading bot session."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings as django_settings
from django.db import IntegrityError, connection, reset_queries, transaction
from django.utils import timezone

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.backtest import priced_universe
from paper_trading.engine.chains import DEFAULT_CHAIN_ID, Chain, Token, get_chain
from paper_trading.engine.dex.gas import GasModel
from paper_trading.engine.dex.rpc import JsonRpcGasOracle, rpc_url_for
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import TickResult
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.log_sink import LogSink
from paper_trading.engine.loop import BotLoop, EndReason, RunOutcome
from paper_trading.engine.mempool.fast_lane import run_both_lanes, run_fast_lane
from paper_trading.engine.mempool.sources import EventSource
from paper_trading.engine.prices.feed import PriceFeedService
from paper_trading.engine.prices.replay import DEFAULT_DATA_DIR, ReplaySource
from paper_trading.engine.prices.synthetic import SyntheticSource
from paper_trading.engine.schedule import ReplaySchedule, WallClockSchedule
from paper_trading.engine.strategies.base import Strategy
from paper_trading.engine.strategies.catalog import resolve_strategy
from paper_trading.engine.strategies.contract import check_recording
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.observability.log_context import bot_session
from paper_trading.observability.metrics import TICK_DURATION, MetricsSink
from paper_trading.realtime.publisher import ChannelsPublisher, publish_session_status
from paper_trading.services.accounts import trading_config
from paper_trading.services.alerts import alert_if_failed, alert_sinks
from paper_trading.services.heartbeat import Heartbeat
from paper_trading.services.prices import DatabasePriceHistory, live_source
from paper_trading.store import (
    DjangoStore,
    load_closed_trade_pnls,
    load_counters,
    load_equity,
    load_portfolio,
)

logger = logging.getLogger("paper_trading.bot")

#: Synthetic prices start here so every synthetic run with one seed sees the same series.
SYNTHETIC_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
#: Length of a synthetic run's timeline; `max_ticks` usually ends it sooner.
SYNTHETIC_TICKS = 200_000

Status = PaperTradingSession.Status
#: A session in these states has (or had, if its process died) a bot working on it.
ACTIVE_STATUSES = (Status.RUNNING, Status.PAUSED)


class BotAlreadyRunningError(Exception):
    pass


class ReplayExhaustedError(Exception):
    """The account's simulated clock has reached the end of the recorded prices."""


class PositionsOnAnotherChainError(Exception):
    """The account holds open positions on another chain, which a bot on this one could neither
    value nor sell (each chain's tokens live in their own pools, as in a wallet)."""


@dataclass(frozen=True)
class BotSettings:
    #: The Intel slider's level: `intel_slider`'s `level` unless `strategy_params` sets it.
    intel_level: int = 5
    #: A built-in strategy's name, package.module.Class or path/to/file.py:Class.
    strategy: str = IntelSliderEngine.name
    #: The strategy's parameters (text or numbers); checked and completed with defaults.
    strategy_params: Mapping[str, object] = field(default_factory=dict)
    chain_id: int = DEFAULT_CHAIN_ID
    #: "live", "replay" (recorded real prices) or "synthetic" (tests only).
    prices: str = PaperTradingSession.PriceSource.REPLAY
    #: Why that source was chosen (the `auto` decision), kept on the session.
    price_note: str = ""
    #: Replay candle interval.
    bar_interval: str = "1h"
    #: Replay: a folder of candle files instead of the shipped recording, and a period.
    data_dir: str = ""
    period_start: datetime | None = None
    period_end: datetime | None = None
    #: Live: wall seconds between ticks. Synthetic: simulated seconds. None: the default.
    tick_interval_seconds: int | None = None
    #: Replay clock multiplier; None runs as fast as possible.
    speed: Decimal | None = None
    session_name: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.intel_level <= 10:
            raise ValueError(f"intel level must be between 1 and 10, got {self.intel_level}")
        self._resolve_strategy()
        get_chain(self.chain_id)
        if self.prices not in PaperTradingSession.PriceSource.values:
            raise ValueError(f"unknown price source {self.prices!r}")
        if self.speed is not None and self.speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        if self.tick_interval_seconds is not None and self.tick_interval_seconds <= 0:
            raise ValueError("tick interval must be a positive number of seconds")
        if self.period_start and self.period_end and self.period_start >= self.period_end:
            raise ValueError("the replay period must start before it ends")

    def _resolve_strategy(self) -> None:
        """Store the checked choice, so the session (and any resumed run) builds exactly it."""
        choice = resolve_strategy(self.strategy, self.strategy_params, self.intel_level)
        object.__setattr__(self, "strategy", choice.spec)
        object.__setattr__(self, "strategy_params", choice.params)
        object.__setattr__(self, "intel_level", choice.intel_level)

    @property
    def resolved_tick_interval(self) -> int:
        if self.tick_interval_seconds is not None:
            return self.tick_interval_seconds
        if self.prices == PaperTradingSession.PriceSource.LIVE:
            return int(django_settings.LIVE_TICK_INTERVAL_SECONDS)
        return 3600


def worker_alive(session: PaperTradingSession) -> bool:
    """Whether something is still running an active session.

    Every runner writes a heartbeat every few seconds; one silent for the timeout is dead. On
    the same machine a vanished process is known dead at once.
    """
    if session.worker_host == socket.gethostname() and session.worker_pid:
        if session.worker_pid == os.getpid():
            return True
        if not psutil.pid_exists(session.worker_pid):
            return False
    last = session.heartbeat_at or session.started_at
    timeout = timedelta(seconds=django_settings.HEARTBEAT_TIMEOUT_SECONDS)
    return timezone.now() - last < timeout


def resumable_price_source(account: PaperTradingAccount) -> str | None:
    """The price source of the account's interrupted session, if one is waiting to resume."""
    for session in PaperTradingSession.objects.filter(
        account=account, status__in=ACTIVE_STATUSES
    ).order_by("-started_at"):
        if not worker_alive(session):
            return session.price_source
    return None


def start_session(
    account: PaperTradingAccount, settings: BotSettings, *, resume: bool = True
) -> PaperTradingSession:
    """Claim the account for this process: resume its interrupted session or open a new one.

    A RUNNING session whose process is gone was interrupted (killed, crashed). With `resume`, the
    newest one that runs the bot asked for (same kind of prices, chain and strategy) carries on
    where its last committed tick ended; any other is closed as FAILED so it is never left
    RUNNING. A new session is refused on another chain than the account's open positions.
    """
    with transaction.atomic():
        # Lock the account row: concurrent starts for one account queue here, and the database's
        # one-active-session constraint backs it up across machines.
        PaperTradingAccount.objects.select_for_update().filter(pk=account.pk).first()
        running = list(
            PaperTradingSession.objects.select_for_update()
            .filter(account=account, status__in=ACTIVE_STATUSES)
            .order_by("-started_at")
        )
        for session in running:
            if worker_alive(session):
                raise BotAlreadyRunningError(
                    f"a bot is already running on account {account.name!r} "
                    f"(session {session.session_id}, pid {session.worker_pid} on "
                    f"{session.worker_host}); stop it first"
                )
        # Resuming another bot than the one asked for (say the killed Intel bot on Ethereum for
        # `exit_all` on Base) ignored the request's chain and strategy, and its chain check.
        claimed = next((x for x in running if _runs(x, settings)), None) if resume else None
        if claimed is None:
            # Before any session is closed: a refused start changes nothing, announces nothing.
            _refuse_positions_elsewhere(account, settings.chain_id)
        for session in running:
            if session is claimed:
                continue
            session.status = Status.FAILED
            session.status_reason = "the bot process ended without closing the session"
            session.ended_at = timezone.now()
            session.save(update_fields=["status", "status_reason", "ended_at"])
            announce_session_end(session)
        if claimed is None:
            claimed = _create_session(
                account=account,
                name=settings.session_name,
                intel_level=settings.intel_level,
                strategy_name=settings.strategy,
                strategy_params=dict(settings.strategy_params),
                chain_id=settings.chain_id,
                price_source=settings.prices,
                price_source_note=settings.price_note,
                bar_interval=settings.bar_interval,
                data_dir=settings.data_dir,
                period_start=settings.period_start,
                period_end=settings.period_end,
                tick_interval_seconds=settings.resolved_tick_interval,
                speed=settings.speed,
                seed=settings.seed,
                starting_balance_usd=account.current_balance_usd,
            )
        claimed.worker_host = socket.gethostname()
        claimed.worker_pid = os.getpid()
        claimed.heartbeat_at = timezone.now()
        claimed.save(update_fields=["worker_host", "worker_pid", "heartbeat_at"])
        return claimed


def _runs(session: PaperTradingSession, settings: BotSettings) -> bool:
    """Whether the session runs the bot these settings ask for, so resuming it is starting it."""
    return (
        session.price_source == settings.prices
        and session.chain_id == settings.chain_id
        and session.strategy_name == settings.strategy
        and session.strategy_params == dict(settings.strategy_params)
    )


def _refuse_positions_elsewhere(account: PaperTradingAccount, chain_id: int) -> None:
    held = account.positions.filter(is_open=True).exclude(chain_id=chain_id)
    elsewhere = sorted(held.values_list("chain_id", "token_symbol"))
    if not elsewhere:
        return
    chains = sorted({c for c, _ in elsewhere})
    what = "; ".join(
        f"{get_chain(c).name}: {', '.join(s for cc, s in elsewhere if cc == c)}" for c in chains
    )
    raise PositionsOnAnotherChainError(
        f"account {account.name!r} holds open positions on another chain ({what}), which a bot "
        f"on {get_chain(chain_id).name} cannot value or sell: run a bot on "
        f"{get_chain(chains[0]).name} to manage them (strategy exit_all sells them all at its "
        "first tick), or reset the account"
    )


def _create_session(**fields: Any) -> PaperTradingSession:
    try:
        with transaction.atomic():
            return PaperTradingSession.objects.create(**fields)
    except IntegrityError:
        raise BotAlreadyRunningError(
            f"a bot is already running on account {fields['account'].name!r}"
        ) from None


def claim_session(session: PaperTradingSession, runner: str) -> None:
    """Mark the session as run by this process, now."""
    PaperTradingSession.objects.filter(pk=session.pk).update(
        worker_host=socket.gethostname(),
        worker_pid=os.getpid(),
        heartbeat_at=timezone.now(),
        runner=runner,
    )
    session.refresh_from_db()


def strategy_for(session: PaperTradingSession) -> Strategy:
    """The session's strategy; sessions from before strategy selection store only a level."""
    return resolve_strategy(
        session.strategy_name, session.strategy_params, session.intel_level
    ).strategy


def account_clock(session: PaperTradingSession) -> datetime | None:
    """Where this session's simulated clock starts: after everything the account already did.

    A new replay session on an account continues from the last tick of the account's earlier
    sessions on the same kind of prices, so positions are never older than the clock.
    """
    if session.last_tick_at is not None:
        return session.last_tick_at
    previous = (
        PaperTradingSession.objects.filter(
            account_id=session.account_id, price_source=session.price_source
        )
        .exclude(pk=session.pk)
        .exclude(last_tick_at=None)
        .order_by("-last_tick_at")
        .values_list("last_tick_at", flat=True)
        .first()
    )
    return previous


@dataclass(frozen=True)
class _Prices:
    schedule: ReplaySchedule | WallClockSchedule
    feed: PriceFeedService
    universe: list[Token]
    bar_seconds: int
    #: Up to when to warm the strategy's history.
    warm_until: datetime
    label: str


def _live_prices(session: PaperTradingSession, chain: Chain) -> _Prices:
    source = live_source()
    interval = session.tick_interval_seconds
    feed = PriceFeedService(
        source,
        max_age=timedelta(seconds=django_settings.PRICE_MAX_AGE_SECONDS),
        history=DatabasePriceHistory(chain, source.name),
    )
    return _Prices(
        schedule=WallClockSchedule(interval),
        feed=feed,
        universe=priced_universe(chain, source.symbols_available()),
        bar_seconds=interval,
        warm_until=timezone.now(),
        label="LIVE",
    )


def _recorded_prices(session: PaperTradingSession, chain: Chain, strategy: Strategy) -> _Prices:
    schedule, source, bar_seconds = _schedule_and_source(session, strategy)
    return _Prices(
        schedule=schedule,
        feed=PriceFeedService(source, max_age=timedelta(seconds=bar_seconds)),
        universe=priced_universe(chain, source.symbols_available()),
        bar_seconds=bar_seconds,
        # History up to the last tick already made, or up to just before the first tick to make.
        warm_until=schedule.resume_after or schedule.timeline[0] - timedelta(seconds=1),
        label="REPLAY" if source.name == "replay" else source.name.upper(),
    )


def check_startable(session: PaperTradingSession) -> None:
    """Fail now, not in a worker later, when a replay has nothing left to play
    (`ReplayExhaustedError`) or the strategy's indicators look ahead over the recording
    (`StrategyContractError`)."""
    if session.price_source == PaperTradingSession.PriceSource.LIVE:
        return
    strategy = strategy_for(session)
    _, source, _ = _schedule_and_source(session, strategy)
    if isinstance(source, ReplaySource):
        chain = get_chain(session.chain_id)
        symbols = {t.price_symbol for t in priced_universe(chain, source.symbols_available())}
        check_recording(strategy, source, sorted(symbols))


def _schedule_and_source(
    session: PaperTradingSession, strategy: Strategy
) -> tuple[ReplaySchedule, ReplaySource | SyntheticSource, int]:
    source: ReplaySource | SyntheticSource
    timeline: Sequence[datetime]
    if session.price_source == PaperTradingSession.PriceSource.SYNTHETIC:
        source = SyntheticSource(
            seed=session.seed, start=SYNTHETIC_EPOCH, step_seconds=session.tick_interval_seconds
        )
        timeline = source.timeline(SYNTHETIC_TICKS + strategy.warmup_bars)
        bar_seconds = session.tick_interval_seconds
    else:
        folder = Path(session.data_dir) if session.data_dir else DEFAULT_DATA_DIR
        source = ReplaySource(data_dir=folder, interval=session.bar_interval)
        timeline = source.close_times(session.period_start, session.period_end)
        if not timeline:
            raise ReplayExhaustedError(
                f"no recorded {session.bar_interval} prices in {folder} for that period"
            )
        bar_seconds = source.interval_seconds
    # Start once the strategy has enough history, so the first ticks are not spent blind.
    timeline = timeline[strategy.warmup_bars :]
    resume_after = account_clock(session)
    # Only a session that has not ticked yet is refused: one that already made its last tick
    # (killed before it could close) resumes with nothing left and completes, keeping its trades.
    exhausted = resume_after is not None and timeline and timeline[-1] <= resume_after
    if exhausted and session.last_tick_at is None:
        raise ReplayExhaustedError(
            f"account {session.account.name!r} has already traded through the recorded prices "
            f"(up to {resume_after:%Y-%m-%d %H:%M} UTC); reset the account to replay again"
        )
    return ReplaySchedule(timeline, session.speed, resume_after), source, bar_seconds


def build_loop(
    session: PaperTradingSession,
    stop: threading.Event,
    *,
    runtime_minutes: float | None = None,
    max_ticks: int | None = None,
    log: logging.Logger = logger,
) -> BotLoop:
    """Wire the engine for a session from what the database holds."""
    account = session.account
    chain: Chain = get_chain(session.chain_id)
    strategy = strategy_for(session)
    if session.price_source == PaperTradingSession.PriceSource.LIVE:
        prices = _live_prices(session, chain)
    else:
        prices = _recorded_prices(session, chain, strategy)
    universe = prices.universe
    skipped = [t.symbol for t in chain.tradable_tokens if t not in universe]
    if skipped:
        log.info("[PRICE] no prices for %s: not traded in this run", ", ".join(skipped))
    bar_seconds = prices.bar_seconds
    analyzer = MarketAnalyzer(
        chain=chain,
        feed=prices.feed,
        strategy=strategy,
        simulator=DexSimulator(chain, seed=session.seed, gas_model=_gas_model(session, chain)),
        portfolio=load_portfolio(account),
        config=trading_config(account),
        ids=IdFactory(session.session_id),
        bar_seconds=bar_seconds,
        counters=load_counters(session),
        equity=load_equity(session),
        closed_trade_pnls=load_closed_trade_pnls(session),
        universe=universe,
    )
    analyzer.warm_up(prices.warm_until)
    return BotLoop(
        analyzer,
        prices.schedule,
        [
            DjangoStore(session, chain),
            ChannelsPublisher(account.account_id, session.session_id),
            LogSink(log, prices.label),
            *alert_sinks(account.account_id, session.session_id),
            MetricsSink.for_feed(prices.feed),
        ],
        stop,
        config_source=lambda: trading_config(account),
        on_tick_duration=TICK_DURATION.observe,
        max_runtime_seconds=runtime_minutes * 60 if runtime_minutes else None,
        max_ticks=max_ticks,
    )


def _gas_model(session: PaperTradingSession, chain: Chain) -> GasModel:
    """Live sessions read fees from the chain when `RPC_URL_<chain id>` is set.

    Replays and synthetic runs keep the modelled fees: today's gas on last year's prices would
    mix two moments, and replays must stay repeatable.
    """
    url = rpc_url_for(chain.chain_id, os.environ)
    if url and session.price_source == PaperTradingSession.PriceSource.LIVE:
        return GasModel(chain, seed=session.seed, live=JsonRpcGasOracle(url, chain).figures)
    return GasModel(chain, seed=session.seed)


_END_STATUS = {
    EndReason.COMPLETED: Status.COMPLETED,
    EndReason.STOPPED: Status.STOPPED,
    EndReason.RUNTIME_LIMIT: Status.STOPPED,
    EndReason.TICK_LIMIT: Status.STOPPED,
}


def finish_session(
    session: PaperTradingSession, outcome: RunOutcome | None, error: str = ""
) -> PaperTradingSession:
    """Close the session with its final status; never leave it RUNNING."""
    session.refresh_from_db()
    account = session.account
    account.refresh_from_db()
    session.status = _END_STATUS[outcome.reason] if outcome else Status.FAILED
    reason = outcome.reason.value if outcome else ""
    if outcome and session.stop_requested:
        reason = f"stopped on request: {session.stop_reason or 'no reason given'}"
    session.status_reason = error or reason
    session.ended_at = timezone.now()
    session.ending_value_usd = account.initial_balance_usd + account.total_pnl_usd
    session.save(update_fields=["status", "status_reason", "ended_at", "ending_value_usd"])
    return session


class StopRequestWatcher:
    """An event sink that turns a stored stop request into the loop's stop signal."""

    def __init__(self, session_id: uuid.UUID, stop: threading.Event) -> None:
        self.session_id = session_id
        self.stop = stop

    def publish(self, result: TickResult) -> None:
        if PaperTradingSession.objects.filter(pk=self.session_id, stop_requested=True).exists():
            self.stop.set()


class DebugQueryLogReset:
    """An event sink that forgets the SQL Django's DEBUG mode (the development default) records.

    Django keeps the last 9,000 statements of each connection, params included, and clears
    them only when a web request starts; a bot thread serves none, so without this each running
    bot held tens of MB of old SQL text. Clears this thread's connections only, the loop's own.
    """

    def publish(self, result: TickResult) -> None:
        reset_queries()


def announce_session_end(session: PaperTradingSession) -> None:
    """Tell the account's sockets, and the alert channels if it FAILED, how a session ended."""
    publish_session_status(session, session.status.lower())
    alert_if_failed(session)


def run_session(
    session: PaperTradingSession,
    stop: threading.Event,
    *,
    runner: str,
    runtime_minutes: float | None = None,
    max_ticks: int | None = None,
    log: logging.Logger = logger,
    mempool: EventSource | None = None,
    both_lanes: bool = False,
) -> RunOutcome:
    """Run a session to its end on this process, with a heartbeat; always close the session.

    Every runner goes through here: the terminal command, the web server's threads and Celery
    workers. A crash closes the session as FAILED and is raised again. With `mempool`, the
    Fast Lane reacts to its events instead of the loop ticking (`max_ticks` then counts events),
    or, with `both_lanes`, as well as the loop ticking (`max_ticks` counts ticks).
    Log records emitted meanwhile carry the session's and account's ids (`bot_session`).
    """
    with bot_session(session.session_id, session.account_id):
        claim_session(session, runner)
        publish_session_status(session, "restarted" if session.total_ticks else "started")
        outcome: RunOutcome | None = None
        error = ""
        try:
            loop = build_loop(
                session, stop, runtime_minutes=runtime_minutes, max_ticks=max_ticks, log=log
            )
            loop.sinks = [
                *loop.sinks,
                StopRequestWatcher(session.session_id, stop),
                DebugQueryLogReset(),
            ]
            with Heartbeat(session.session_id):
                if mempool is None:
                    outcome = loop.run()
                elif both_lanes:
                    # Resolved on the Fast Lane's thread, so it closes that thread's connection.
                    outcome = run_both_lanes(loop, mempool, on_feed_exit=lambda: connection.close())
                else:
                    outcome = run_fast_lane(loop, mempool)
        except BaseException as exc:
            error = f"bot crashed: {exc}"
            raise
        finally:
            finished = finish_session(session, outcome, error)
            announce_session_end(finished)
        return outcome


def session_summary(session: PaperTradingSession) -> dict[str, Any]:
    """The figures printed when a bot stops.

    One pass over the few columns it sums, streamed: loading every trade as a model instance
    took ~80 MB at the end of a 100,000-tick replay (12,000 trades).
    """
    account = session.account
    columns = ("side", "status", "net_pnl_usd", "swap_fee_usd", "gas_cost_usd", "realized_pnl_usd")
    closed = wins = 0
    fees = gas = realized = Decimal(0)
    for side, status, net, fee, gas_usd, pnl in session.trades.values_list(*columns).iterator(
        chunk_size=2000
    ):
        if side == "SELL" and status == "EXECUTED":
            closed += 1
            wins += net > 0
        fees += fee
        gas += gas_usd
        realized += pnl
    return {
        "session": str(session.session_id),
        "status": session.status,
        "price_source": session.price_source,
        "ticks": session.total_ticks,
        "trades": session.total_trades,
        "reverted": session.failed_trades,
        "closed_trades": closed,
        "win_rate_percent": round(Decimal(wins * 100) / closed, 2) if closed else Decimal(0),
        "fees_usd": fees,
        "gas_usd": gas,
        "realized_pnl_usd": realized,
        "account_value_usd": account.initial_balance_usd + account.total_pnl_usd,
        "account_pnl_usd": account.total_pnl_usd,
    }
