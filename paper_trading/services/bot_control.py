"""Start and stop bots from the web or the command line, in either deployment mode.

Embedded mode (no broker): each bot is a thread of the web server process. Celery mode: the
bot is a task on the `paper_trading` queue. Either way the session row is the lease (one
active session per account) and a stop is a request stored on it, seen at the next tick.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import (
    ACTIVE_STATUSES,
    BotSettings,
    ReplayExhaustedError,
    announce_session_end,
    check_startable,
    run_session,
    start_session,
    worker_alive,
)

logger = logging.getLogger("paper_trading.bot")
Runner = PaperTradingSession.Runner


class NoBotRunningError(Exception):
    pass


@dataclass
class _Thread:
    thread: threading.Thread
    stop: threading.Event


_threads: dict[uuid.UUID, _Thread] = {}
_lock = threading.Lock()


def start_bot(
    account: PaperTradingAccount, bot_settings: BotSettings, runtime_minutes: float | None = None
) -> PaperTradingSession:
    """Open (or resume) the account's session and hand it to a runner."""
    session = start_session(account, bot_settings)
    try:
        check_startable(session)
    except ReplayExhaustedError:
        session.delete()
        raise
    dispatch(session, runtime_minutes)
    return session


def dispatch(session: PaperTradingSession, runtime_minutes: float | None = None) -> None:
    if settings.BACKGROUND_MODE == "celery":
        from paper_trading.tasks import run_paper_trading_bot

        PaperTradingSession.objects.filter(pk=session.pk).update(runner=Runner.CELERY)
        run_paper_trading_bot.apply_async(
            args=[str(session.session_id)],
            kwargs={"runtime_minutes": runtime_minutes, "resume_count": session.resume_count},
            queue=settings.CELERY_TASK_DEFAULT_QUEUE,
        )
        return
    _start_thread(session, runtime_minutes)


def _start_thread(session: PaperTradingSession, runtime_minutes: float | None) -> None:
    stop = threading.Event()

    def run() -> None:
        try:
            run_session(session, stop, runner=Runner.EMBEDDED, runtime_minutes=runtime_minutes)
        except Exception:
            logger.exception("bot for session %s crashed", session.session_id)
        finally:
            with _lock:
                _threads.pop(session.session_id, None)
            connection.close()

    thread = threading.Thread(target=run, name=f"bot-{session.session_id}", daemon=True)
    with _lock:
        _threads[session.session_id] = _Thread(thread, stop)
    close_old_connections()
    thread.start()


def stop_bot(account: PaperTradingAccount, reason: str) -> PaperTradingSession:
    """Ask the account's active bot to stop after its current tick."""
    session = (
        PaperTradingSession.objects.filter(account=account, status__in=ACTIVE_STATUSES)
        .order_by("-started_at")
        .first()
    )
    if session is None:
        raise NoBotRunningError(f"no bot is running on account {account.name!r}")
    request_stop(session.session_id, reason)
    session.refresh_from_db()
    return session


def request_stop(session_id: uuid.UUID, reason: str) -> None:
    PaperTradingSession.objects.filter(pk=session_id).update(
        stop_requested=True, stop_reason=reason[:200]
    )
    with _lock:
        running = _threads.get(session_id)
    if running is not None:
        running.stop.set()


def stop_all_threads(reason: str, timeout: float = 30) -> None:
    """The server is shutting down: stop its bot threads after their current tick."""
    with _lock:
        running = dict(_threads)
    for session_id in running:
        request_stop(session_id, reason)
    for item in running.values():
        item.thread.join(timeout)


def wait_for(session_id: uuid.UUID | str, timeout: float) -> bool:
    """Wait for an in-process bot to finish; True if it has."""
    with _lock:
        running = _threads.get(uuid.UUID(str(session_id)))
    if running is None:
        return True
    running.thread.join(timeout)
    return not running.thread.is_alive()


def reap_dead_bots() -> list[str]:
    """Sessions whose runner died: resume them (background runners) or close them as FAILED.

    Returns what was done, one line a session. A foreground bot (a terminal) is not restarted
    behind its user's back: its session is closed, and running the command again continues the
    account where the ledger stands.
    """
    done: list[str] = []
    for session in PaperTradingSession.objects.filter(status__in=ACTIVE_STATUSES):
        if worker_alive(session):
            continue
        silent = session.heartbeat_at or session.started_at
        if session.runner != Runner.FOREGROUND and session.resume_count < settings.MAX_BOT_RESUMES:
            # One conditional UPDATE claims the resume: of several reapers that saw the same dead
            # runner (beat's runs pile up while no worker is there), only one dispatches. The
            # dead pid is forgotten so the fresh heartbeat covers the wait for the new runner;
            # with it, the next reaper would see the same dead pid and resume the bot again.
            claimed = PaperTradingSession.objects.filter(
                pk=session.pk,
                status__in=ACTIVE_STATUSES,
                resume_count=session.resume_count,
                worker_pid=session.worker_pid,
            ).update(
                resume_count=session.resume_count + 1, heartbeat_at=timezone.now(), worker_pid=None
            )
            if not claimed:
                continue
            session.refresh_from_db()
            dispatch(session)
            done.append(f"{session.session_id}: resumed (runner silent since {silent:%H:%M:%S})")
            continue
        PaperTradingSession.objects.filter(pk=session.pk).update(
            status=PaperTradingSession.Status.FAILED,
            status_reason=f"the bot's runner stopped (silent since {silent:%Y-%m-%d %H:%M:%S} UTC)",
            ended_at=timezone.now(),
        )
        session.refresh_from_db()
        announce_session_end(session)
        done.append(f"{session.session_id}: marked FAILED")
    for line in done:
        logger.warning("[BOT REAPER] %s", line)
    return done
