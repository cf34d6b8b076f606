"""Downloaded price points become replay candles that never reveal a price before its time."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from paper_trading.engine.prices.history_files import interval_for_days, write_candles
from paper_trading.engine.prices.replay import ReplaySource


def at(hour: int, minute: int = 0, second: int = 0, microsecond: int = 0) -> datetime:
    return datetime(2026, 1, 5, hour, minute, second, microsecond, tzinfo=UTC)


def rows(path: Path) -> list[list[str]]:
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.reader(handle))


@pytest.mark.parametrize(
    ("days", "interval"),
    [(1, "5m"), (2, "1h"), (30, "1h"), (90, "1h"), (91, "1d"), (365, "1d")],
)
def test_interval_follows_coingecko_granularity(days: int, interval: str) -> None:
    assert interval_for_days(days) == interval


def test_a_bar_closes_at_the_first_boundary_after_its_points_and_the_last_wins(
    tmp_path: Path,
) -> None:
    points = [(at(12, 0, 5), Decimal("3000.5")), (at(12, 37), Decimal("3012.25"))]
    path = write_candles(tmp_path, "ETH", "1h", points)
    assert path == tmp_path / "ETH_USDT-1h.csv.gz"

    replay = ReplaySource(data_dir=tmp_path, interval="1h")
    assert replay.symbols_available() == ["ETH"]
    assert replay.timeline() == [at(13)]
    assert replay.fetch(["ETH"], at(13)).prices["ETH"].price_usd == Decimal("3012.25")
    # Taken five seconds after 12:00: not known at 12:00.
    early = replay.fetch(["ETH"], at(12))
    assert early.prices == {}
    assert "ETH" in early.unavailable


def test_a_point_exactly_on_a_boundary_closes_at_that_boundary(tmp_path: Path) -> None:
    write_candles(tmp_path, "ETH", "1h", [(at(14), Decimal("2990"))])
    replay = ReplaySource(data_dir=tmp_path, interval="1h")
    assert replay.timeline() == [at(14)]
    assert replay.fetch(["ETH"], at(14)).prices["ETH"].price_usd == Decimal("2990")
    assert replay.fetch(["ETH"], at(15)).prices == {}


def test_a_fraction_of_a_second_past_a_boundary_belongs_to_the_next_bar(tmp_path: Path) -> None:
    # market_chart timestamps are in milliseconds: 14:00:00.250 was not known at 14:00.
    write_candles(tmp_path, "ETH", "1h", [(at(14, 0, 0, 250_000), Decimal("2990"))])
    replay = ReplaySource(data_dir=tmp_path, interval="1h")
    assert replay.timeline() == [at(15)]
    assert replay.fetch(["ETH"], at(14)).prices == {}


@pytest.mark.parametrize("hours", [2, -5])
def test_points_in_another_time_zone_land_in_the_same_utc_bar(tmp_path: Path, hours: int) -> None:
    local = at(12, 37).astimezone(timezone(timedelta(hours=hours)))
    write_candles(tmp_path, "ETH", "1h", [(local, Decimal("3012.25"))])
    assert rows(tmp_path / "ETH_USDT-1h.csv.gz")[1][0] == "2026-01-05T12:00:00Z"
    replay = ReplaySource(data_dir=tmp_path, interval="1h")
    assert replay.timeline() == [at(13)]


def test_file_format_is_one_flat_candle_per_bar_in_time_order(tmp_path: Path) -> None:
    points = [
        (at(13, 10), Decimal("2")),  # out of order on purpose
        (at(11, 59, 59), Decimal("1")),
        (at(13, 50), Decimal("3")),
    ]
    path = write_candles(tmp_path / "new" / "folder", "BTC", "1h", points)
    assert path.parent.is_dir()
    assert rows(path) == [
        ["timestamp", "open", "high", "low", "close", "volume"],
        ["2026-01-05T11:00:00Z", "1", "1", "1", "1", "0"],
        ["2026-01-05T13:00:00Z", "3", "3", "3", "3", "0"],
    ]
    replay = ReplaySource(data_dir=path.parent, interval="1h")
    assert replay.history("BTC", at(14), 10) == [(at(12), Decimal(1)), (at(14), Decimal(3))]
    gap = replay.fetch(["BTC"], at(13))
    assert gap.prices == {}
    assert "gap" in gap.unavailable["BTC"]


def test_five_minute_bars(tmp_path: Path) -> None:
    points = [
        (at(12, 3, 30), Decimal("10")),
        (at(12, 5), Decimal("11")),
        (at(12, 9), Decimal("12")),
    ]
    write_candles(tmp_path, "ETH", "5m", points)
    replay = ReplaySource(data_dir=tmp_path, interval="5m")
    assert replay.history("ETH", at(13), 10) == [
        (at(12, 5), Decimal("11")),
        (at(12, 10), Decimal("12")),
    ]


@pytest.mark.parametrize(
    "price",
    [
        Decimal("3012.345678901234567891"),
        Decimal("0.000000012345678901"),
        Decimal("97000"),
        Decimal("1E+2"),
    ],
)
def test_decimal_prices_round_trip_exactly(tmp_path: Path, price: Decimal) -> None:
    path = write_candles(tmp_path, "PEPE", "1h", [(at(12, 30), price)])
    assert rows(path)[1][4] == str(price)
    replayed = ReplaySource(data_dir=tmp_path, interval="1h").fetch(["PEPE"], at(13))
    assert replayed.prices["PEPE"].price_usd == price
