"""Run a paper-trading bot in the foreground until the data ends, time runs out or Ctrl+C."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.checks import Tags
from django.core.checks.registry import registry
from django.core.management.base import BaseCommand, CommandError, CommandParser

from paper_trading.engine.chains import Chain, get_chain
from paper_trading.engine.mempool.sources import EventSource, RecordedEventSource, ws_url_for
from paper_trading.engine.prices.feed import PriceUnavailableError
from paper_trading.engine.schedule import MAX_SPEED, MIN_SPEED, SPEED_RANGE_TEXT
from paper_trading.engine.strategies.catalog import parse_params
from paper_trading.engine.strategies.contract import StrategyContractError
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.management.arguments import (
    intel_level,
    refuse_two_levels,
    utc_datetime,
    whole_number,
)
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import (
    BotAlreadyRunningError,
    BotSettings,
    PositionsOnAnotherChainError,
    ReplayExhaustedError,
    check_startable,
    finish_session,
    resumable_price_source,
    run_session,
    session_summary,
    start_session,
)
from paper_trading.services.bot_control import dispatch
from paper_trading.services.demo import DEMO_ACCOUNT, DEMO_USERNAME, get_or_create_account
from paper_trading.services.prices import choose_price_source


def parse_speed(value: str) -> Decimal | None:
    """The --speed option: None for "max", else a multiplier in the range bots accept."""
    if value.strip().lower() == "max":
        return None
    try:
        speed = Decimal(value)
    except InvalidOperation:
        speed = Decimal("NaN")
    if not (speed.is_finite() and MIN_SPEED <= speed <= MAX_SPEED):
        raise CommandError(f"--speed must be {SPEED_RANGE_TEXT}, got {value!r}")
    return speed


def positive_minutes(value: str) -> float:
    """--runtime-minutes: 0 and NaN meant no limit (a whole replay), a negative one no run."""
    try:
        minutes = float(value)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes, not {value!r}")
    return minutes


class Command(BaseCommand):
    help = "Run a paper-trading bot on recorded real prices (replay) or synthetic test prices."
    #: The system checks of what a bot uses (models, database, caches, settings), not those of the
    #: web side (URLs, templates, admin): they import the whole web app (the API views, every
    #: template tag library, the REST framework: ~25 MB) into a process that serves no request.
    requires_system_checks = sorted(
        set(registry.tags_available()) - {Tags.urls, Tags.templates, Tags.admin}
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", default=DEMO_ACCOUNT, help="account name or id")
        parser.add_argument("--user", default=DEMO_USERNAME, help="owner of a new account")
        parser.add_argument(
            "--strategy",
            default=IntelSliderEngine.name,
            help="built-in name (intel_slider, ma_crossover, rsi_reversion, exit_all), "
            "package.module.Class or path/file.py:Class",
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a strategy parameter (repeatable), e.g. --param fast_period=12",
        )
        parser.add_argument(
            "--intel",
            type=intel_level,
            default=None,
            help="intel_slider's level, 1 (cautious)-10 (5)",
        )
        parser.add_argument("--chain", default="base", help="chain slug or id (base, 8453, ...)")
        parser.add_argument(
            "--prices",
            choices=["auto", "live", "replay", "synthetic"],
            default="auto",
            help="auto: live when CoinGecko answers at start, else replay (decided once per "
            "session); live: CoinGecko; replay: recorded real prices; synthetic: tests only",
        )
        parser.add_argument("--bar", default="1h", help="replay candle interval (1h, 15m, ...)")
        parser.add_argument(
            "--data", default="", help="replay: folder of candle files (default: shipped data)"
        )
        parser.add_argument(
            "--from", dest="period_start", type=utc_datetime, help="replay from (UTC)"
        )
        parser.add_argument("--to", dest="period_end", type=utc_datetime, help="replay until (UTC)")
        parser.add_argument(
            "--speed", default="max", help="replay clock multiplier (3600 = 1 h per s) or max"
        )
        parser.add_argument(
            "--tick-interval",
            type=int,
            default=None,
            help="live: seconds between ticks (default 30); synthetic: simulated seconds (3600)",
        )
        parser.add_argument("--session-name", default="")
        parser.add_argument("--runtime-minutes", type=positive_minutes, default=None)
        parser.add_argument("--max-ticks", type=whole_number(1), default=None)
        parser.add_argument("--seed", type=int, default=0, help="simulator randomness seed")
        parser.add_argument(
            "--background",
            action="store_true",
            help="queue the bot on a Celery worker (needs CELERY_BROKER_URL or REDIS_URL)",
        )
        parser.add_argument(
            "--fast-lane",
            action="store_true",
            help="react to mempool events (Fast Lane) instead of ticking the strategy (or with it: "
            "--both-lanes): from the "
            "node at WS_RPC_URL_<chain id> (needs --prices live), or from --mempool-events",
        )
        parser.add_argument(
            "--mempool-events",
            type=Path,
            default=None,
            metavar="FILE.jsonl",
            help="Fast Lane: replay recorded mempool events from this file (implies --fast-lane)",
        )
        parser.add_argument(
            "--both-lanes",
            action="store_true",
            help="with --fast-lane: keep ticking the strategy too (the Smart Lane), on one engine; "
            "--max-ticks then counts ticks",
        )
        parser.add_argument(
            "--new-session",
            action="store_true",
            help="do not resume an interrupted session; start a new one",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["background"] and django_settings.BACKGROUND_MODE != "celery":
            raise CommandError(
                "--background needs a Celery broker: set REDIS_URL (or CELERY_BROKER_URL) and "
                "start a worker (celery -A dexproject worker -Q paper_trading)"
            )
        account = self._account(options["account"], options["user"])
        intel = options["intel"]
        if intel is not None and options["strategy"] != IntelSliderEngine.name:
            raise CommandError(
                f"--intel sets intel_slider's level; {options['strategy']} takes --param instead"
            )
        try:
            params = parse_params(options["param"])
        except ValueError as exc:
            raise CommandError(f"--param: {exc}") from None
        refuse_two_levels(intel, params)
        try:
            chain = get_chain(options["chain"])
            settings = BotSettings(
                intel_level=5 if intel is None else intel,
                strategy=options["strategy"],
                strategy_params=params,
                chain_id=chain.chain_id,
                bar_interval=options["bar"],
                data_dir=options["data"],
                period_start=options["period_start"],
                period_end=options["period_end"],
                tick_interval_seconds=options["tick_interval"],
                speed=parse_speed(options["speed"]),
                session_name=options["session_name"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["both_lanes"] and not (options["fast_lane"] or options["mempool_events"]):
            raise CommandError("--both-lanes: add --fast-lane or --mempool-events FILE")
        # Every option is checked before `auto` asks CoinGecko, which can take seconds.
        requested = options["prices"]
        if requested == "auto":
            # An interrupted session resumes on its own prices; otherwise decide now, once.
            requested = resumable_price_source(account) or requested
        choice = choose_price_source(requested)
        settings = replace(settings, prices=choice.source, price_note=choice.note)
        mempool = None
        if options["fast_lane"] or options["mempool_events"]:
            mempool = _mempool_source(chain, options["mempool_events"], choice.source)
            if options["background"]:
                raise CommandError("--fast-lane runs in the foreground only; drop --background")
        try:
            session = start_session(account, settings, resume=not options["new_session"])
        except BotAlreadyRunningError as exc:
            raise CommandError(str(exc)) from None
        except PositionsOnAnotherChainError as exc:
            raise CommandError(f"--chain: {exc}") from None
        try:
            check_startable(session)
        except ReplayExhaustedError as exc:
            _abandon(session, exc)
            raise CommandError(str(exc)) from None
        except StrategyContractError as exc:
            _abandon(session, exc)
            raise CommandError(f"--strategy: {exc}") from None
        except (PriceUnavailableError, ValueError) as exc:
            # No recording for --bar in --data, or an unreadable one: it crashed with a traceback
            # and left the session RUNNING, which the next run resumed into the same crash.
            _abandon(session, exc)
            raise CommandError(f"--bar/--data: {exc}") from None
        resumed = session.total_ticks > 0
        self.stdout.write(
            f"{'Resuming' if resumed else 'Starting'} session {session.session_id} on "
            f"{account.name!r}: {chain.name}, {_strategy_label(session)}, "
            f"prices {session.price_source.upper()}"
            + (f" (from tick {session.total_ticks})" if resumed else "")
        )
        if session.price_source_note:
            self.stdout.write(session.price_source_note)
        if session.price_source == "replay":
            self.stdout.write(
                "REPLAY: recorded real market prices, not live; the clock is simulated."
            )
        if mempool is not None:
            also = " alongside the strategy's ticks" if options["both_lanes"] else ""
            self.stdout.write(f"FAST LANE: reacting to {mempool.name} mempool events{also}.")
        if options["background"]:
            dispatch(session, options["runtime_minutes"])
            self.stdout.write(
                f"Queued for a Celery worker (queue {django_settings.CELERY_TASK_DEFAULT_QUEUE}). "
                f"Follow it with the API's bot/status/ or the admin; stop it with bot/stop/."
            )
            return
        stop = threading.Event()
        self._install_signal_handlers(stop)
        _configure_logging(options["verbosity"])
        try:
            run_session(
                session,
                stop,
                runner=PaperTradingSession.Runner.FOREGROUND,
                runtime_minutes=options["runtime_minutes"],
                max_ticks=options["max_ticks"],
                mempool=mempool,
                both_lanes=options["both_lanes"],
            )
        except StrategyContractError as exc:  # decide() raised: the session is closed FAILED
            raise CommandError(f"--strategy: {exc}; session {session.session_id} FAILED") from exc
        session.refresh_from_db()
        self._print_summary(session_summary(session))

    def _account(self, ref: str, username: str) -> PaperTradingAccount:
        account = PaperTradingAccount.objects.filter(name=ref).first()
        if account is None and len(ref) == 36:
            account = PaperTradingAccount.objects.filter(pk=ref).first()
        if account is not None:
            return account
        user, _ = get_user_model().objects.get_or_create(username=username)
        return get_or_create_account(user, ref)

    def _install_signal_handlers(self, stop: threading.Event) -> None:
        def request_stop(signum: int, frame: FrameType | None) -> None:
            if stop.is_set():
                return
            stop.set()
            sys.stderr.write("\nStopping after the current tick...\n")

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)

    def _print_summary(self, s: dict[str, Any]) -> None:
        w = self.stdout.write
        w(f"Session {s['session']} {s['status']} ({s['price_source']}), {s['ticks']} ticks")
        w(f"  trades        {s['trades']} ({s['reverted']} reverted swaps)")
        w(f"  win rate      {s['win_rate_percent']}% of {s['closed_trades']} closing trades")
        w(f"  realized P&L  ${s['realized_pnl_usd']:,.2f} (before fees and gas)")
        w(f"  swap fees     ${s['fees_usd']:,.2f}")
        w(f"  gas           ${s['gas_usd']:,.4f}")
        w(f"  account value ${s['account_value_usd']:,.2f} (P&L ${s['account_pnl_usd']:,.2f})")


def _abandon(session: PaperTradingSession, why: Exception) -> None:
    """A session refused before this run's first tick: gone if it never ticked, else FAILED
    (a resumed session's trades are the ledger's: deleting it would delete them)."""
    if session.total_ticks == 0:
        session.delete()
    else:
        finish_session(session, None, f"refused at restart: {why}")


def _strategy_label(session: PaperTradingSession) -> str:
    if session.strategy_name == IntelSliderEngine.name:
        return f"Intel {session.intel_level}"
    params = ", ".join(f"{k}={v}" for k, v in session.strategy_params.items())
    return f"strategy {session.strategy_name} ({params})"


def _mempool_source(chain: Chain, events: Path | None, prices: str) -> EventSource:
    """The recorded file when given, else the chain's WebSocket node (on live prices only)."""
    if events is not None:
        try:
            return RecordedEventSource(events)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--mempool-events: {exc}") from None
    url = ws_url_for(chain.chain_id, os.environ)
    if url is None:
        raise CommandError(
            f"--fast-lane needs WS_RPC_URL_{chain.chain_id} (a WebSocket JSON-RPC node for "
            f"{chain.name}) or --mempool-events FILE"
        )
    if prices != PaperTradingSession.PriceSource.LIVE:
        raise CommandError(
            "live mempool events happen now: run them with --prices live "
            "(or replay recorded events with --mempool-events)"
        )
    # Here, not at the top: the node client and its ABI decoding are only needed for a node.
    from paper_trading.engine.mempool.websocket import WebSocketEventSource

    try:
        return WebSocketEventSource(url, chain)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _configure_logging(verbosity: int) -> None:
    level = logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity >= 1 else logging.WARNING
    logging.getLogger("paper_trading").setLevel(level)
