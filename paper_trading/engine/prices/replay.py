"""Recorded real candles replayed tick by tick: the offline price source.

A bar's close is only known once the bar has closed, so replay ticks are bar CLOSE times
(open time + interval); using the open time would let a strategy trade on a price from the
future. A missing bar is reported as unavailable, never filled: an invented price would make
every decision taken on it a lie.
"""

from __future__ import annotations

import csv
import gzip
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

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


@dataclass
class _Series:
    """One symbol's closes, keyed by close time for O(1) ticks and sorted for bisected history."""

    times: list[datetime] = field(default_factory=list)
    closes: list[Decimal] = field(default_factory=list)
    by_time: dict[datetime, Decimal] = field(default_factory=dict)
    #: `closes` as floats, for indicators and screens over the whole recording (a Decimal
    #: converts to float through its text, so this is done once, when loading).
    floats: list[float] = field(default_factory=list)


def _load(path: Path, bar: timedelta) -> _Series:
    series = _Series()
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                opened = datetime.fromisoformat(row["timestamp"]).astimezone(UTC)
                close = money.price(row["close"])
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                raise ValueError(f"{path.name} line {line_no}: unreadable candle ({exc})") from exc
            closed = opened + bar
            if series.times and closed <= series.times[-1]:
                raise ValueError(f"{path.name} line {line_no}: timestamps are not increasing")
            if close <= 0:
                raise ValueError(f"{path.name} line {line_no}: non-positive close {close}")
            series.times.append(closed)
            series.closes.append(close)
            series.floats.append(float(close))
            series.by_time[closed] = close
    return series


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
        self._series = {symbol: _load(path, self._bar) for symbol, path in sorted(paths.items())}

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
        chosen = self._series.keys() if symbols is None else [s.upper() for s in symbols]
        times: set[datetime] = set()
        for symbol in chosen:
            if symbol in self._series:
                times.update(self._series[symbol].times)
        lo = None if start is None else _utc(start, "start")
        hi = None if end is None else _utc(end, "end")
        return sorted(t for t in times if (lo is None or t >= lo) and (hi is None or t <= hi))

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        at = _utc(now, "now")
        prices: dict[str, PriceQuote] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            series = self._series.get(symbol.upper())
            if series is None:
                unavailable[symbol] = f"no recorded price data for {symbol}"
                continue
            close = series.by_time.get(at)
            if close is None:
                unavailable[symbol] = self._missing_reason(symbol, series, at)
                continue
            prices[symbol] = PriceQuote(
                symbol=symbol,
                price_usd=close,
                timestamp=at,
                source=self.name,
                change_24h_percent=_change(series.by_time.get(at - _DAY), close),
            )
        return PriceSnapshot(
            timestamp=now, source=self.name, prices=prices, unavailable=unavailable
        )

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        series = self._series.get(symbol.upper())
        if series is None or limit <= 0:
            return []
        end = bisect_right(series.times, _utc(until, "until"))
        begin = max(0, end - limit)
        return list(zip(series.times[begin:end], series.closes[begin:end], strict=True))

    def recording(
        self, symbol: str
    ) -> tuple[Sequence[datetime], Sequence[Decimal], Sequence[float]]:
        """`symbol`'s whole recording: close times, closes and the closes as floats (empty for
        an unknown symbol). The sequences are the source's own: read them, do not change them."""
        series = self._series.get(symbol.upper())
        if series is None:
            return (), (), ()
        return series.times, series.closes, series.floats

    def _missing_reason(self, symbol: str, series: _Series, at: datetime) -> str:
        first, last = series.times[0], series.times[-1]
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


def _change(before: Decimal | None, after: Decimal) -> Decimal | None:
    if before is None:
        return None
    return money.ratio(
        money.div(money.mul(money.CONTEXT.subtract(after, before), money.HUNDRED), before)
    )
