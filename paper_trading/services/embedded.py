"""Periodic jobs inside the web server when there is no Celery beat (the one-machine mode)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger("paper_trading.jobs")


@dataclass
class Job:
    name: str
    interval_seconds: float
    run: Callable[[], object]
    next_at: float = 0.0


def default_jobs() -> list[Job]:
    """The same jobs Celery beat runs in scaled mode (see dexproject/celery.py)."""
    from paper_trading.services.bot_control import reap_dead_bots
    from paper_trading.services.prices import update_all_position_prices
    from paper_trading.tasks import cleanup_sessions

    return [
        Job(
            "update_all_position_prices",
            settings.POSITION_UPDATE_INTERVAL_SECONDS,
            update_all_position_prices,
        ),
        Job("reap_dead_bots", settings.HEARTBEAT_INTERVAL_SECONDS * 3, reap_dead_bots),
        Job("cleanup_old_sessions", 24 * 3600, cleanup_sessions),
    ]


class EmbeddedScheduler:
    def __init__(self, jobs: list[Job] | None = None, clock: Callable[[], float] = time.monotonic):
        self.jobs = jobs if jobs is not None else default_jobs()
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="embedded-jobs", daemon=True)

    def start(self) -> None:
        now = self.clock()
        for job in self.jobs:
            job.next_at = now + min(job.interval_seconds, 5)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_due(self) -> list[str]:
        """Run every job whose time has come; one failing job does not stop the others."""
        ran: list[str] = []
        for job in self.jobs:
            if self.clock() < job.next_at:
                continue
            close_old_connections()
            try:
                job.run()
            except Exception:
                logger.exception("[JOBS] %s failed", job.name)
            job.next_at = self.clock() + job.interval_seconds
            ran.append(job.name)
        return ran

    def _loop(self) -> None:
        try:
            while not self._stop.wait(1.0):
                self.run_due()
        finally:
            connection.close()
