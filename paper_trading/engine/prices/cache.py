"""One upstream call per TTL window per machine, whatever the number of bots.

`CachedPriceSource` wraps a bulk source (CoinGecko) with a store shared by every bot process on
the machine (Django's cache: files by default, Redis when configured). A miss takes a
machine-wide lock, re-reads the store (another bot may just have fetched), and only then calls
upstream, for every token at once. Calls are also kept under a token-bucket rate, and an
upstream failure backs off exponentially with jitter; while it does, callers get a typed error
that says why and when the next try is, never an invented price.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from paper_trading.engine.prices.feed import (
    PriceQuote,
    PriceSnapshot,
    PriceUnavailableError,
    feed_problem,
)

logger = logging.getLogger("paper_trading.prices")


class BulkPriceSource(Protocol):
    name: str

    def fetch_all(self, now: datetime) -> PriceSnapshot:
        """Every price the source can give, in one upstream call."""
        ...

    def symbols_available(self) -> list[str]: ...


class SharedStore(Protocol):
    """Key-value storage and a lock shared by all bots on the machine."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]: ...

    def set_many(self, values: Mapping[str, Any], timeout: float) -> None: ...

    def lock(self, name: str, timeout: float) -> AbstractContextManager[None]: ...


class PriceFeedBackoffError(PriceUnavailableError):
    """Upstream failed recently; we wait before asking again."""

    def __init__(self, reason: str, retry_in_seconds: float) -> None:
        self.reason = reason
        self.retry_in_seconds = retry_in_seconds
        super().__init__(f"{reason}, retrying in {max(1, round(retry_in_seconds))} s")


@dataclass
class FeedStats:
    """Counters for the metrics endpoint and the [PRICE MANAGER] log line."""

    upstream_calls: int = 0
    cache_hits: int = 0
    errors: int = 0
    rate_limited: int = 0
    last_latency_ms: float = 0.0


_BUCKET = "bucket"
_BACKOFF = "backoff"


class CachedPriceSource:
    def __init__(
        self,
        inner: BulkPriceSource,
        store: SharedStore,
        *,
        ttl_seconds: float = 30,
        calls_per_minute: float = 30,
        base_backoff_seconds: float = 5,
        max_backoff_seconds: float = 300,
        lock_timeout_seconds: float = 60,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.store = store
        self.ttl = ttl_seconds
        self.calls_per_minute = calls_per_minute
        self.base_backoff = base_backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.lock_timeout = lock_timeout_seconds
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = FeedStats()
        self._prefix = f"prices:{inner.name}:"

    def symbols_available(self) -> list[str]:
        return self.inner.symbols_available()

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        return []

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        cached = self._fresh(symbols)
        if cached is not None:
            self.stats.cache_hits += 1
            logger.debug("[BULK CACHE HIT] %d prices from the shared cache", len(symbols))
            return cached
        with self.store.lock(self._prefix + "fetch", self.lock_timeout):
            cached = self._fresh(symbols)  # someone else fetched while we waited
            if cached is not None:
                self.stats.cache_hits += 1
                logger.debug("[BULK CACHE HIT] %d prices after waiting", len(symbols))
                return cached
            self._check_backoff()
            self._take_token()
            self._fetch_upstream(now)
        result = self._fresh(symbols, require_fresh=False)
        assert result is not None
        return result

    # -- the shared state -------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return self._prefix + name

    def _fresh(self, symbols: Sequence[str], require_fresh: bool = True) -> PriceSnapshot | None:
        keys = [self._key("symbol:" + s) for s in symbols] + [self._key("fetched_at")]
        values = self.store.get_many(keys)
        fetched_at = values.get(self._key("fetched_at"))
        if fetched_at is None or (require_fresh and self.clock() - fetched_at >= self.ttl):
            return None
        prices: dict[str, PriceQuote] = {}
        unavailable: dict[str, str] = {}
        for symbol in symbols:
            entry = values.get(self._key("symbol:" + symbol))
            if entry is None:
                unavailable[symbol] = f"no {self.name} price for {symbol} in the last fetch"
            elif "missing" in entry:
                unavailable[symbol] = entry["missing"]
            else:
                prices[symbol] = PriceQuote(
                    symbol=symbol,
                    price_usd=Decimal(entry["price"]),
                    timestamp=datetime.fromisoformat(entry["at"]),
                    source=self.name,
                    change_24h_percent=Decimal(entry["change"]) if entry["change"] else None,
                )
        stamp = datetime.fromtimestamp(fetched_at, tz=UTC)
        return PriceSnapshot(stamp, self.name, prices, unavailable)

    def _check_backoff(self) -> None:
        state = self.store.get_many([self._key(_BACKOFF)]).get(self._key(_BACKOFF))
        if state and self.clock() < state["until"]:
            self.stats.rate_limited += 1
            raise PriceFeedBackoffError(state["reason"], state["until"] - self.clock())

    def _take_token(self) -> None:
        now = self.clock()
        key = self._key(_BUCKET)
        capacity = max(1.0, self.calls_per_minute)
        state = self.store.get_many([key]).get(key) or {"tokens": capacity, "at": now}
        tokens = min(capacity, state["tokens"] + (now - state["at"]) * self.calls_per_minute / 60)
        if tokens < 1:
            self.stats.rate_limited += 1
            wait = (1 - tokens) * 60 / self.calls_per_minute
            raise PriceFeedBackoffError(
                f"price feed paused: local limit of {self.calls_per_minute:g} calls a minute",
                wait,
            )
        self.store.set_many({key: {"tokens": tokens - 1, "at": now}}, timeout=3600)

    def _fetch_upstream(self, now: datetime) -> None:
        started = time.perf_counter()
        self.stats.upstream_calls += 1
        try:
            snapshot = self.inner.fetch_all(now)
        except PriceUnavailableError as exc:
            self.stats.errors += 1
            raise self._back_off(exc) from exc
        latency = (time.perf_counter() - started) * 1000
        self.stats.last_latency_ms = latency
        values: dict[str, Any] = {
            self._key("symbol:" + s): {
                "price": str(q.price_usd),
                "at": q.timestamp.isoformat(),
                "change": str(q.change_24h_percent) if q.change_24h_percent is not None else "",
            }
            for s, q in snapshot.prices.items()
        }
        values.update(
            {
                self._key("symbol:" + s): {"missing": reason}
                for s, reason in snapshot.unavailable.items()
            }
        )
        values[self._key("fetched_at")] = self.clock()
        values[self._key(_BACKOFF)] = None
        # Entries outlive the TTL so a caller can still say *how* stale a price is.
        self.store.set_many(values, timeout=max(self.ttl * 20, 600))
        logger.info(
            "[BULK UPDATE] updated %d/%d prices in 1 API call (%.0f ms)",
            len(snapshot.prices),
            len(snapshot.prices) + len(snapshot.unavailable),
            latency,
        )
        logger.info(
            "[PRICE MANAGER] calls %d, cache hits %d, errors %d",
            self.stats.upstream_calls,
            self.stats.cache_hits,
            self.stats.errors,
        )

    def _back_off(self, error: PriceUnavailableError) -> PriceFeedBackoffError:
        key = self._key(_BACKOFF)
        previous = self.store.get_many([key]).get(key) or {"attempt": 0}
        attempt = int(previous.get("attempt", 0)) + 1
        retry_after = getattr(error, "retry_after_seconds", None)
        # The exponent is bounded: after ~1000 failures 2**attempt no longer fits in a float.
        delay = min(self.max_backoff, self.base_backoff * 2 ** min(attempt - 1, 64))
        delay *= self.rng.uniform(0.5, 1.5)  # jitter: bots on many machines do not retry in step
        if retry_after:
            delay = max(delay, float(retry_after))
        reason = feed_problem(error)
        state = {"until": self.clock() + delay, "attempt": attempt, "reason": reason}
        # Kept past its end (so the attempt count survives) even when Retry-After is long.
        self.store.set_many({key: state}, timeout=max(self.max_backoff, delay) * 2)
        logger.warning("[PRICE] %s; next try in %.0f s", reason, delay)
        return PriceFeedBackoffError(reason, delay)
