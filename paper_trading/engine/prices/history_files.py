"""Write downloaded price points in the replay format (gzip CSV candles).

CoinGecko's market chart gives one price per point, not candles: each point becomes a bar whose
open, high, low and close are that price, closing at the first bar boundary at or after the
point's time, so a replay never knows a price before CoinGecko reported it.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from paper_trading.engine.prices.replay import candle_file, interval_to_seconds


def interval_for_days(days: int) -> str:
    """CoinGecko's automatic granularity: 5-minutely for 1 day, hourly to 90 days, daily beyond."""
    if days <= 1:
        return "5m"
    if days <= 90:
        return "1h"
    return "1d"


def write_candles(
    folder: Path, price_symbol: str, interval: str, points: Sequence[tuple[datetime, Decimal]]
) -> Path:
    """One bar per interval (the last point in it wins); returns the file written."""
    step = interval_to_seconds(interval)
    bars: dict[datetime, Decimal] = {}
    for moment, price in points:
        epoch = math.ceil(moment.timestamp())  # 13:00:00.250 is not known at 13:00
        close = -(-epoch // step) * step  # round up to the boundary
        opened = datetime.fromtimestamp(close - step, tz=UTC)  # the file's stamps are UTC
        bars[opened] = price
    folder.mkdir(parents=True, exist_ok=True)
    path = candle_file(folder, price_symbol, interval)
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for opened in sorted(bars):
            price = bars[opened]
            stamp = opened.strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([stamp, price, price, price, price, 0])
    return path
