"""Tick pacing: speed, stop responsiveness and resuming a killed run."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.schedule import ReplaySchedule, TickSchedule, WallClockSchedule

T0 = datetime(2026, 1, 5, tzinfo=UTC)
HOURLY = [T0 + timedelta(hours=k) for k in range(5)]


class FakeTime:
    """A monotonic clock that only moves when the schedule 'waits', recording each wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        self.waits.append(timeout)
        self.now += timeout
        return stop.is_set()


def _fail_wait(stop: threading.Event, timeout: float) -> bool:
    raise AssertionError(f"unexpected wait of {timeout} s")


def test_max_speed_yields_everything_in_order_without_waiting() -> None:
    schedule = ReplaySchedule(HOURLY, speed=None, wait=_fail_wait)
    assert list(schedule.ticks(threading.Event())) == HOURLY


def test_schedules_satisfy_the_protocol() -> None:
    schedules: list[TickSchedule] = [ReplaySchedule(HOURLY, None), WallClockSchedule(1.0)]
    assert len(schedules) == 2


def test_speed_divides_the_recorded_gaps() -> None:
    fake = FakeTime()
    timeline = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=3)]
    schedule = ReplaySchedule(
        timeline, speed=Decimal(3600), wait=fake.wait, monotonic=fake.monotonic
    )
    assert list(schedule.ticks(threading.Event())) == timeline
    assert fake.waits == [pytest.approx(1.0), pytest.approx(2.0)]


def test_time_spent_on_a_tick_counts_toward_the_wait() -> None:
    fake = FakeTime()
    schedule = ReplaySchedule(HOURLY, speed=Decimal(3600), wait=fake.wait, monotonic=fake.monotonic)
    ticks = schedule.ticks(threading.Event())
    next(ticks)
    fake.now += 0.25  # the engine took a quarter of a second on the tick
    next(ticks)
    fake.now += 2.0  # slower than the pace: no wait, no catch-up burst either
    next(ticks)
    assert fake.waits == [pytest.approx(0.75)]


def test_real_wait_with_large_speed() -> None:
    timeline = [T0 + timedelta(seconds=k) for k in range(4)]
    started = time.monotonic()
    assert list(ReplaySchedule(timeline, speed=Decimal(50)).ticks(threading.Event())) == timeline
    assert time.monotonic() - started >= 0.05  # three gaps of 20 ms each, minus jitter


def test_stop_ends_iteration_between_ticks() -> None:
    stop = threading.Event()
    seen = []
    for tick in ReplaySchedule(HOURLY, speed=None).ticks(stop):
        seen.append(tick)
        if len(seen) == 2:
            stop.set()
    assert seen == HOURLY[:2]


def test_stop_interrupts_a_long_wait_promptly() -> None:
    stop = threading.Event()
    # One tick per recorded hour at real time: the second tick would be an hour away.
    ticks = ReplaySchedule(HOURLY, speed=Decimal(1)).ticks(stop)
    assert next(ticks) == HOURLY[0]
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started = time.monotonic()
    assert list(ticks) == []
    assert time.monotonic() - started < 5
    timer.join()


def test_stop_set_before_start_yields_nothing() -> None:
    stop = threading.Event()
    stop.set()
    assert list(ReplaySchedule(HOURLY, speed=None).ticks(stop)) == []
    assert list(WallClockSchedule(1.0).ticks(stop)) == []


def test_resume_after_skips_processed_points() -> None:
    fake = FakeTime()
    schedule = ReplaySchedule(HOURLY, speed=Decimal(3600), wait=fake.wait, monotonic=fake.monotonic)
    schedule.resume_after = HOURLY[2]
    assert list(schedule.ticks(threading.Event())) == HOURLY[3:]
    assert fake.waits == [pytest.approx(1.0)]  # the first resumed tick comes at once
    past_the_end = ReplaySchedule(HOURLY, None, resume_after=HOURLY[-1])
    assert list(past_the_end.ticks(threading.Event())) == []
    between = ReplaySchedule(HOURLY, None, resume_after=HOURLY[1] + timedelta(minutes=30))
    assert list(between.ticks(threading.Event())) == HOURLY[2:]


def test_a_replay_timeline_is_kept_compact_and_resumes_alike(tmp_path: Path) -> None:
    rows = "".join(f"{t - timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ},1,1,1,2,1\n" for t in HOURLY)
    with gzip.open(tmp_path / "ETH_USDT-1h.csv.gz", "wt") as f:
        f.write("timestamp,open,high,low,close,volume\n" + rows)
    timeline = ReplaySource(tmp_path).close_times()
    schedule = ReplaySchedule(timeline, None, resume_after=HOURLY[1] + timedelta(minutes=30))
    assert schedule.timeline is timeline  # not copied into a list of datetimes
    assert list(schedule.ticks(threading.Event())) == HOURLY[2:]


def test_invalid_replay_schedules() -> None:
    for speed in ("0", "0.5", "10000001", "Infinity", "NaN"):
        with pytest.raises(ValueError, match=f"speed must be a number from 1 .*got {speed}"):
            ReplaySchedule(HOURLY, speed=Decimal(speed))
    with pytest.raises(ValueError, match="strictly increasing"):
        ReplaySchedule([HOURLY[1], HOURLY[0]], speed=None)
    with pytest.raises(ValueError, match="strictly increasing"):
        ReplaySchedule([HOURLY[0], HOURLY[0]], speed=None)


def _clock() -> Iterator[datetime]:
    moment = T0
    while True:
        yield moment
        moment += timedelta(minutes=1)


def test_wall_clock_yields_clock_time_every_interval() -> None:
    fake = FakeTime()
    clock = _clock()
    schedule = WallClockSchedule(
        60.0, clock=lambda: next(clock), wait=fake.wait, monotonic=fake.monotonic
    )
    stop = threading.Event()
    seen = []
    for tick in schedule.ticks(stop):
        seen.append(tick)
        if len(seen) == 3:
            stop.set()
    assert seen == [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    assert fake.waits == [pytest.approx(60.0)] * 3  # the last wait saw the stop and ended


def test_wall_clock_stop_interrupts_the_wait() -> None:
    stop = threading.Event()
    ticks = WallClockSchedule(3600.0).ticks(stop)
    first = next(ticks)
    assert first.tzinfo is not None
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    assert list(ticks) == []
    assert time.monotonic() - started < 5


def test_wall_clock_rejects_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="interval must be positive"):
        WallClockSchedule(0)
