"""A running bot says it is alive every few seconds, whatever its tick interval.

Ticks can be an hour apart on a slow replay; the heartbeat is what tells other processes and
machines that the session is taken, and its silence that the runner died.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from types import TracebackType

from django.conf import settings
from django.db import DatabaseError, connection, reset_queries
from django.utils import timezone

from paper_trading.models import PaperTradingSession

logger = logging.getLogger("paper_trading.bot")


class Heartbeat:
    def __init__(self, session_id: uuid.UUID, interval: float | None = None) -> None:
        self.session_id = session_id
        self.interval = interval or settings.HEARTBEAT_INTERVAL_SECONDS
        self._stop = threading.Event()
        # In the creator's context variables, so its warnings carry the bot's log context.
        self._thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._beat,),
            name=f"heartbeat-{session_id}",
            daemon=True,
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    PaperTradingSession.objects.filter(pk=self.session_id).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:
                    # A busy database (SQLite's write lock) must not silence the heartbeat for
                    # good: the next beat tries again, and each committed tick beats too.
                    logger.warning("heartbeat for %s skipped: database busy", self.session_id)
                    connection.close()
                reset_queries()  # DEBUG's SQL log: nothing else clears it on this thread
        finally:
            connection.close()
