"""Seeded random-walk prices, FOR TESTS ONLY.

These prices are invented. They exist so tests and benchmarks can run long, reproducible
scenarios without network or recorded data; the product must never show them as real
market prices.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from paper_trading.engine import money
from paper_trading.engine.prices.feed import PriceQuote, PriceSnapshot

#: Rough early-2026 levels, so synthetic runs exercise realistic magnitudes and decimals.
DEFAULT_START_PRICES: Mapping[str, Decimal] = {
    "ETH": Decimal("3000"),
    "BTC": Decimal("90000"),
    "UNI": Decimal("6"),
    "LINK": Decimal("13"),
    "AAVE": Decimal("170"),
    "ARB": Decimal("0.2"),
    "OP": Decimal("0.3"),
    "MATIC": Decimal("0.2"),
}

#: Floor that keeps a price positive after quantization, however wild the walk.
_MIN_PRICE = Decimal(1).scaleb(-money.PRICE_PLACES)
_DAY_SECONDS = 86_400


class _Walk:
    """One symbol's path; its own RNG makes it independent of which symbols are asked first."""

    def __init__(self, seed: int, symbol: str, start_price: Decimal, volatility: float) -> None:
        self._rng = random.Random(f"{seed}:{symbol}")
        self._volatility = volatility
        # The -sigma^2/2 drift keeps the expected price flat rather than drifting upward.
        self._drift = -volatility * volatility / 2
        self.prices = [money.price(start_price)]

    def up_to(self, index: int) -> list[Decimal]:
        while len(self.prices) <= index:
            shock = self._rng.gauss(0.0, 1.0)
            factor = Decimal(repr(math.exp(self._drift + self._volatility * shock)))
            nxt = money.price(money.mul(self.prices[-1], factor))
            self.prices.append(max(nxt, _MIN_PRICE))
        return self.prices


class SyntheticSource:
    """A geometric random walk per symbol on a fixed tick grid (start + k * step)."""

    name = "synthetic"

    def __init__(
        self,
        seed: int,
        start: datetime,
        step_seconds: int = 3600,
        start_prices: Mapping[str, Decimal] | None = None,
        volatility: float = 0.01,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if step_seconds <= 0:
            raise ValueError(f"step_seconds must be positive, got {step_seconds}")
        if volatility < 0:
            raise ValueError(f"volatility must not be negative, got {volatility}")
        prices = DEFAULT_START_PRICES if start_prices is None else start_prices
        for symbol, value in prices.items():
            if value <= 0:
                raise ValueError(f"start price of {symbol} must be positive, got {value}")
        self.seed = seed
        self.start = start.astimezone(UTC)
        self.step = timedelta(seconds=step_seconds)
        self._walks = {s.upper(): _Walk(seed, s.upper(), p, volatility) for s, p in prices.items()}

    @property
    def interval_seconds(self) -> int:
        return int(self.step.total_seconds())

    def symbols_available(self) -> list[str]:
        return list(self._walks)

    def timeline(self, count: int) -> list[datetime]:
        return [self.start + k * self.step for k in range(count)]

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        index, off_grid = divmod(now - self.start, self.step)
        prices: dict[str, PriceQuote] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            walk = self._walks.get(symbol.upper())
            if walk is None:
                unavailable[symbol] = f"no synthetic series for {symbol}"
            elif index < 0:
                unavailable[symbol] = (
                    f"before the synthetic series starts ({self.start:%Y-%m-%d %H:%M} UTC)"
                )
            elif off_grid:
                unavailable[symbol] = (
                    f"{now:%Y-%m-%d %H:%M:%S} is not a synthetic tick "
                    f"(every {self.interval_seconds} s from {self.start:%Y-%m-%d %H:%M} UTC)"
                )
            else:
                series = walk.up_to(index)
                prices[symbol] = PriceQuote(
                    symbol=symbol,
                    price_usd=series[index],
                    timestamp=self.start + index * self.step,
                    source=self.name,
                    change_24h_percent=self._change_24h(series, index),
                )
        return PriceSnapshot(
            timestamp=now, source=self.name, prices=prices, unavailable=unavailable
        )

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        walk = self._walks.get(symbol.upper())
        last = (until - self.start) // self.step
        if walk is None or last < 0 or limit <= 0:
            return []
        first = max(0, last - limit + 1)
        series = walk.up_to(last)
        return [(self.start + k * self.step, series[k]) for k in range(first, last + 1)]

    def _change_24h(self, series: list[Decimal], index: int) -> Decimal | None:
        if _DAY_SECONDS % self.interval_seconds:
            return None
        before = index - _DAY_SECONDS // self.interval_seconds
        if before < 0:
            return None
        old, new = series[before], series[index]
        return money.ratio(
            money.div(money.mul(money.CONTEXT.subtract(new, old), money.HUNDRED), old)
        )
