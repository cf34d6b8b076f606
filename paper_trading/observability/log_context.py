"""Which bot session a log line belongs to, without every caller passing it.

`bot_session` marks the code running a session (`services.bot.run_session`, the one path of the
terminal command, Celery workers and the web server's threads); `SessionContextFilter`, on the
logging config's console handler, copies the ids onto every record emitted meanwhile, engine
lines included. A context variable, so each thread (and each Celery task) sees only its own
session; threads a session starts run in a copy of its context to keep the ids.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_SESSION: ContextVar[tuple[str, str] | None] = ContextVar("bot_session", default=None)


@contextmanager
def bot_session(session_id: uuid.UUID, account_id: uuid.UUID) -> Iterator[None]:
    """Tag the log records emitted inside the block with this session and its account."""
    token = _SESSION.set((str(session_id), str(account_id)))
    try:
        yield
    finally:
        _SESSION.reset(token)


class SessionContextFilter(logging.Filter):
    """Adds `session_id` and `account_id` to records emitted inside `bot_session`; ids the
    caller passed itself (`extra=`) win. Records outside a session get neither field."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _SESSION.get()
        if ids is not None and not hasattr(record, "session_id"):
            record.session_id, record.account_id = ids
        return True


class PlainFormatter(logging.Formatter):
    """The plain-text format, plus ` [session 1a2b3c4d]` (the id's first 8 characters) on a
    bot's lines: enough to tell apart the bots of one process; JSON carries the full ids."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)  # the traceback, if any, comes after the tag
        session = getattr(record, "session_id", None)
        return f"{line} [session {str(session)[:8]}]" if session else line
