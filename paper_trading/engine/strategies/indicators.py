"""Technical indicators over a price series, oldest first.

Indicators steer decisions but never enter the ledger, so they are computed in float. Each one
looks only at the tail of the series it needs and returns None when the series is too short,
so a caller can tell "not enough history" from a real zero.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from decimal import Decimal
from itertools import pairwise, repeat
from operator import sub, truediv


def _tail(prices: Sequence[Decimal] | Sequence[float], count: int) -> list[float] | None:
    if len(prices) < count:
        return None
    # map in C: every swap reads a volatility over these.
    return list(map(float, prices[len(prices) - count :]))


def _check_period(period: int, minimum: int = 1) -> None:
    if period < minimum:
        raise ValueError(f"period must be at least {minimum}, got {period}")


def sma(prices: Sequence[Decimal], period: int) -> float | None:
    """Mean of the last `period` prices."""
    _check_period(period)
    tail = _tail(prices, period)
    return None if tail is None else statistics.fmean(tail)


def ema(prices: Sequence[Decimal], period: int) -> float | None:
    """Exponential moving average seeded with the SMA of the first `period` prices.

    Seeding with an SMA (rather than the first price) is the common charting convention, so the
    value matches what a trader sees on a chart given the same history.
    """
    _check_period(period)
    if len(prices) < period:
        return None
    values = [float(p) for p in prices]
    alpha = 2.0 / (period + 1)
    average = statistics.fmean(values[:period])
    for value in values[period:]:
        average += alpha * (value - average)
    return average


def rate_of_change(prices: Sequence[Decimal], period: int) -> float | None:
    """Momentum: percent change of the last price over the price `period` bars earlier."""
    _check_period(period)
    tail = _tail(prices, period + 1)
    if tail is None:
        return None
    return (tail[-1] / tail[0] - 1.0) * 100.0


def volatility(prices: Sequence[Decimal] | Sequence[float], period: int) -> float | None:
    """Realized volatility: sample stdev of the last `period` log returns, in percent per bar.

    Log returns make up and down moves of the same size count the same, whatever the price level.
    """
    _check_period(period, minimum=2)
    tail = _tail(prices, period + 1)
    if tail is None:
        return None
    # log(b / a) for each pair, and below (r - mean) ** 2, mapped in C: a swap asks for this.
    returns = list(map(math.log, map(truediv, tail[1:], tail[:-1])))
    # statistics.stdev is exact (rational arithmetic) and too slow for every tick of a replay.
    mean = statistics.fmean(returns)
    variance = math.fsum(map(pow, map(sub, returns, repeat(mean)), repeat(2))) / (len(returns) - 1)
    return math.sqrt(variance) * 100.0


def rsi(prices: Sequence[Decimal], period: int = 14) -> float | None:
    """Wilder's relative strength index (0-100) over the whole series given.

    Wilder smoothing carries memory of every bar, so the result depends on how much history is
    passed in; callers wanting reproducible values should pass a fixed-length window.
    """
    _check_period(period)
    if len(prices) < period + 1:
        return None
    values = [float(p) for p in prices]
    changes = [b - a for a, b in pairwise(values)]
    avg_gain = statistics.fmean(max(c, 0.0) for c in changes[:period])
    avg_loss = statistics.fmean(max(-c, 0.0) for c in changes[:period])
    for change in changes[period:]:
        avg_gain = (avg_gain * (period - 1) + max(change, 0.0)) / period
        avg_loss = (avg_loss * (period - 1) + max(-change, 0.0)) / period
    if avg_loss == 0.0:
        return 50.0 if avg_gain == 0.0 else 100.0
    return 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
