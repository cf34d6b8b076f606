"""Where Fast Lane events come from: a node's WebSocket JSON-RPC, or a recorded JSONL file.

Both yield `(when, event)` pairs in order until the stream ends or `stop` is set. The live source
is `paper_trading.engine.mempool.websocket`, kept apart so a bot without a node never loads its
client and ABI decoding (~15 MB).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from paper_trading.engine.mempool.events import MempoolEvent, event_from_json

Timed = tuple[datetime, MempoolEvent]


class EventSource(Protocol):
    #: Shown in logs and thoughts: "websocket" or "recorded".
    name: str
    #: Events happen now (a node) rather than at recorded times (a file).
    live: bool

    def events(self, stop: threading.Event) -> Iterator[Timed]:
        """Events in arrival order, until the source ends or `stop` is set."""
        ...


def ws_url_for(chain_id: int, environ: Mapping[str, str]) -> str | None:
    """The WebSocket node URL configured for a chain (`WS_RPC_URL_8453` for Base)."""
    url = environ.get(f"WS_RPC_URL_{chain_id}", "").strip()
    return url or None


class RecordedEventSource:
    """A JSONL file, one `{"at": ISO time, "type": ..., ...}` object per line, replayed in order.

    The same file always gives the same events at the same times: replays and tests repeat.
    """

    name = "recorded"
    live = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self._events = self._load(path)

    @staticmethod
    def _load(path: Path) -> list[Timed]:
        events: list[Timed] = []
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                at = datetime.fromisoformat(data.pop("at"))
                events.append((at if at.tzinfo else at.replace(tzinfo=UTC), event_from_json(data)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a recorded event ({exc})") from None
        if any(later[0] < earlier[0] for earlier, later in itertools.pairwise(events)):
            raise ValueError(f"{path}: events must be in time order")
        return events

    def events(self, stop: threading.Event) -> Iterator[Timed]:
        for timed in self._events:
            if stop.is_set():
                return
            yield timed


def record_line(at: datetime, event: MempoolEvent) -> str:
    """One line of a recording, the format `RecordedEventSource` reads."""
    return json.dumps({"at": at.isoformat(), **event.to_json()})
