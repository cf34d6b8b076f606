"""Staleness is enforced on top of every source: an old price is unavailable, never used."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from paper_trading.engine.prices.feed import PriceFeedService, PriceQuote, PriceSnapshot
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.prices.synthetic import SyntheticSource

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


class _FixedSource:
    """Returns the same quotes whatever `now` is, like an API whose data stopped updating."""

    name = "fixed"

    def __init__(self, quotes: dict[str, PriceQuote]) -> None:
        self.quotes = quotes

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        prices = {s: q for s, q in self.quotes.items() if s in symbols}
        return PriceSnapshot(now, self.name, prices, {})

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        return [(q.timestamp, q.price_usd) for q in self.quotes.values() if q.symbol == symbol][
            :limit
        ]


def _quote(symbol: str, age: timedelta) -> PriceQuote:
    return PriceQuote(symbol, Decimal("100"), NOW - age, "fixed")


def test_stale_quote_becomes_unavailable() -> None:
    source = _FixedSource(
        {"ETH": _quote("ETH", timedelta(minutes=5)), "BTC": _quote("BTC", timedelta(hours=3))}
    )
    feed = PriceFeedService(source, max_age=timedelta(minutes=30))
    snap = feed.get_prices(["ETH", "BTC", "UNI"], NOW)
    assert set(snap.prices) == {"ETH"}
    assert snap.unavailable["BTC"].startswith("stale: last price 2026-01-05 09:00 UTC")
    assert "3 h old (limit 30 min)" in snap.unavailable["BTC"]
    assert snap.unavailable["UNI"] == "no price returned by the source"
    assert feed.source_name == "fixed"
    assert feed.history("ETH", NOW, 5) == [(NOW - timedelta(minutes=5), Decimal("100"))]


def test_quote_exactly_at_the_limit_is_fresh() -> None:
    feed = PriceFeedService(
        _FixedSource({"ETH": _quote("ETH", timedelta(seconds=60))}), max_age=timedelta(seconds=60)
    )
    assert "ETH" in feed.get_prices(["ETH"], NOW).prices


def test_quote_dated_beyond_the_limit_in_the_future_is_not_trusted() -> None:
    source = _FixedSource(
        {"ETH": _quote("ETH", -timedelta(seconds=60)), "BTC": _quote("BTC", -timedelta(hours=2))}
    )
    feed = PriceFeedService(source, max_age=timedelta(seconds=60))
    snap = feed.get_prices(["ETH", "BTC"], NOW)
    assert set(snap.prices) == {"ETH"}  # a minute ahead is clock skew within the limit
    assert snap.unavailable["BTC"] == (
        "not trusted: last price is dated 2026-01-05 14:00 UTC, 2 h ahead of this clock "
        "(limit 60 s)"
    )


def test_replay_through_the_feed_keeps_gap_reasons(tmp_path: Path) -> None:
    rows = "2026-01-05T10:00:00Z,1,1,1,100,1\n2026-01-05T12:00:00Z,1,1,1,102,1\n"
    with gzip.open(tmp_path / "ETH_USDT-1h.csv.gz", "wt", encoding="utf-8") as f:
        f.write("timestamp,open,high,low,close,volume\n" + rows)
    feed = PriceFeedService(ReplaySource(data_dir=tmp_path), max_age=timedelta(hours=2))

    fresh = feed.get_prices(["ETH"], datetime(2026, 1, 5, 11, tzinfo=UTC))
    assert fresh.prices["ETH"].price_usd == Decimal("100")
    assert fresh.source == "replay"

    gap = feed.get_prices(["ETH", "XYZ"], datetime(2026, 1, 5, 12, tzinfo=UTC))
    assert gap.prices == {}
    assert "gap in recorded data" in gap.unavailable["ETH"]
    assert gap.unavailable["XYZ"] == "no recorded price data for XYZ"
    assert feed.history("ETH", datetime(2026, 1, 5, 13, tzinfo=UTC), 5) == [
        (datetime(2026, 1, 5, 11, tzinfo=UTC), Decimal("100")),
        (datetime(2026, 1, 5, 13, tzinfo=UTC), Decimal("102")),
    ]


def test_replayed_bar_goes_stale_when_asked_later() -> None:
    """A source that returns a bar for a later `now` would be caught by the staleness rule."""
    bar_close = datetime(2025, 12, 3, 1, tzinfo=UTC)
    quote = ReplaySource(symbols=["ETH"]).fetch(["ETH"], bar_close).prices["ETH"]
    feed = PriceFeedService(_FixedSource({"ETH": quote}), max_age=timedelta(hours=1))
    assert "ETH" in feed.get_prices(["ETH"], bar_close + timedelta(hours=1)).prices
    later = feed.get_prices(["ETH"], bar_close + timedelta(hours=1, seconds=1))
    assert later.unavailable["ETH"].startswith("stale: last price 2025-12-03 01:00 UTC")


@pytest.mark.parametrize("step_seconds", [60, 3600])
def test_synthetic_through_the_feed_is_always_fresh(step_seconds: int) -> None:
    source = SyntheticSource(seed=1, start=NOW, step_seconds=step_seconds)
    feed = PriceFeedService(source, max_age=timedelta(seconds=1))
    for now in source.timeline(5):
        snap = feed.get_prices(["ETH", "BTC"], now)
        assert set(snap.prices) == {"ETH", "BTC"}
        assert snap.unavailable == {}
