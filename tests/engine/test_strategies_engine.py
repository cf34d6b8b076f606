"""Indicator strategies inside the analyzer: precomputed over a replay, recomputed live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import pytest

from paper_trading.engine.backtest import BacktestResult, run_backtest
from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.feed import PriceSnapshot
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.base import FloatArray
from paper_trading.engine.strategies.ma_crossover import MACrossover

TICKS = 300


class LiveLike:
    """The same recorded prices served without the whole series: the live code path."""

    name = "live-like"

    def __init__(self, inner: ReplaySource) -> None:
        self.inner = inner

    def symbols_available(self) -> list[str]:
        return self.inner.symbols_available()

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        return self.inner.fetch(symbols, now)

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        return self.inner.history(symbol, until, limit)


def run(source: ReplaySource | LiveLike, timeline: list[datetime]) -> BacktestResult:
    return run_backtest(
        chain=get_chain("base"),
        source=source,
        timeline=timeline,
        bar_seconds=3600,
        strategy=MACrossover(5, 20, 20.0),
    )


def test_precomputed_and_live_indicators_make_the_same_trades() -> None:
    replay = ReplaySource(symbols=["ETH", "BTC", "LINK"])
    timeline = replay.timeline()[: 21 + TICKS]
    recorded = run(replay, timeline)
    live = run(LiveLike(replay), timeline)
    assert len(recorded.trades) > 4
    assert [(t.created_at, t.symbol, t.side, t.amount_in) for t in recorded.trades] == [
        (t.created_at, t.symbol, t.side, t.amount_in) for t in live.trades
    ]
    assert recorded.portfolio == live.portfolio


class Misaligned(MACrossover):
    """Drops the warm-up NaNs, so its values no longer line up with the bars."""

    def indicators(self, closes: FloatArray) -> Mapping[str, FloatArray]:
        return {
            name: values[self.slow_period :] for name, values in super().indicators(closes).items()
        }


@pytest.mark.parametrize("live", [False, True])
def test_indicator_arrays_must_line_up_with_the_closes(live: bool) -> None:
    replay = ReplaySource(symbols=["ETH"])
    with pytest.raises(ValueError, match=r"returned \d+ values of 'sma_fast' for \d+ closes"):
        run_backtest(
            chain=get_chain("base"),
            source=LiveLike(replay) if live else replay,
            timeline=replay.timeline()[:40],
            bar_seconds=3600,
            strategy=Misaligned(5, 20, 20.0),
        )
