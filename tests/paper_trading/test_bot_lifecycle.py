"""Sessions: start, refuse a second bot, resume an interrupted one, stop, configure live."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from paper_trading.engine.events import TickResult
from paper_trading.engine.loop import EndReason
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services.accounts import reset_account
from paper_trading.services.bot import (
    BotAlreadyRunningError,
    BotSettings,
    build_loop,
    finish_session,
    start_session,
    worker_alive,
)
from paper_trading.services.verification import verify_account
from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.paper_trading.live_support import point_at, price_all

pytestmark = pytest.mark.django_db
Status = PaperTradingSession.Status


# Committed for real, tick by tick, as a bot runs: inside one test transaction the 10,000 ticks
# would be savepoints, which PostgreSQL handles slowly past a few dozen (minutes, not seconds).
@pytest.mark.django_db(transaction=True)
def test_synthetic_10000_ticks_reconcile(account: PaperTradingAccount) -> None:
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--prices",
        "synthetic",
        "--chain",
        "base-sepolia",
        "--max-ticks",
        "10000",
        "--intel",
        "8",
        verbosity=0,
    )
    session = account.sessions.get()
    assert session.total_ticks == 10_000
    assert session.status == Status.STOPPED
    assert session.total_trades > 20
    report = verify_account(account)
    assert report.ok, report.mismatches


def test_bad_options_give_clear_errors_before_asking_coingecko(
    account: PaperTradingAccount,
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    # `--prices auto` (the default) asks CoinGecko which source to use: not for a bad option.
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    for level in ("11", "0", "five"):
        with pytest.raises(
            CommandError,
            match=f"--intel: must be a whole number from 1 to 10, not '{level}'",
        ):
            call_command("run_paper_bot", "--account", account.name, "--intel", level)
    with pytest.raises(CommandError, match="--intel: --param level=3 sets the level too"):
        call_command(
            "run_paper_bot", "--account", account.name, "--intel", "5", "--param", "level=3"
        )
    with pytest.raises(CommandError, match="unknown chain 'mars'"):
        call_command("run_paper_bot", "--account", account.name, "--chain", "mars")
    for speed in ("fast", "-2", "0.000001", "1e30", "NaN", "Infinity"):
        with pytest.raises(CommandError, match=f"--speed must be a number from 1 .*got '{speed}'"):
            call_command("run_paper_bot", "--account", account.name, "--speed", speed)
    with pytest.raises(CommandError, match="--both-lanes: add --fast-lane"):
        call_command("run_paper_bot", "--account", account.name, "--both-lanes")
    # 0 and NaN minutes ran without a limit (the whole recording); a negative one, not at all.
    for minutes in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(
            CommandError, match=f"--runtime-minutes: must be a positive .*'{minutes}'"
        ):
            call_command("run_paper_bot", "--account", account.name, "--runtime-minutes", minutes)
    for ticks in ("0", "-5", "1.5"):
        with pytest.raises(
            CommandError, match=f"--max-ticks: must be a whole number from 1, not '{ticks}'"
        ):
            call_command("run_paper_bot", "--account", account.name, "--max-ticks", ticks)
    assert not account.sessions.exists()
    assert fake_coingecko.requests == []


def test_a_replay_without_recording_is_refused_and_leaves_no_session(
    account: PaperTradingAccount, tmp_path: Path
) -> None:
    """--bar or --data naming no recording crashed with a traceback and left a RUNNING session
    behind, which every later run resumed into the same crash."""
    replay = ("run_paper_bot", "--account", account.name, "--prices", "replay", "--speed", "max")
    with pytest.raises(CommandError, match=r"--bar/--data: no recorded price files \*_USDT-7m"):
        call_command(*replay, "--bar", "7m", verbosity=0)
    with pytest.raises(CommandError, match="--bar/--data: unsupported candle interval 'abc'"):
        call_command(*replay, "--bar", "abc", verbosity=0)
    with pytest.raises(CommandError, match=f"--bar/--data: no recorded price files .* {tmp_path}"):
        call_command(*replay, "--data", str(tmp_path), verbosity=0)
    assert not account.sessions.exists()
    call_command(*replay, "--max-ticks", "2", verbosity=0)
    assert account.sessions.get().total_ticks == 2


def test_a_second_bot_on_the_same_account_is_refused(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings())
    assert session.worker_pid == os.getpid()
    assert worker_alive(session)
    with pytest.raises(BotAlreadyRunningError, match="already running"):
        start_session(account, BotSettings())
    with pytest.raises(CommandError, match="already running"):
        call_command("run_paper_bot", "--account", account.name, verbosity=0)


def _dead(session: PaperTradingSession) -> None:
    """Make the session look like its process was killed on another machine long ago."""
    PaperTradingSession.objects.filter(pk=session.pk).update(
        worker_host="gone.example", heartbeat_at=timezone.now() - timedelta(hours=1)
    )


def test_an_interrupted_session_is_resumed(account: PaperTradingAccount) -> None:
    first = start_session(account, BotSettings())
    outcome = build_loop(first, threading.Event(), max_ticks=30).run()
    assert outcome.reason is EndReason.TICK_LIMIT
    _dead(first)  # killed without finishing the session
    again = start_session(account, BotSettings())
    assert again.session_id == first.session_id
    loop = build_loop(again, threading.Event(), max_ticks=5)
    loop.run()
    again.refresh_from_db()
    assert again.total_ticks == 35


def test_new_session_closes_the_interrupted_one_as_failed(account: PaperTradingAccount) -> None:
    first = start_session(account, BotSettings())
    build_loop(first, threading.Event(), max_ticks=10).run()
    _dead(first)
    second = start_session(account, BotSettings(), resume=False)
    first.refresh_from_db()
    assert second.session_id != first.session_id
    assert first.status == Status.FAILED
    assert "ended without closing" in first.status_reason
    # The new session's simulated clock continues after the old one's last tick.
    loop = build_loop(second, threading.Event(), max_ticks=1)
    assert loop.schedule.resume_after == first.last_tick_at  # type: ignore[attr-defined]


def test_stop_finishes_the_tick_and_marks_the_session_stopped(
    account: PaperTradingAccount,
) -> None:
    session = start_session(account, BotSettings())
    stop = threading.Event()
    loop = build_loop(session, stop)

    class StopAfterThree:
        def publish(self, result: TickResult) -> None:
            if result.tick_number == 3:
                stop.set()

    loop.sinks = [*loop.sinks, StopAfterThree()]
    outcome = loop.run()
    assert outcome.reason is EndReason.STOPPED
    assert outcome.ticks == 3
    finish_session(session, outcome)
    session.refresh_from_db()
    assert session.status == Status.STOPPED
    assert session.ended_at is not None
    assert session.total_ticks == 3
    assert session.ending_value_usd == account.initial_balance_usd + (
        PaperTradingAccount.objects.get(pk=account.pk).total_pnl_usd
    )


def test_a_crash_marks_the_session_failed(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings())
    finish_session(session, None, "bot crashed: boom")
    session.refresh_from_db()
    assert session.status == Status.FAILED
    assert session.status_reason == "bot crashed: boom"


def test_configuration_change_reaches_the_bot_at_the_next_tick(
    account: PaperTradingAccount,
) -> None:
    session = start_session(account, BotSettings())
    loop = build_loop(session, threading.Event(), max_ticks=6)

    class NarrowAfterTwo:
        def publish(self, result: TickResult) -> None:
            if result.tick_number == 2:
                PaperStrategyConfiguration.objects.filter(account=account).update(
                    allowed_tokens=["WETH"]
                )

    loop.sinks = [*loop.sinks, NarrowAfterTwo()]
    loop.run()
    thoughts = PaperAIThoughtLog.objects.filter(session=session).exclude(token_symbol="")
    early = thoughts.filter(created_at__lte=session_tick_time(session, 2))
    late = thoughts.filter(created_at__gt=session_tick_time(session, 2))
    assert set(early.values_list("token_symbol", flat=True)) == {
        "WETH",
        "WBTC",
        "UNI",
        "AAVE",
        "LINK",
    }
    assert set(late.values_list("token_symbol", flat=True)) == {"WETH"}
    assert late.count() == 4


def session_tick_time(session: PaperTradingSession, tick: int) -> object:
    times = sorted(
        set(PaperAIThoughtLog.objects.filter(session=session).values_list("created_at", flat=True))
    )
    return times[tick - 1]


def test_reset_account_restores_the_balance(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings(intel_level=10))
    build_loop(session, threading.Event(), max_ticks=150).run()
    with pytest.raises(ValueError, match="stop the running bot"):
        reset_account(account)
    finish_session(session, None, "test")
    assert PaperTrade.objects.filter(account=account).exists()
    reset_account(account)
    account.refresh_from_db()
    assert account.current_balance_usd == account.initial_balance_usd == Decimal(10_000)
    assert not account.trades.exists()
    assert not account.sessions.exists()
    assert verify_account(account).ok
