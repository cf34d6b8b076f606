"""Start and stop bots from the web: in-process threads for now, one per account.

A stop is a request stored on the session, so whichever process runs the bot sees it at its
next tick; the in-process runner also wakes its bot at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass

from django.db import close_old_connections, connection

from paper_trading.engine.events import TickResult
from paper_trading.engine.loop import RunOutcome
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import (
    ACTIVE_STATUSES,
    BotSettings,
    ReplayExhaustedError,
    build_loop,
    finish_session,
    start_session,
)

logger = logging.getLogger("paper_trading.bot")


class NoBotRunningError(Exception):
    pass


@dataclass
class _Running:
    thread: threading.Thread
    stop: threading.Event


_running: dict[uuid.UUID, _Running] = {}
_lock = threading.Lock()


class StopRequestWatcher:
    """An event sink that turns a stored stop request into the loop's stop signal."""

    def __init__(self, session_id: uuid.UUID, stop: threading.Event) -> None:
        self.session_id = session_id
        self.stop = stop

    def publish(self, result: TickResult) -> None:
        requested = PaperTradingSession.objects.filter(
            pk=self.session_id, stop_requested=True
        ).exists()
        if requested:
            self.stop.set()


def start_bot(
    account: PaperTradingAccount, settings: BotSettings, runtime_minutes: float | None = None
) -> PaperTradingSession:
    """Start a bot thread for the account (BotAlreadyRunningError if one is active)."""
    session = start_session(account, settings)
    stop = threading.Event()
    try:
        loop = build_loop(session, stop, runtime_minutes=runtime_minutes)
    except ReplayExhaustedError:
        session.delete()
        raise
    loop.sinks = [*loop.sinks, StopRequestWatcher(session.session_id, stop)]

    def run() -> None:
        outcome: RunOutcome | None = None
        error = ""
        try:
            outcome = loop.run()
        except Exception as exc:  # the thread must always close its session
            logger.exception("bot for session %s crashed", session.session_id)
            error = f"bot crashed: {exc}"
        finally:
            finish_session(session, outcome, error)
            with _lock:
                _running.pop(session.session_id, None)
            connection.close()

    thread = threading.Thread(target=run, name=f"bot-{session.session_id}", daemon=True)
    with _lock:
        _running[session.session_id] = _Running(thread, stop)
    close_old_connections()
    thread.start()
    return session


def stop_bot(account: PaperTradingAccount, reason: str) -> PaperTradingSession:
    """Ask the account's active bot to stop after its current tick."""
    session = (
        PaperTradingSession.objects.filter(account=account, status__in=ACTIVE_STATUSES)
        .order_by("-started_at")
        .first()
    )
    if session is None:
        raise NoBotRunningError(f"no bot is running on account {account.name!r}")
    PaperTradingSession.objects.filter(pk=session.pk).update(
        stop_requested=True, stop_reason=reason[:200]
    )
    with _lock:
        running = _running.get(session.session_id)
    if running is not None:
        running.stop.set()
    session.refresh_from_db()
    return session


def wait_for(session_id: uuid.UUID | str, timeout: float) -> bool:
    """Wait for an in-process bot to finish; True if it has."""
    with _lock:
        running = _running.get(uuid.UUID(str(session_id)))
    if running is None:
        return True
    running.thread.join(timeout)
    return not running.thread.is_alive()
