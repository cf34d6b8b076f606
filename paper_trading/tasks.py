"""Celery tasks (scaled mode). Each is a thin wrapper over a service the embedded mode also uses."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

# The configured app (broker, queues) as the current one, so the tasks below are sent where the
# workers listen: the project package no longer loads it for every process.
import dexproject.celery  # noqa: F401
from paper_trading.engine.prices.feed import PriceUnavailableError
from paper_trading.models import PaperAIThoughtLog, PaperPerformanceMetrics, PaperTradingSession
from paper_trading.services import bot_control
from paper_trading.services.bot import ACTIVE_STATUSES, BotAlreadyRunningError, run_session
from paper_trading.services.prices import update_all_position_prices as revalue_positions

logger = logging.getLogger("paper_trading.tasks")
JOBS_QUEUE = "paper_trading_jobs"  # settings.CELERY_JOBS_QUEUE; decorators need it at import
#: A bot task may run for days; the limit only stops one that would run forever.
BOT_TIME_LIMIT_SECONDS = 14 * 24 * 3600


@shared_task(
    name="paper_trading.tasks.run_paper_trading_bot",
    queue="paper_trading",
    time_limit=BOT_TIME_LIMIT_SECONDS,
    soft_time_limit=BOT_TIME_LIMIT_SECONDS - 60,
)
def run_paper_trading_bot(
    session_id: str, runtime_minutes: float | None = None, resume_count: int | None = None
) -> dict[str, Any]:
    """Run a session's bot on this worker until it ends or is asked to stop (not retried:
    the reaper resumes a bot whose worker died, from its last committed tick)."""
    session = PaperTradingSession.objects.filter(pk=session_id).first()
    if session is None or session.status not in ACTIVE_STATUSES:
        return {"session": session_id, "skipped": "session is not active"}
    if resume_count is not None and session.resume_count != resume_count:
        # A later resume was sent meanwhile: that task runs the bot, not this stale one.
        return {"session": session_id, "skipped": "superseded by a later resume"}
    try:
        outcome = run_session(
            session,
            threading.Event(),
            runner=PaperTradingSession.Runner.CELERY,
            runtime_minutes=runtime_minutes,
        )
    except BotAlreadyRunningError as exc:
        return {"session": session_id, "skipped": str(exc)}
    return {"session": session_id, "ticks": outcome.ticks, "end": outcome.reason.value}


@shared_task(name="paper_trading.tasks.stop_paper_trading_bot", queue=JOBS_QUEUE)
def stop_paper_trading_bot(session_id: str, reason: str = "stopped") -> dict[str, Any]:
    """Cooperative: the bot sees the request after its current tick."""
    bot_control.request_stop(uuid.UUID(session_id), reason)
    return {"session": session_id, "stop_requested": True}


@shared_task(name="paper_trading.tasks.get_bot_status", queue=JOBS_QUEUE)
def get_bot_status(account_id: str) -> dict[str, Any]:
    session = (
        PaperTradingSession.objects.filter(account_id=uuid.UUID(account_id))
        .order_by("-started_at")
        .first()
    )
    if session is None:
        return {"account": account_id, "running": False, "session": None}
    return {
        "account": account_id,
        "running": session.status in ACTIVE_STATUSES,
        "session": str(session.session_id),
        "status": session.status,
        "status_reason": session.status_reason,
        "price_source": session.price_source,
        "last_tick_at": session.last_tick_at.isoformat() if session.last_tick_at else None,
        "tripped_breakers": session.tripped_breakers,
        "total_trades": session.total_trades,
    }


@shared_task(
    name="paper_trading.tasks.update_all_position_prices",
    queue=JOBS_QUEUE,
    bind=True,
    max_retries=3,
    time_limit=120,
)
def update_all_position_prices(self: Any) -> dict[str, Any]:
    """Every 60 s: revalue open live positions from one bulk fetch; retried when prices fail."""
    report = revalue_positions()
    if report.problem:
        try:
            raise self.retry(exc=PriceUnavailableError(report.problem), countdown=15)
        except PriceUnavailableError:
            return {"updated": 0, "problem": report.problem}
    return {"updated": report.updated, "failed": report.failed}


@shared_task(name="paper_trading.tasks.reap_dead_bots", queue=JOBS_QUEUE, time_limit=120)
def reap_dead_bots() -> list[str]:
    return bot_control.reap_dead_bots()


@shared_task(name="paper_trading.tasks.cleanup_old_sessions", queue=JOBS_QUEUE)
def cleanup_old_sessions(retention_days: int | None = None) -> dict[str, int]:
    return cleanup_sessions(retention_days)


def cleanup_sessions(retention_days: int | None = None) -> dict[str, int]:
    """Delete the thoughts and metrics of sessions that ended before the retention window.

    Trades stay: the ledger must keep reconciling, and sessions stay so trades keep their link.
    """
    days = settings.SESSION_RETENTION_DAYS if retention_days is None else retention_days
    cutoff = timezone.now() - timedelta(days=days)
    old = PaperTradingSession.objects.filter(ended_at__lt=cutoff).exclude(
        status__in=ACTIVE_STATUSES
    )
    thoughts, _ = PaperAIThoughtLog.objects.filter(session__in=old).delete()
    metrics, _ = PaperPerformanceMetrics.objects.filter(session__in=old).delete()
    old.filter(pruned_at=None).update(pruned_at=timezone.now())
    logger.info(
        "[CLEANUP] deleted %d thoughts and %d metrics rows older than %d days",
        thoughts,
        metrics,
        days,
    )
    return {"thoughts": thoughts, "metrics": metrics, "sessions": old.count()}
