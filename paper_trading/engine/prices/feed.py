"""The one interface every price source implements, and the staleness rule on top of it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from paper_trading.engine.frozen import set_at_once


@set_at_once
@dataclass(frozen=True)
class PriceQuote:
    symbol: str
    price_usd: Decimal
    #: When the source observed this price (bar close time, or the API's last_updated_at).
    timestamp: datetime
    source: str
    change_24h_percent: Decimal | None = None


@set_at_once
@dataclass(frozen=True)
class PriceSnapshot:
    """All requested prices from one bulk call, plus why any are missing."""

    timestamp: datetime
    source: str
    prices: Mapping[str, PriceQuote]
    #: Symbol -> human-readable reason ("no recorded bar at 2026-01-05 13:00 (gap)", "stale: ...").
    unavailable: Mapping[str, str] = field(default_factory=dict)


class PriceUnavailableError(Exception):
    """The source could not produce prices at all; the message says why, for people."""


def feed_problem(error: Exception) -> str:
    """The one wording of a feed outage: "price feed unavailable: <why>"."""
    text = str(error)
    return text if text.startswith("price feed") else f"price feed unavailable: {text}"


class PriceSource(Protocol):
    #: "replay", "synthetic", "coingecko", ...
    name: str

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        """Prices of all `symbols` (price symbols such as ETH, BTC) in one call."""
        ...

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        """Up to `limit` recorded prices at or before `until`, oldest first (warm-up)."""
        ...


class PriceHistory(Protocol):
    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        """Up to `limit` recorded prices at or before `until`, oldest first."""
        ...


class PriceFeedService:
    """Bulk prices with a staleness limit: an old price is reported unavailable, never used, and
    so is one dated further in the future than that limit.

    History for warming up strategies comes from the source itself (a replay has it) or from
    `history` (live prices: what the app recorded earlier).
    """

    def __init__(
        self, source: PriceSource, max_age: timedelta, history: PriceHistory | None = None
    ) -> None:
        self.source = source
        self.max_age = max_age
        self._history = history or source

    @property
    def source_name(self) -> str:
        return self.source.name

    def get_prices(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        snapshot = self.source.fetch(symbols, now)
        fresh: dict[str, PriceQuote] = {}
        unavailable = dict(snapshot.unavailable)
        for symbol, quote in snapshot.prices.items():
            age = now - quote.timestamp
            if age > self.max_age:
                unavailable[symbol] = (
                    f"stale: last price {quote.timestamp:%Y-%m-%d %H:%M} UTC is "
                    f"{_human(age)} old (limit {_human(self.max_age)})"
                )
            elif -age > self.max_age:
                # A clock that far ahead is a broken source; its price could be of any age.
                unavailable[symbol] = (
                    f"not trusted: last price is dated {quote.timestamp:%Y-%m-%d %H:%M} UTC, "
                    f"{_human(-age)} ahead of this clock (limit {_human(self.max_age)})"
                )
            else:
                fresh[symbol] = quote
        for symbol in symbols:
            if symbol not in fresh and symbol not in unavailable:
                unavailable[symbol] = "no price returned by the source"
        return PriceSnapshot(snapshot.timestamp, snapshot.source, fresh, unavailable)

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        return self._history.history(symbol, until, limit)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
