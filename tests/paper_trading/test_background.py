"""Background running without services: the lease, heartbeats, the reaper, periodic jobs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from paper_trading import tasks
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services import bot_control
from paper_trading.services.bot import BotAlreadyRunningError, BotSettings, start_session
from paper_trading.services.embedded import EmbeddedScheduler, Job
from paper_trading.services.heartbeat import Heartbeat
from paper_trading.services.verification import verify_account

Status = PaperTradingSession.Status


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_make_exactly_one_bot(account: PaperTradingAccount) -> None:
    barrier = threading.Barrier(2)
    results: list[str] = []

    def start() -> None:
        barrier.wait()
        try:
            start_session(account, BotSettings(session_name="racer"))
            results.append("started")
        except BotAlreadyRunningError:
            results.append("refused")
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "started"]
    assert account.sessions.filter(status__in=[Status.RUNNING, Status.PAUSED]).count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_active_session(account: PaperTradingAccount) -> None:
    from django.db import IntegrityError, transaction

    PaperTradingSession.objects.create(account=account, price_source="replay")
    with pytest.raises(IntegrityError), transaction.atomic():
        PaperTradingSession.objects.create(account=account, price_source="replay")


@pytest.mark.django_db(transaction=True)
def test_heartbeat_updates_while_a_bot_runs(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings())
    PaperTradingSession.objects.filter(pk=session.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    with Heartbeat(session.session_id, interval=0.05):
        threading.Event().wait(0.3)
    session.refresh_from_db()
    assert session.heartbeat_at is not None
    assert timezone.now() - session.heartbeat_at < timedelta(seconds=5)


def _silence(session: PaperTradingSession, runner: str) -> None:
    PaperTradingSession.objects.filter(pk=session.pk).update(
        worker_host="elsewhere", heartbeat_at=timezone.now() - timedelta(hours=1), runner=runner
    )


@pytest.mark.django_db(transaction=True)
def test_reaper_resumes_a_dead_embedded_bot_then_gives_up(
    account: PaperTradingAccount, settings: Any
) -> None:
    settings.MAX_BOT_RESUMES = 1
    session = start_session(account, BotSettings(speed=None))
    _silence(session, PaperTradingSession.Runner.EMBEDDED)
    (done,) = bot_control.reap_dead_bots()
    assert done.startswith(f"{session.session_id}: resumed (runner silent since ")
    session.refresh_from_db()
    assert session.resume_count == 1
    # The resumed bot runs in a thread of this process; stop it and let it close the session.
    bot_control.request_stop(session.session_id, "test")
    assert bot_control.wait_for(session.session_id, timeout=60)
    session.refresh_from_db()
    assert session.status == Status.STOPPED
    assert verify_account(account).ok

    second = start_session(account, BotSettings())
    PaperTradingSession.objects.filter(pk=second.pk).update(resume_count=1)
    _silence(second, PaperTradingSession.Runner.EMBEDDED)
    assert bot_control.reap_dead_bots() == [f"{second.session_id}: marked FAILED"]
    second.refresh_from_db()
    assert second.status == Status.FAILED
    assert "runner stopped" in second.status_reason


@pytest.mark.django_db
def test_reaper_closes_a_dead_terminal_bot_and_leaves_live_ones(
    account: PaperTradingAccount,
) -> None:
    session = start_session(account, BotSettings())
    assert bot_control.reap_dead_bots() == []  # this process is alive
    _silence(session, PaperTradingSession.Runner.FOREGROUND)
    assert bot_control.reap_dead_bots() == [f"{session.session_id}: marked FAILED"]


@pytest.mark.django_db
def test_cleanup_keeps_the_ledger_and_drops_old_thoughts(account: PaperTradingAccount) -> None:
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--prices",
        "replay",
        "--max-ticks",
        "120",
        "--intel",
        "9",
        verbosity=0,
    )
    session = account.sessions.get()
    trades = PaperTrade.objects.count()
    assert PaperAIThoughtLog.objects.exists()
    assert tasks.cleanup_old_sessions(retention_days=30) == {
        "thoughts": 0,
        "metrics": 0,
        "sessions": 0,
    }
    PaperTradingSession.objects.filter(pk=session.pk).update(
        ended_at=timezone.now() - timedelta(days=31)
    )
    result = tasks.cleanup_old_sessions(retention_days=30)
    assert result["thoughts"] > 0
    assert result["sessions"] == 1
    assert not PaperAIThoughtLog.objects.exists()
    assert PaperTrade.objects.count() == trades
    assert verify_account(account).ok


@pytest.mark.django_db
def test_status_and_stop_tasks(account: PaperTradingAccount) -> None:
    assert tasks.get_bot_status(str(account.account_id))["running"] is False
    session = start_session(account, BotSettings())
    status = tasks.get_bot_status(str(account.account_id))
    assert status["running"] is True
    assert status["session"] == str(session.session_id)
    assert tasks.stop_paper_trading_bot(str(session.session_id), "from a task")["stop_requested"]
    session.refresh_from_db()
    assert session.stop_requested
    assert session.stop_reason == "from a task"
    skipped = tasks.run_paper_trading_bot("00000000-0000-0000-0000-000000000000")
    assert skipped["skipped"] == "session is not active"


@pytest.mark.django_db
def test_position_revaluation_task_reports_a_feed_outage(account: PaperTradingAccount) -> None:
    assert tasks.update_all_position_prices.apply().get() == {"updated": 0, "failed": []}


def test_embedded_scheduler_runs_due_jobs_and_survives_failures() -> None:
    now = [0.0]
    calls: list[str] = []

    def boom() -> None:
        calls.append("boom")
        raise RuntimeError("job failed")

    scheduler = EmbeddedScheduler(
        [Job("a", 10, lambda: calls.append("a")), Job("b", 30, boom)], clock=lambda: now[0]
    )
    assert scheduler.run_due() == ["a", "b"]
    now[0] = 10
    assert scheduler.run_due() == ["a"]
    now[0] = 30
    assert scheduler.run_due() == ["a", "b"]
    assert calls == ["a", "boom", "a", "a", "boom"]
    scheduler.start()
    scheduler.stop()


@pytest.mark.django_db
def test_background_flag_needs_a_broker(account: PaperTradingAccount) -> None:
    with pytest.raises(CommandError, match="--background needs a Celery broker"):
        call_command("run_paper_bot", "--account", account.name, "--background")
