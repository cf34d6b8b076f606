"""The bot loop: pace ticks, run them, hand each result to the sinks, stop cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.events import EventSink
from paper_trading.engine.schedule import TickSchedule


class EndReason(StrEnum):
    #: The schedule ran out (the end of the recorded data).
    COMPLETED = "completed"
    #: Someone asked it to stop (Ctrl+C, SIGTERM, the API).
    STOPPED = "stopped"
    RUNTIME_LIMIT = "runtime limit reached"
    TICK_LIMIT = "tick limit reached"


@dataclass(frozen=True)
class RunOutcome:
    ticks: int
    reason: EndReason


class BotLoop:
    def __init__(
        self,
        analyzer: MarketAnalyzer,
        schedule: TickSchedule,
        sinks: Sequence[EventSink],
        stop: threading.Event,
        *,
        config_source: Callable[[], TradingConfig] | None = None,
        max_runtime_seconds: float | None = None,
        max_ticks: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.analyzer = analyzer
        self.schedule = schedule
        self.sinks = sinks
        self.stop = stop
        self.config_source = config_source
        self.max_runtime_seconds = max_runtime_seconds
        self.max_ticks = max_ticks
        self.monotonic = monotonic

    def run(self) -> RunOutcome:
        started = self.monotonic()
        ticks = 0
        for now in self.schedule.ticks(self.stop):
            if self.config_source is not None:
                self.analyzer.config = self.config_source()
            result = self.analyzer.tick(now)
            for sink in self.sinks:
                sink.publish(result)
            ticks += 1
            if self.max_ticks is not None and ticks >= self.max_ticks:
                return RunOutcome(ticks, EndReason.TICK_LIMIT)
            elapsed = self.monotonic() - started
            if self.max_runtime_seconds is not None and elapsed >= self.max_runtime_seconds:
                return RunOutcome(ticks, EndReason.RUNTIME_LIMIT)
        reason = EndReason.STOPPED if self.stop.is_set() else EndReason.COMPLETED
        return RunOutcome(ticks, reason)
