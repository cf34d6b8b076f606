"""Synthetic prices must be reproducible from the seed alone, whatever the call order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine import money
from paper_trading.engine.prices.synthetic import DEFAULT_START_PRICES, SyntheticSource

START = datetime(2026, 1, 1, tzinfo=UTC)


def _closes(source: SyntheticSource, symbol: str, count: int) -> list[Decimal]:
    until = START + (count - 1) * source.step
    return [price for _, price in source.history(symbol, until, count)]


def test_docstring_says_tests_only() -> None:
    import paper_trading.engine.prices.synthetic as module

    assert module.__doc__ is not None
    assert "TESTS ONLY" in module.__doc__


def test_first_tick_is_the_start_price() -> None:
    source = SyntheticSource(seed=1, start=START)
    snap = source.fetch(["ETH", "BTC"], START)
    assert snap.prices["ETH"].price_usd == DEFAULT_START_PRICES["ETH"]
    assert snap.prices["ETH"].timestamp == START
    assert snap.prices["ETH"].source == "synthetic"
    assert snap.prices["ETH"].change_24h_percent is None
    assert snap.source == "synthetic"
    assert set(source.symbols_available()) >= {"ETH", "BTC", "UNI", "LINK", "AAVE", "ARB", "OP"}


def test_same_seed_same_prices_regardless_of_call_order() -> None:
    a = SyntheticSource(seed=7, start=START)
    b = SyntheticSource(seed=7, start=START)
    # a walks ETH far ahead before touching BTC; b walks BTC first, then both tick by tick.
    a_eth = _closes(a, "ETH", 300)
    a_btc = _closes(a, "BTC", 300)
    b_btc = _closes(b, "BTC", 300)
    b_eth = [b.fetch(["BTC", "ETH"], now).prices["ETH"].price_usd for now in b.timeline(300)]
    assert a_eth == b_eth
    assert a_btc == b_btc
    assert a_eth != a_btc


def test_different_seeds_differ() -> None:
    one = _closes(SyntheticSource(seed=1, start=START), "ETH", 50)
    two = _closes(SyntheticSource(seed=2, start=START), "ETH", 50)
    assert one[0] == two[0]
    assert one[1:] != two[1:]


def test_prices_are_quantized_decimals_and_positive() -> None:
    source = SyntheticSource(seed=3, start=START, volatility=0.5)
    for _, price in source.history("ARB", START + 999 * source.step, 1000):
        assert isinstance(price, Decimal)
        assert price > 0
        assert price == money.price(price)


def test_ten_thousand_ticks_complete() -> None:
    source = SyntheticSource(seed=11, start=START)
    symbols = source.symbols_available()
    served = 0
    for now in source.timeline(10_000):
        served += len(source.fetch(symbols, now).prices)
    assert served == 10_000 * len(symbols)


def test_change_24h_uses_the_tick_a_day_earlier() -> None:
    source = SyntheticSource(seed=5, start=START)
    now = START + timedelta(days=1, hours=2)
    quote = source.fetch(["ETH"], now).prices["ETH"]
    before = source.fetch(["ETH"], now - timedelta(days=1)).prices["ETH"].price_usd
    expected = money.ratio((quote.price_usd - before) * 100 / before)
    assert quote.change_24h_percent == expected


def test_no_change_24h_when_a_day_is_not_whole_ticks() -> None:
    source = SyntheticSource(seed=5, start=START, step_seconds=7 * 3600)
    assert source.fetch(["ETH"], START + 7 * source.step).prices["ETH"].change_24h_percent is None


def test_off_grid_before_start_and_unknown_are_unavailable() -> None:
    source = SyntheticSource(seed=1, start=START, start_prices={"ETH": Decimal("2000")})
    off = source.fetch(["ETH"], START + timedelta(minutes=30))
    assert off.prices == {}
    assert "not a synthetic tick" in off.unavailable["ETH"]
    early = source.fetch(["ETH", "BTC"], START - source.step)
    assert "before the synthetic series starts" in early.unavailable["ETH"]
    assert early.unavailable["BTC"] == "no synthetic series for BTC"
    assert source.history("BTC", START, 5) == []
    assert source.history("ETH", START - source.step, 5) == []
    assert source.history("ETH", START, 0) == []


def test_history_is_oldest_first_and_matches_fetch() -> None:
    source = SyntheticSource(seed=9, start=START, step_seconds=900)
    until = START + 10 * source.step + timedelta(minutes=5)
    hist = source.history("LINK", until, 4)
    assert [t for t, _ in hist] == source.timeline(11)[-4:]
    for moment, price in hist:
        assert source.fetch(["LINK"], moment).prices["LINK"].price_usd == price


def test_timeline_is_on_the_grid() -> None:
    source = SyntheticSource(seed=1, start=START, step_seconds=60)
    assert source.timeline(3) == [START, START + timedelta(minutes=1), START + timedelta(minutes=2)]
    assert source.interval_seconds == 60


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SyntheticSource(1, START, step_seconds=0), "step_seconds"),
        (lambda: SyntheticSource(1, START, volatility=-0.1), "volatility"),
        (lambda: SyntheticSource(1, START, start_prices={"ETH": Decimal(0)}), "start price"),
        (lambda: SyntheticSource(1, datetime(2026, 1, 1)), "timezone-aware"),
    ],
)
def test_invalid_arguments(build: Callable[[], SyntheticSource], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()
