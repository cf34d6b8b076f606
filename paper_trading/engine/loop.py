"""The bot loop: pace ticks, run them, hand each result to the sinks, stop cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.events import EventSink, TickResult
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
    """Runs a bot's ticks; `on_tick_duration`, when given, gets each tick's wall time in seconds.

    A tick's time spans everything `step` does (config read, analysis, trading, every sink) and
    excludes pacing, measured with the injected `monotonic`: the timing belongs to the loop, so
    it holds whatever the sinks are and whether or not the bot has a config source.
    """

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
        on_tick_duration: Callable[[float], None] | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.schedule = schedule
        self.sinks = sinks
        self.stop = stop
        self.config_source = config_source
        self.max_runtime_seconds = max_runtime_seconds
        self.max_ticks = max_ticks
        self.monotonic = monotonic
        self.on_tick_duration = on_tick_duration

    def step(self, produce: Callable[[], TickResult]) -> TickResult:
        """One timed tick: re-read the config, run `produce`, hand its result to every sink.

        The Fast Lane handles each mempool event through here too, so events are timed alike.
        """
        began = self.monotonic()
        if self.config_source is not None:
            self.analyzer.config = self.config_source()
        result = produce()
        for sink in self.sinks:
            sink.publish(result)
        if self.on_tick_duration is not None:
            self.on_tick_duration(self.monotonic() - began)
        return result

    def run(self) -> RunOutcome:
        started = self.monotonic()
        ticks = 0
        for now in self.schedule.ticks(self.stop):
            self.step(partial(self.analyzer.tick, now))
            ticks += 1
            if self.max_ticks is not None and ticks >= self.max_ticks:
                return RunOutcome(ticks, EndReason.TICK_LIMIT)
            elapsed = self.monotonic() - started
            if self.max_runtime_seconds is not None and elapsed >= self.max_runtime_seconds:
                return RunOutcome(ticks, EndReason.RUNTIME_LIMIT)
        reason = EndReason.STOPPED if self.stop.is_set() else EndReason.COMPLETED
        return RunOutcome(ticks, reason)
