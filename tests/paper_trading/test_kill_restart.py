"""A bot killed with SIGKILL at any moment restarts with exactly the committed state.

The crash loop is bench/crash_loop.py (`python -m bench.crash_loop` kills 100 times over the
whole recording); here the same command kills a few times over nine days of it. A kill after the
last tick but before the session closes is too short a window to aim at from outside, so that
state is set up directly: it is what a kill there leaves behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from bench.crash_loop import CrashLoopResult, KillRecord
from paper_trading.engine.loop import EndReason
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services import bot_control
from paper_trading.services.bot import BotSettings, build_loop, start_session
from paper_trading.services.verification import verify_account

Status = PaperTradingSession.Status
KILLS = 6


@pytest.mark.own_database
@pytest.mark.slow
def test_sigkill_loop_ends_as_if_never_killed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.crash_loop",
            "--kills",
            str(KILLS),
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-10",
            "--database-url",
            f"sqlite:///{tmp_path / 'crash.sqlite3'}",
            "--results",
            str(results),
        ],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    document = json.loads((results / "crash-loop-latest.json").read_text())
    result = document["result"]
    context = f"seed {result['seed']}:\n{run.stdout}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, context
    assert document["ok"], context
    assert "FAIL" not in run.stdout, context

    kills = result["kills"]
    assert len(kills) == KILLS, context
    assert sum("after launch" in k["planned"] for k in kills) == 1, context
    assert all(k["ticks_at_kill"] >= k["ticks_before"] for k in kills)
    # Before the clean run the killed session was RUNNING with no bot, and verify said so.
    assert result["verify_before_final_exit"] == 1, context
    assert result["verify_before_final"]["sessions_left_running"] == 1, context
    assert result["final_resumed"], context
    verify = result["verify"]
    assert (verify["mismatches"], verify["duplicate_trades"], verify["sessions_left_running"]) == (
        0,
        0,
        0,
    ), context
    assert result["killed_sessions"] == [["COMPLETED", result["reference_ticks"]]], context
    assert result["reference_trades"] > 0
    assert result["trades_identical"], result["first_difference"]
    assert result["totals_identical"], context


def test_any_failed_check_fails_the_crash_loop() -> None:
    """The loop's exit code rests on these verdicts: each figure that is off must fail it."""

    def passing() -> CrashLoopResult:
        result = CrashLoopResult(seed=1, database="sqlite", replay_args=[], kills_planned=2)
        result.reference_ticks, result.reference_trades, result.killed_trades = 100, 9, 9
        result.kills = [KillRecord("tick 10", 0, 10, 2.0), KillRecord("0.1 s", 10, 10, 0.1)]
        result.active_before_final, result.verify_before_final_exit = 1, 1
        result.verify_before_final = {"sessions_left_running": 1}
        result.ticks_before_final, result.final_exit, result.final_resumed = 10, 0, True
        result.verify_exit = 0
        result.verify = {"mismatches": 0, "duplicate_trades": 0, "sessions_left_running": 0}
        result.killed_sessions = [("COMPLETED", 100)]
        result.active_sessions_after = 0
        result.trades_identical = result.totals_identical = True
        return result

    assert passing().ok
    assert "FAIL" not in "\n".join(passing().table())
    spoilers: dict[str, Any] = {
        "kills": [KillRecord("tick 10", 0, 10, 2.0)],
        "verify_before_final": {"sessions_left_running": 0},
        "final_resumed": False,
        "verify_exit": 1,
        "verify": {"mismatches": 0, "duplicate_trades": 1, "sessions_left_running": 0},
        "active_sessions_after": 1,
        "killed_sessions": [("FAILED", 40), ("COMPLETED", 60)],
        "trades_identical": False,
        "totals_identical": False,
        "errors": ["the bot ended (exit 1) before its kill"],
    }
    for name, value in spoilers.items():
        result = passing()
        setattr(result, name, value)
        assert not result.ok, name
        assert "FAIL" in "\n".join(result.table()), name


@pytest.fixture
def closed_too_late(account: PaperTradingAccount) -> PaperTradingSession:
    """A session killed after committing its last tick, before it could close: still RUNNING."""
    nine_days = BotSettings(
        prices="replay",
        period_start=datetime(2026, 1, 1, tzinfo=UTC),
        period_end=datetime(2026, 1, 10, tzinfo=UTC),
    )
    session = start_session(account, nine_days)
    outcome = build_loop(session, threading.Event()).run()
    assert outcome.reason is EndReason.COMPLETED
    PaperTradingSession.objects.filter(pk=session.pk).update(
        worker_host="gone.example", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    session.refresh_from_db()
    assert session.status == Status.RUNNING
    assert session.total_trades > 0
    assert verify_account(account).sessions_left_running == [str(session.session_id)]
    return session


def _completed_with_its_trades(session: PaperTradingSession, trades: set[uuid.UUID]) -> None:
    ticks = session.total_ticks
    session.refresh_from_db()
    assert session.status == Status.COMPLETED, session.status_reason
    assert session.total_ticks == ticks
    assert set(session.trades.values_list("trade_id", flat=True)) == trades
    report = verify_account(session.account)
    assert report.ok, report.mismatches


@pytest.mark.django_db
def test_restart_after_a_kill_past_the_last_tick_completes_the_session(
    closed_too_late: PaperTradingSession, capsys: pytest.CaptureFixture[str]
) -> None:
    trades = set(closed_too_late.trades.values_list("trade_id", flat=True))
    account = closed_too_late.account
    call_command("run_paper_bot", "--account", account.name, "--prices", "replay", verbosity=0)
    assert f"Resuming session {closed_too_late.session_id}" in capsys.readouterr().out
    _completed_with_its_trades(closed_too_late, trades)
    assert account.sessions.count() == 1


@pytest.mark.django_db(transaction=True)
def test_reaper_completes_a_background_bot_killed_past_its_last_tick(
    closed_too_late: PaperTradingSession,
) -> None:
    trades = set(closed_too_late.trades.values_list("trade_id", flat=True))
    PaperTradingSession.objects.filter(pk=closed_too_late.pk).update(
        runner=PaperTradingSession.Runner.EMBEDDED
    )
    (done,) = bot_control.reap_dead_bots()
    assert done.startswith(f"{closed_too_late.session_id}: resumed")
    assert bot_control.wait_for(closed_too_late.session_id, timeout=60)
    _completed_with_its_trades(closed_too_late, trades)
