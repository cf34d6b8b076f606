"""Recorded real candles replayed tick by tick: the offline price source.

A bar's close is only known once the bar has closed, so replay ticks are bar CLOSE times
(open time + interval); using the open time would let a strategy trade on a price from the
future. A missing bar is reported as unavailable, never filled: an invented price would make
every decision taken on it a lie.
"""

from __future__ import annotations

import csv
import functools
import gzip
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import repeat
from operator import mul
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

from paper_trading.engine import money
from paper_trading.engine.prices.feed import PriceQuote, PriceSnapshot, PriceUnavailableError

#: The shipped recording, found next to the package so it works from any working directory.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "replay"

_INTERVAL_RE = re.compile(r"^(\d+)([mhd])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
_DAY = timedelta(days=1)
_FILE_SUFFIX = "_USDT-{interval}.csv.gz"


def candle_file(data_dir: Path, symbol: str, interval: str) -> Path:
    """Where a token's candles of one interval live: `<SYMBOL>_USDT-<interval>.csv.gz`."""
    return data_dir / f"{symbol.upper()}{_FILE_SUFFIX.format(interval=interval)}"


def interval_to_seconds(interval: str) -> int:
    """Bar length of a Binance-style interval name ("15m", "1h", "1d")."""
    match = _INTERVAL_RE.match(interval)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"unsupported candle interval {interval!r}; expected e.g. 15m, 1h, 1d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


#: Close times are kept as integer microseconds since this moment (UTC).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_US = 86_400_000_000
_US = timedelta(microseconds=1)
_NONE = np.zeros(0, dtype=np.int64)
_PRICE_EXPONENT = -money.PRICE_PLACES


def _micros(moment: datetime) -> int:
    """A UTC datetime as integer microseconds since the epoch: exact, unlike a float timestamp."""
    return (moment - _EPOCH) // _US


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class _Series:
    """One symbol's bars in two numpy arrays, ~16 bytes a bar instead of ~300 in Python objects.

    `times` holds the close times (microseconds, increasing, so a tick is a binary search);
    `units` the exact closes as integers of 10**-`scale` USD, rebuilt into the same quantized
    Decimal on access. Prices too long for int64 keep Python ints (dtype object), still exact.
    `floats` are the closes as floats, for indicators and screens over the whole recording
    (a Decimal converts to float through its text, so this is done once, when loading).
    """

    times: NDArray[np.int64]
    units: NDArray[Any]
    scale: int
    floats: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.times)

    def find(self, micros: int, guess: int = -1) -> int | None:
        """The index of the bar closing at `micros`, None if there is none.

        `guess` is checked first: where a recording has no gaps, the caller can work the index
        out, and a replay looks up a few bars every tick.
        """
        return _find(self.times, micros, guess)

    def end(self, micros: int) -> int:
        """How many bars close at or before `micros`."""
        return int(self.times.searchsorted(micros, side="right"))

    def time(self, i: int) -> datetime:
        return _moment(int(self.times[i]))

    def close(self, i: int) -> Decimal:
        # The step `_prices` takes, for one close without the list around it.
        factor = 10 ** (money.PRICE_PLACES - self.scale)
        return money.CONTEXT.scaleb(Decimal(self.units.item(i) * factor), _PRICE_EXPONENT)

    def closes(self, index: slice | NDArray[np.intp]) -> list[Decimal]:
        """The closes at a slice or an array of bar indices."""
        # tolist() gives Python ints at C speed; converting numpy scalars one by one does not.
        return _prices(self.units[index].tolist(), self.scale)


def _find(times: NDArray[np.int64], micros: int, guess: int) -> int | None:
    """Where `micros` is in the increasing `times` (None if it is not): at `guess`, else found
    by binary search."""
    if 0 <= guess < len(times) and times.item(guess) == micros:
        return guess
    # The array's own method: np.searchsorted's dispatch costs more than the search.
    i = int(times.searchsorted(micros))
    return i if i < len(times) and times.item(i) == micros else None


def _prices(units: list[int], scale: int) -> list[Decimal]:
    """Closes of `units` 10**-`scale` USD each, as the quantized prices `money.price` makes.

    The units are brought to `PRICE_PLACES` as integers and scaled in one exact step: a close
    is rebuilt tens of thousands of times in a backtest, and rounding it again changes nothing.
    """
    factor = 10 ** (money.PRICE_PLACES - scale)
    # Mapped in C, each step over the whole list: a quiet stretch rebuilds its held closes.
    scaled = map(Decimal, map(mul, units, repeat(factor)))
    return list(map(money.CONTEXT.scaleb, scaled, repeat(_PRICE_EXPONENT)))


class Closes(Sequence[Decimal]):
    """A series' exact closes, each rebuilt as a Decimal when read."""

    def __init__(self, series: _Series) -> None:
        self._series = series

    def __len__(self) -> int:
        return len(self._series)

    @overload
    def __getitem__(self, index: int) -> Decimal: ...

    @overload
    def __getitem__(self, index: slice) -> list[Decimal]: ...

    def __getitem__(self, index: int | slice) -> Decimal | list[Decimal]:
        if isinstance(index, slice):
            return self._series.closes(index)
        if index < 0:
            index += len(self._series)
        if not 0 <= index < len(self._series):
            raise IndexError("close index out of range")
        return self._series.close(index)

    def take(self, rows: NDArray[np.intp]) -> list[Decimal]:
        """The closes of the bars at `rows` (valid indices), at C speed like a slice."""
        return self._series.closes(rows)


class Timeline(Sequence[datetime]):
    """Increasing UTC moments kept as int64 microseconds: 8 bytes each instead of ~56."""

    def __init__(self, micros: NDArray[np.int64]) -> None:
        self._micros = micros
        #: The first moment and the step to the second: where a moment is if there are no gaps.
        self._origin, self._step = (
            (micros.item(0), micros.item(1) - micros.item(0)) if len(micros) > 1 else (0, 0)
        )
        #: Steps missing before the moment found last: gaps are rare, so likely the next's too.
        self._missing = 0

    @classmethod
    def of(cls, moments: Sequence[datetime]) -> Timeline:
        """Increasing aware moments as a Timeline (the same one if they are one already)."""
        if isinstance(moments, Timeline):
            return moments
        count = len(moments)
        return cls(np.fromiter(map(_micros, moments), dtype=np.int64, count=count))

    @property
    def micros(self) -> NDArray[np.int64]:
        """The moments as microseconds since the epoch (a view: read it, do not change it)."""
        return self._micros

    def find(self, moment: datetime) -> int | None:
        """Where the aware `moment` is, by binary search; None if it is not there."""
        micros = _micros(moment)
        step = self._step
        if step <= 0:
            return _find(self._micros, micros, -1)
        steps = (micros - self._origin) // step
        i = _find(self._micros, micros, steps - self._missing)
        if i is not None:
            self._missing = steps - i
        return i

    def rows(self, moments: Timeline) -> NDArray[np.intp]:
        """Where each of `moments` is (-1 where it is not), by one vectorised binary search."""
        at = moments.micros
        if not len(self._micros):
            return np.full(len(at), -1, dtype=np.intp)
        i = np.minimum(self._micros.searchsorted(at), len(self._micros) - 1)
        return np.where(self._micros[i] == at, i, -1)

    def __len__(self) -> int:
        return len(self._micros)

    @overload
    def __getitem__(self, index: int) -> datetime: ...

    @overload
    def __getitem__(self, index: slice) -> Timeline: ...

    def __getitem__(self, index: int | slice) -> datetime | Timeline:
        if isinstance(index, slice):
            return Timeline(self._micros[index])
        return _moment(int(self._micros[index]))

    def __iter__(self) -> Iterator[datetime]:
        # tolist() gives Python ints at C speed; converting numpy scalars one by one does not.
        # `_moment` of each, all in C: timedelta(0, 0, us) is timedelta(microseconds=us).
        micros = self._micros.tolist()
        return map(_EPOCH.__add__, map(timedelta, repeat(0), repeat(0), micros))


def _load(path: Path, bar: timedelta) -> _Series:
    bar_us = bar // timedelta(microseconds=1)
    times = array("q")
    #: Each close as an integer of 10**-places USD (places as written, at most PRICE_PLACES),
    #: in int64 while they fit and as Python ints after one does not.
    coefficients: array[int] | list[int] = array("q")
    places = array("b")
    floats = array("d")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                opened = datetime.fromisoformat(row["timestamp"]).astimezone(UTC)
                text = Decimal(row["close"])
                close = money.price(text)
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                raise ValueError(f"{path.name} line {line_no}: unreadable candle ({exc})") from exc
            closed = _micros(opened) + bar_us
            if times and closed <= times[-1]:
                raise ValueError(f"{path.name} line {line_no}: timestamps are not increasing")
            if close <= 0:
                raise ValueError(f"{path.name} line {line_no}: non-positive close {close}")
            exponent = text.as_tuple().exponent
            shown = min(money.PRICE_PLACES, max(0, -exponent if isinstance(exponent, int) else 0))
            coefficient = int(close.scaleb(shown, context=money.CONTEXT))
            try:
                coefficients.append(coefficient)
            except OverflowError:
                coefficients = [*coefficients, coefficient]
            times.append(closed)
            places.append(shown)
            floats.append(float(close))
    # Views of the arrays' own memory: a 100,000-bar recording loads without copies.
    return _Series(
        np.frombuffer(times, dtype=np.int64),
        *_units(coefficients, places),
        np.frombuffer(floats, dtype=np.float64),
    )


#: Recordings this process has read, by file version: a bot's start-up check and its run, or a
#: web process starting bots one after another, read each file once. A few MB at most.
_LOADED_FILES = 64


def _load_once(path: Path, bar: timedelta) -> _Series:
    """`_load`, served from memory while the file is unchanged (same size and mtime)."""
    stat = path.stat()
    return _load_version(path.resolve(), stat.st_mtime_ns, stat.st_size, bar)


@functools.lru_cache(maxsize=_LOADED_FILES)
def _load_version(path: Path, mtime_ns: int, size: int, bar: timedelta) -> _Series:
    series = _load(path, bar)
    # Shared by every source that reads this file, so nobody may change them.
    for values in (series.times, series.units, series.floats):
        values.flags.writeable = False
    return series


def _units(coefficients: array[int] | list[int], places: array[int]) -> tuple[NDArray[Any], int]:
    """The coefficients on one scale (the most places any has): int64 if they fit, else ints."""
    scale = max(places, default=0)
    shift = scale - np.frombuffer(places, dtype=np.int8).astype(np.int64)
    if isinstance(coefficients, array):
        values = np.frombuffer(coefficients, dtype=np.int64)
        factor = 10**shift
        if np.all(values <= np.iinfo(np.int64).max // factor):
            values *= factor
            return values, scale
    exact = [c * 10**s for c, s in zip(coefficients, shift.tolist(), strict=True)]
    return np.array(exact, dtype=object), scale


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


class ReplaySource:
    """Prices from recorded `<SYMBOL>_USDT-<interval>.csv.gz` candles (USDT taken as USD)."""

    name = "replay"

    def __init__(
        self,
        data_dir: Path = DEFAULT_DATA_DIR,
        interval: str = "1h",
        symbols: Sequence[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.interval = interval
        self._bar = timedelta(seconds=interval_to_seconds(interval))
        self._bar_us = self._bar // _US
        #: Bars from one close to the close a day earlier (a guess for bars that do not
        #: divide a day, checked like every other).
        self._bars_a_day = _DAY // self._bar
        #: Per symbol: bars missing before the one fetched last (see `fetch`).
        self._missing: dict[str, int] = {}
        suffix = _FILE_SUFFIX.format(interval=interval)
        if symbols is None:
            paths = {p.name.removesuffix(suffix): p for p in data_dir.glob(f"*{suffix}")}
        else:
            wanted = {s.upper() for s in symbols}
            paths = {
                s: candle_file(data_dir, s, interval)
                for s in wanted
                if candle_file(data_dir, s, interval).is_file()
            }
        if not paths:
            raise PriceUnavailableError(f"no recorded price files *{suffix} in {data_dir}")
        self._series: dict[str, _Series] = {}
        for symbol, path in sorted(paths.items()):
            series = _load_once(path, self._bar)
            # Tokens recorded over the same hours share one array of close times.
            same = next((o for o in self._series.values() if _same_times(o, series)), None)
            if same is not None:
                series = _Series(same.times, series.units, series.scale, series.floats)
            self._series[symbol] = series

    @property
    def interval_seconds(self) -> int:
        return int(self._bar.total_seconds())

    def symbols_available(self) -> list[str]:
        return list(self._series)

    def timeline(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        symbols: Sequence[str] | None = None,
    ) -> list[datetime]:
        """Every close time at which at least one of `symbols` has a bar, within [start, end]."""
        return list(self.close_times(start, end, symbols))

    def close_times(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        symbols: Sequence[str] | None = None,
    ) -> Timeline:
        """`timeline()` without a datetime object per bar, for a bot's schedule of many bars."""
        chosen = self._series.keys() if symbols is None else [s.upper() for s in symbols]
        series = [self._series[s] for s in chosen if s in self._series]
        # Tokens recorded over the same hours share one array of times: used as it is, not merged.
        arrays = list({id(x.times): x.times for x in series}.values())
        times = arrays[0] if len(arrays) == 1 else np.unique(np.concatenate([_NONE, *arrays]))
        lo = 0 if start is None else np.searchsorted(times, _micros(_utc(start, "start")))
        hi = (
            len(times)
            if end is None
            else np.searchsorted(times, _micros(_utc(end, "end")), "right")
        )
        return Timeline(times[lo:hi])

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        at = _utc(now, "now")
        micros = _micros(at)
        prices: dict[str, PriceQuote] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            series = self._series.get(symbol.upper())
            if series is None:
                unavailable[symbol] = f"no recorded price data for {symbol}"
                continue
            # The bar is as many bars after the first as its time says, less those missing
            # before it: gaps are rare, so likely as many as before the bar found last time.
            bars = (micros - series.times.item(0)) // self._bar_us
            i = series.find(micros, bars - self._missing.get(symbol, 0))
            if i is None:
                unavailable[symbol] = self._missing_reason(symbol, series, at)
                continue
            self._missing[symbol] = bars - i
            close = series.close(i)
            day_before = series.find(micros - _DAY_US, i - self._bars_a_day)
            prices[symbol] = PriceQuote(
                symbol=symbol,
                price_usd=close,
                timestamp=at,
                source=self.name,
                change_24h_percent=_change(
                    None if day_before is None else series.close(day_before), close
                ),
            )
        return PriceSnapshot(
            timestamp=now, source=self.name, prices=prices, unavailable=unavailable
        )

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        series = self._series.get(symbol.upper())
        if series is None or limit <= 0:
            return []
        end = series.end(_micros(_utc(until, "until")))
        return [(series.time(i), series.close(i)) for i in range(max(0, end - limit), end)]

    def recording(self, symbol: str) -> tuple[Timeline, Closes, NDArray[np.float64]]:
        """`symbol`'s whole recording: close times, closes and the closes as floats (empty for
        an unknown symbol). Views of the source's own arrays: read them, do not change them."""
        series = self._series.get(symbol.upper())
        if series is None:
            series = _Series(_NONE, _NONE, 0, np.zeros(0, dtype=np.float64))
        return Timeline(series.times), Closes(series), series.floats

    def _missing_reason(self, symbol: str, series: _Series, at: datetime) -> str:
        first, last = series.time(0), series.time(len(series) - 1)
        if at < first or at > last:
            return (
                f"no recorded {symbol} bar closing at {at:%Y-%m-%d %H:%M} UTC "
                f"(recording covers {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC)"
            )
        if (at - first) % self._bar:
            return (
                f"no recorded bar closing at {at:%Y-%m-%d %H:%M:%S} UTC "
                f"(not a {self.interval} bar close time)"
            )
        return f"no recorded bar closing at {at:%Y-%m-%d %H:%M} UTC (gap in recorded data)"


def _same_times(a: _Series, b: _Series) -> bool:
    return len(a) == len(b) and bool(np.array_equal(a.times, b.times))


def _change(before: Decimal | None, after: Decimal) -> Decimal | None:
    if before is None:
        return None
    return money.ratio(
        money.div(money.mul(money.CONTEXT.subtract(after, before), money.HUNDRED), before)
    )
