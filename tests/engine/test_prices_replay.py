"""The replay source must serve recorded closes at close time and never invent a missing bar."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from paper_trading.engine import money
from paper_trading.engine.prices.feed import PriceQuote, PriceUnavailableError
from paper_trading.engine.prices.replay import ReplaySource, Timeline, interval_to_seconds

HEADER = "timestamp,open,high,low,close,volume\n"


def _at(day: int, hour: int, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def _write(directory: Path, symbol: str, rows: list[tuple[str, str]], interval: str = "1h") -> None:
    """Candles as (open time, close); open/high/low/volume are irrelevant to the source."""
    body = "".join(f"{ts},1,1,1,{close},10\n" for ts, close in rows)
    with gzip.open(directory / f"{symbol}_USDT-{interval}.csv.gz", "wt", encoding="utf-8") as f:
        f.write(HEADER + body)


@pytest.fixture(scope="module")
def shipped() -> ReplaySource:
    return ReplaySource()


@pytest.fixture
def gappy(tmp_path: Path) -> ReplaySource:
    # ETH bars open 10:00, 11:00, (12:00 missing), 13:00 -> closes 11:00, 12:00, 14:00.
    _write(
        tmp_path,
        "ETH",
        [
            ("2026-01-05T10:00:00Z", "100.5"),
            ("2026-01-05T11:00:00Z", "101"),
            ("2026-01-05T13:00:00Z", "103.25"),
        ],
    )
    _write(tmp_path, "BTC", [("2026-01-05T12:00:00Z", "50000")])
    return ReplaySource(data_dir=tmp_path)


def test_shipped_data_has_all_symbols(shipped: ReplaySource) -> None:
    assert shipped.symbols_available() == ["AAVE", "ARB", "BTC", "ETH", "LINK", "OP", "UNI"]
    assert shipped.interval_seconds == 3600
    timeline = shipped.timeline()
    assert len(timeline) == 1451
    assert timeline[0] == _at(3, 1, month=12, year=2025)
    assert timeline[-1] == _at(1, 11, month=2)


def test_shipped_first_bar_is_known_only_at_its_close(shipped: ReplaySource) -> None:
    at_open = shipped.fetch(["ETH"], _at(3, 0, month=12, year=2025))
    assert "ETH" not in at_open.prices
    assert "recording covers" in at_open.unavailable["ETH"]

    snap = shipped.fetch(["ETH", "BTC"], _at(3, 1, month=12, year=2025))
    eth = snap.prices["ETH"]
    assert eth.price_usd == Decimal("3003.2")
    assert isinstance(eth.price_usd, Decimal)
    assert eth.timestamp == _at(3, 1, month=12, year=2025)
    assert eth.source == "replay"
    assert eth.change_24h_percent is None  # no bar 24 h earlier
    assert snap.prices["BTC"].price_usd == Decimal("91660.12")
    assert snap.source == "replay"
    assert snap.unavailable == {}


def test_shipped_change_24h_and_last_bar(shipped: ReplaySource) -> None:
    eth = shipped.fetch(["ETH"], _at(4, 1, month=12, year=2025)).prices["ETH"]
    assert eth.price_usd == Decimal("3198.29")
    # (3198.29 - 3003.2) / 3003.2 * 100
    assert eth.change_24h_percent == Decimal("6.4961")
    assert shipped.fetch(["ETH"], _at(1, 11, month=2)).prices["ETH"].price_usd == Decimal("2381.03")


def test_unknown_symbol_is_unavailable(shipped: ReplaySource) -> None:
    snap = shipped.fetch(["ETH", "XYZ"], _at(3, 1, month=12, year=2025))
    assert set(snap.prices) == {"ETH"}
    assert snap.unavailable == {"XYZ": "no recorded price data for XYZ"}
    assert shipped.history("XYZ", _at(1, 0, month=2), 10) == []


def test_shipped_history_is_oldest_first_and_bounded(shipped: ReplaySource) -> None:
    until = _at(3, 5, month=12, year=2025)
    hist = shipped.history("ETH", until, 3)
    assert [t for t, _ in hist] == [_at(3, h, month=12, year=2025) for h in (3, 4, 5)]
    full = shipped.history("ETH", until, 100)
    assert len(full) == 5
    assert full[0] == (_at(3, 1, month=12, year=2025), Decimal("3003.2"))
    assert full[1][1] == Decimal("3015.84")
    assert shipped.history("ETH", until + timedelta(minutes=59), 1)[0][0] == until
    assert shipped.history("ETH", _at(1, 0, month=1, year=2025), 5) == []
    assert shipped.history("ETH", until, 0) == []


def test_recording_is_the_whole_history_with_float_closes(shipped: ReplaySource) -> None:
    times, closes, floats = shipped.recording("eth")
    everything = shipped.history("ETH", times[-1], len(times) + 1)
    assert list(zip(times, closes, strict=True)) == everything
    assert floats.tolist() == [float(c) for c in closes]
    assert closes[-1] == everything[-1][1]
    assert closes[-2:] == [p for _, p in everything[-2:]]
    with pytest.raises(IndexError):
        closes[len(closes)]
    unknown_times, unknown_closes, unknown_floats = shipped.recording("XYZ")
    assert (len(unknown_times), len(unknown_closes), len(unknown_floats)) == (0, 0, 0)


def test_full_replay_is_fast(shipped: ReplaySource) -> None:
    symbols = shipped.symbols_available()
    started = time.perf_counter()
    served = sum(len(shipped.fetch(symbols, now).prices) for now in shipped.timeline())
    elapsed = time.perf_counter() - started
    assert served == 7 * 1451
    assert elapsed < 5  # generous: it takes a few hundredths of a second


def test_fifteen_minute_interval(tmp_path: Path) -> None:
    _write(
        tmp_path, "OP", [("2026-01-05T10:00:00Z", "0.31"), ("2026-01-05T10:15:00Z", "0.32")], "15m"
    )
    source = ReplaySource(data_dir=tmp_path, interval="15m")
    assert source.interval_seconds == 900
    assert source.timeline() == [
        datetime(2026, 1, 5, 10, 15, tzinfo=UTC),
        datetime(2026, 1, 5, 10, 30, tzinfo=UTC),
    ]
    snap = source.fetch(["OP"], datetime(2026, 1, 5, 10, 30, tzinfo=UTC))
    assert snap.prices["OP"].price_usd == Decimal("0.32")


def test_shipped_fifteen_minute_data_loads() -> None:
    source = ReplaySource(interval="15m", symbols=["ETH", "UNI"])
    assert source.symbols_available() == ["ETH", "UNI"]
    first = source.timeline(symbols=["ETH"])[0]
    assert first == datetime(2026, 1, 2, 0, 15, tzinfo=UTC)
    assert "ETH" in source.fetch(["ETH"], first).prices


def test_gap_is_reported_not_filled(gappy: ReplaySource) -> None:
    gap = gappy.fetch(["ETH", "BTC"], _at(5, 13))
    assert "ETH" not in gap.prices
    assert gap.unavailable["ETH"] == (
        "no recorded bar closing at 2026-01-05 13:00 UTC (gap in recorded data)"
    )
    assert gap.prices["BTC"].price_usd == Decimal("50000")

    after = gappy.fetch(["ETH"], _at(5, 14))
    assert after.prices["ETH"].price_usd == Decimal("103.25")
    assert after.prices["ETH"].timestamp == _at(5, 14)


def test_off_grid_and_out_of_range_times(gappy: ReplaySource) -> None:
    off = gappy.fetch(["ETH"], datetime(2026, 1, 5, 12, 30, tzinfo=UTC))
    assert "not a 1h bar close time" in off.unavailable["ETH"]
    late = gappy.fetch(["ETH"], _at(6, 0))
    assert "recording covers 2026-01-05 11:00 .. 2026-01-05 14:00 UTC" in late.unavailable["ETH"]
    assert late.prices == {}


def test_closes_are_served_exactly_as_quantized(tmp_path: Path) -> None:
    """Kept as scaled integers, read back as the very Decimal `money.price` makes of the text."""
    fits = ["3003.2", "0.00001234", "3E+3", "42", "0.1234567890123456789999"]
    # 9 places on a 14-digit price: too long for int64, kept as Python ints, still exact.
    too_long = ["98765432109876.123456789", "2381.07", "0.000000000000000001"]
    for symbol, closes in (("ETH", fits), ("BTC", too_long)):
        _write(tmp_path, symbol, [(f"2026-01-05T{h:02d}:00:00Z", c) for h, c in enumerate(closes)])
    source = ReplaySource(data_dir=tmp_path)
    for symbol, closes in (("ETH", fits), ("BTC", too_long)):
        served = [str(p) for _, p in source.history(symbol, _at(6, 0), 100)]
        assert served == [str(money.price(c)) for c in closes]
        quote = source.fetch([symbol], _at(5, 2)).prices[symbol]
        assert str(quote.price_usd) == str(money.price(closes[1]))


def test_close_times_are_the_timeline_without_an_object_per_bar(gappy: ReplaySource) -> None:
    times = gappy.close_times()
    assert list(times) == gappy.timeline()
    assert (len(times), times[0], times[-1]) == (4, _at(5, 11), _at(5, 14))
    assert list(times[1:3]) == gappy.timeline(start=_at(5, 12), end=_at(5, 13))
    assert list(gappy.close_times(symbols=["ETH"])) == [_at(5, 11), _at(5, 12), _at(5, 14)]
    assert len(gappy.close_times(symbols=["XYZ"])) == 0


def test_timeline_finds_moments_by_binary_search(gappy: ReplaySource) -> None:
    times, closes, _ = gappy.recording("ETH")
    assert times.find(_at(5, 12)) == 1
    assert times.find(_at(5, 12).astimezone(timezone(timedelta(hours=2)))) == 1
    assert times.find(_at(5, 13)) is None
    assert times.find(_at(5, 15)) is None
    wanted = [_at(5, 10), _at(5, 11), _at(5, 13), _at(5, 14)]
    assert Timeline.of(wanted).micros.tolist() == [
        int((w - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) for w in wanted
    ]
    assert Timeline.of(times) is times
    rows = times.rows(Timeline.of(wanted))
    assert rows.tolist() == [-1, 0, -1, 2]
    assert closes.take(rows[rows >= 0]) == [Decimal("100.5"), Decimal("103.25")]
    assert closes.take(rows[rows >= 0]) == [closes[0], closes[2]]
    empty, _, _ = gappy.recording("XYZ")
    assert empty.rows(Timeline.of(wanted)).tolist() == [-1, -1, -1, -1]


def test_timeline_is_union_of_close_times(gappy: ReplaySource) -> None:
    assert gappy.timeline() == [_at(5, 11), _at(5, 12), _at(5, 13), _at(5, 14)]
    assert gappy.timeline(symbols=["ETH"]) == [_at(5, 11), _at(5, 12), _at(5, 14)]
    assert gappy.timeline(start=_at(5, 12), end=_at(5, 13)) == [_at(5, 12), _at(5, 13)]
    assert gappy.timeline(symbols=["XYZ"]) == []


def test_history_skips_the_gap(gappy: ReplaySource) -> None:
    assert gappy.history("ETH", _at(5, 14), 10) == [
        (_at(5, 11), Decimal("100.5")),
        (_at(5, 12), Decimal("101")),
        (_at(5, 14), Decimal("103.25")),
    ]
    # At the gap the latest known bar is the one before it, never an interpolated one.
    assert gappy.history("ETH", _at(5, 13), 1) == [(_at(5, 12), Decimal("101"))]


def test_symbols_filter_and_lowercase_lookup(tmp_path: Path) -> None:
    _write(tmp_path, "ETH", [("2026-01-05T10:00:00Z", "100")])
    _write(tmp_path, "BTC", [("2026-01-05T10:00:00Z", "200")])
    source = ReplaySource(data_dir=tmp_path, symbols=["eth", "LINK"])
    assert source.symbols_available() == ["ETH"]
    snap = source.fetch(["eth", "BTC"], _at(5, 11))
    assert snap.prices["eth"].price_usd == Decimal("100")
    assert snap.unavailable == {"BTC": "no recorded price data for BTC"}


def test_no_files_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PriceUnavailableError, match="no recorded price files"):
        ReplaySource(data_dir=tmp_path)


def test_naive_time_is_rejected(gappy: ReplaySource) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        gappy.fetch(["ETH"], datetime(2026, 1, 5, 12))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("2026-01-05T10:00:00Z", "abc")], "unreadable candle"),
        ([("not-a-time", "1")], "unreadable candle"),
        ([("2026-01-05T10:00:00Z", "0")], "non-positive close"),
        (
            [("2026-01-05T10:00:00Z", "1"), ("2026-01-05T10:00:00Z", "2")],
            "not increasing",
        ),
    ],
)
def test_malformed_files_are_rejected(
    tmp_path: Path, rows: list[tuple[str, str]], message: str
) -> None:
    _write(tmp_path, "ETH", rows)
    with pytest.raises(ValueError, match=message):
        ReplaySource(data_dir=tmp_path)


@pytest.mark.parametrize(("interval", "seconds"), [("15m", 900), ("1h", 3600), ("1d", 86400)])
def test_interval_to_seconds(interval: str, seconds: int) -> None:
    assert interval_to_seconds(interval) == seconds


@pytest.mark.parametrize("interval", ["0h", "1w", "h", "60"])
def test_bad_interval(interval: str) -> None:
    with pytest.raises(ValueError, match="unsupported candle interval"):
        interval_to_seconds(interval)


def test_a_file_is_read_once_until_it_changes(tmp_path: Path) -> None:
    """A bot's start-up check and its run share one reading; an edited file is read again."""
    _write(tmp_path, "ETH", [("2026-01-01T00:00:00Z", "100"), ("2026-01-01T01:00:00Z", "101")])
    first = ReplaySource(data_dir=tmp_path).recording("ETH")[2]
    again = ReplaySource(data_dir=tmp_path).recording("ETH")[2]
    assert again is first
    assert not first.flags.writeable  # shared, so nobody may change it

    _write(tmp_path, "ETH", [("2026-01-01T00:00:00Z", "100"), ("2026-01-01T01:00:00Z", "250.5")])
    edited = ReplaySource(data_dir=tmp_path).recording("ETH")[2]
    assert edited.tolist() == [100.0, 250.5]


def test_bars_after_a_gap_and_their_day_before_are_found(tmp_path: Path) -> None:
    # Hourly bars over two days with the 03:00 bar of the first missing: from there on, where a
    # bar would be without gaps is one bar off, and the day before may or may not be.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    hours = [h for h in range(48) if h != 3]
    rows = [((start + timedelta(hours=h)).isoformat(), str(100 + h)) for h in hours]
    _write(tmp_path, "ETH", rows)
    source = ReplaySource(data_dir=tmp_path)

    def quote(opened_hour: int) -> PriceQuote:
        return source.fetch(["ETH"], start + timedelta(hours=opened_hour + 1)).prices["ETH"]

    assert (quote(35).price_usd, quote(35).change_24h_percent) == (
        Decimal("135"),
        Decimal("21.6216"),
    )
    assert (quote(26).price_usd, quote(26).change_24h_percent) == (
        Decimal("126"),
        Decimal("23.5294"),
    )
    assert (quote(27).price_usd, quote(27).change_24h_percent) == (Decimal("127"), None)
    assert (quote(2).price_usd, quote(4).price_usd) == (Decimal("102"), Decimal("104"))


def test_timeline_finds_moments_before_and_after_a_gap() -> None:
    moments = [_at(5, h) for h in (10, 11, 12, 14, 15)]
    timeline = Timeline.of(moments)
    assert [timeline.find(m) for m in moments] == [0, 1, 2, 3, 4]
    assert [timeline.find(_at(5, h)) for h in (9, 13, 16)] == [None, None, None]
    assert Timeline.of(moments[:1]).find(moments[0]) == 0
