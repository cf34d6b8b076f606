"""The shared price cache: one upstream call per TTL for every bot, a rate limit, and backoff.

Everything runs on an injected clock and a seeded `random.Random`, against a real in-memory
implementation of the `SharedStore` protocol (entries expire on the same clock, one lock per name),
so no test sleeps.
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from paper_trading.engine.prices.cache import (
    BulkPriceSource,
    CachedPriceSource,
    PriceFeedBackoffError,
    SharedStore,
)
from paper_trading.engine.prices.feed import PriceQuote, PriceSnapshot, PriceUnavailableError

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
START = NOW.timestamp()
PRICES = {
    "ETH": Decimal("3012.345678901234567891"),
    "BTC": Decimal("97000.5"),
    "USDC": Decimal("0.999912"),
}
CHANGE = Decimal("-1.2345")


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryStore:
    """`SharedStore` in memory: values are copied in and out (as a serializing cache would),
    expire after their timeout on the injected clock, and each lock name is a `threading.Lock`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._data: dict[str, tuple[Any, float]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._requests = threading.Condition()
        #: How many times `lock` was entered (before the lock was granted).
        self.lock_requests = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        now = self._clock()
        found: dict[str, Any] = {}
        with self._guard:
            for key in keys:
                entry = self._data.get(key)
                if entry is not None and now < entry[1]:
                    found[key] = copy.deepcopy(entry[0])
        return found

    def set_many(self, values: Mapping[str, Any], timeout: float) -> None:
        expires = self._clock() + timeout
        with self._guard:
            for key, value in values.items():
                self._data[key] = (copy.deepcopy(value), expires)

    @contextmanager
    def lock(self, name: str, timeout: float) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with self._requests:
            self.lock_requests += 1
            self._requests.notify_all()
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"waited {timeout} s for {name}")
        try:
            yield
        finally:
            lock.release()

    def wait_for_lock_requests(self, count: int, timeout: float) -> bool:
        with self._requests:
            return self._requests.wait_for(lambda: self.lock_requests >= count, timeout)


class UpstreamDownError(PriceUnavailableError):
    pass


class UpstreamRateLimitedError(PriceUnavailableError):
    def __init__(self, retry_after_seconds: float) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"HTTP 429, retry after {retry_after_seconds:g} s")


class CountingSource:
    """A bulk upstream that counts its calls and fails on demand."""

    def __init__(
        self, missing: Mapping[str, str] | None = None, change: Decimal | None = CHANGE
    ) -> None:
        self.name = "fakegecko"
        self.change = change
        self.prices = dict(PRICES)
        self.missing = dict(missing or {})
        self.calls = 0
        self.failure: PriceUnavailableError | None = None
        #: Runs inside every call before it answers (to hold a call open in the thread test).
        self.before_answer: Callable[[], None] | None = None
        self._count_guard = threading.Lock()

    def fetch_all(self, now: datetime) -> PriceSnapshot:
        with self._count_guard:
            self.calls += 1
        if self.before_answer is not None:
            self.before_answer()
        if self.failure is not None:
            raise self.failure
        quotes = {
            symbol: PriceQuote(symbol, price, now - timedelta(seconds=7), self.name, self.change)
            for symbol, price in self.prices.items()
        }
        return PriceSnapshot(now, self.name, quotes, dict(self.missing))

    def symbols_available(self) -> list[str]:
        return sorted(self.prices)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock)


@pytest.fixture
def upstream() -> CountingSource:
    return CountingSource()


def make_source(
    upstream: BulkPriceSource,
    store: SharedStore,
    clock: FakeClock,
    *,
    ttl: float = 30,
    calls_per_minute: float = 600,
    base_backoff: float = 5.0,
    max_backoff: float = 300.0,
    seed: int = 1,
) -> CachedPriceSource:
    return CachedPriceSource(
        upstream,
        store,
        ttl_seconds=ttl,
        calls_per_minute=calls_per_minute,
        base_backoff_seconds=base_backoff,
        max_backoff_seconds=max_backoff,
        lock_timeout_seconds=5,
        clock=clock,
        rng=random.Random(seed),
    )


def fail_once(
    source: CachedPriceSource, symbols: Sequence[str] = ("ETH",)
) -> PriceFeedBackoffError:
    with pytest.raises(PriceFeedBackoffError) as caught:
        source.fetch(symbols, NOW)
    return caught.value


def shown_wait(seconds: float) -> str:
    """How `PriceFeedBackoffError` words a wait."""
    return f"retrying in {max(1, round(seconds))} s"


# -- caching --------------------------------------------------------------------------------


def test_first_call_fetches_then_serves_the_cache_until_the_ttl_ends(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, ttl=30)

    first = source.fetch(["ETH", "BTC"], NOW)
    assert upstream.calls == 1
    assert source.stats.upstream_calls == 1
    assert source.stats.cache_hits == 0
    assert source.stats.last_latency_ms >= 0
    assert first.source == "fakegecko"
    assert first.timestamp == datetime.fromtimestamp(START, tz=UTC)
    assert first.unavailable == {}
    assert first.prices["ETH"] == PriceQuote(
        "ETH", PRICES["ETH"], NOW - timedelta(seconds=7), "fakegecko", CHANGE
    )
    assert first.prices["BTC"].price_usd == PRICES["BTC"]

    for hit in range(1, 4):
        clock.advance(29.9 / 3)
        again = source.fetch(["ETH", "BTC"], NOW)
        assert again == first
        assert source.stats.cache_hits == hit
    assert upstream.calls == 1

    clock.advance(30 - 29.9)  # exactly one TTL after the fetch: stale
    source.fetch(["ETH", "BTC"], NOW)
    assert upstream.calls == 2
    assert source.stats.upstream_calls == 2
    assert source.stats.cache_hits == 3


def test_decimal_prices_survive_the_store_exactly(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    make_source(upstream, store, clock).fetch(list(PRICES), NOW)
    cached = make_source(upstream, store, clock).fetch(list(PRICES), NOW)
    assert upstream.calls == 1
    assert {s: q.price_usd for s, q in cached.prices.items()} == PRICES
    assert str(cached.prices["ETH"].price_usd) == "3012.345678901234567891"
    assert cached.prices["ETH"].change_24h_percent == CHANGE


def test_a_quote_without_a_24h_change_stays_without_one(
    clock: FakeClock, store: MemoryStore
) -> None:
    upstream = CountingSource(change=None)
    make_source(upstream, store, clock).fetch(["ETH"], NOW)
    cached = make_source(upstream, store, clock).fetch(["ETH"], NOW)
    assert upstream.calls == 1
    assert cached.prices["ETH"].change_24h_percent is None


def test_every_instance_on_the_store_shares_one_fetch(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    make_source(upstream, store, clock).fetch(["ETH"], NOW)
    other = make_source(upstream, store, clock)
    assert other.fetch(["ETH"], NOW).prices["ETH"].price_usd == PRICES["ETH"]
    assert other.stats.cache_hits == 1
    assert other.stats.upstream_calls == 0
    assert upstream.calls == 1


def test_fifty_concurrent_bots_make_a_single_upstream_call(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    bots = 50
    sources = [make_source(upstream, store, clock) for _ in range(bots)]
    start = threading.Barrier(bots, timeout=5)
    # Hold the one upstream call open until every bot has missed the cache and queued on the
    # lock: all 50 really are concurrent misses, and 49 of them must re-check and find prices.
    upstream.before_answer = lambda: (
        None if store.wait_for_lock_requests(bots, timeout=5) else pytest.fail("bots not queued")
    )

    def bot(source: CachedPriceSource) -> PriceSnapshot:
        start.wait()
        return source.fetch(["ETH", "BTC", "USDC"], NOW)

    with ThreadPoolExecutor(max_workers=bots) as pool:
        snapshots = list(pool.map(bot, sources))

    assert upstream.calls == 1
    assert store.lock_requests == bots
    assert sum(s.stats.upstream_calls for s in sources) == 1
    assert sum(s.stats.cache_hits for s in sources) == bots - 1
    assert all(snapshot == snapshots[0] for snapshot in snapshots)
    assert {s: q.price_usd for s, q in snapshots[0].prices.items()} == PRICES


def test_symbols_missing_upstream_are_unavailable_with_the_reason(
    clock: FakeClock, store: MemoryStore
) -> None:
    reason = "fakegecko has no price for pepe (delisted)"
    upstream = CountingSource(missing={"PEPE": reason})
    source = make_source(upstream, store, clock)

    for _ in range(2):  # the upstream call, then the cache hit: same answer
        snapshot = source.fetch(["ETH", "PEPE", "DOGE"], NOW)
        assert set(snapshot.prices) == {"ETH"}
        assert snapshot.unavailable == {
            "PEPE": reason,
            "DOGE": "no fakegecko price for DOGE in the last fetch",
        }
    assert upstream.calls == 1
    assert source.stats.cache_hits == 1


# -- the local rate limit -------------------------------------------------------------------


def test_token_bucket_refuses_the_third_call_in_a_minute_then_refills(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, ttl=0.001, calls_per_minute=2)
    source.fetch(["ETH"], NOW)
    clock.advance(1)
    source.fetch(["ETH"], NOW)
    assert upstream.calls == 2

    # The bucket is machine-wide: another bot sharing the store is refused too.
    other = make_source(upstream, store, clock, ttl=0.001, calls_per_minute=2)
    clock.advance(1)
    # 2 tokens, 2 spent, 2 s x 2/60 refilled: (1 - 1/15) x 30 s = 28 s to the next token.
    refused = fail_once(other)
    assert str(refused) == "price feed paused: local limit of 2 calls a minute, retrying in 28 s"
    assert refused.reason == "price feed paused: local limit of 2 calls a minute"
    assert refused.retry_in_seconds == pytest.approx(28)
    assert upstream.calls == 2
    assert other.stats.rate_limited == 1
    assert other.stats.upstream_calls == 0
    assert other.stats.errors == 0

    clock.advance(27)
    assert "local limit of 2 calls a minute, retrying in 1 s" in str(fail_once(other))
    assert upstream.calls == 2

    clock.advance(1.01)
    assert other.fetch(["ETH"], NOW).prices["ETH"].price_usd == PRICES["ETH"]
    assert upstream.calls == 3


def test_cache_hits_do_not_spend_tokens(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, ttl=30, calls_per_minute=1)
    for _ in range(20):
        source.fetch(["ETH"], NOW)
    assert upstream.calls == 1
    assert source.stats.rate_limited == 0


# -- backoff after upstream failures --------------------------------------------------------


def test_an_upstream_failure_backs_off_and_says_why_and_when(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, base_backoff=5, seed=3)
    delay = 5 * random.Random(3).uniform(0.5, 1.5)
    upstream.failure = UpstreamDownError("fakegecko answered HTTP 503")

    error = fail_once(source)
    assert isinstance(error, PriceUnavailableError)
    assert str(error) == f"price feed unavailable: fakegecko answered HTTP 503, {shown_wait(delay)}"
    assert error.reason == "price feed unavailable: fakegecko answered HTTP 503"
    assert error.retry_in_seconds == pytest.approx(delay)
    assert isinstance(error.__cause__, UpstreamDownError)
    assert upstream.calls == 1
    assert source.stats.errors == 1
    assert source.stats.upstream_calls == 1

    # Upstream is healthy again, but nobody may ask it before the backoff ends, not even
    # another bot on the same store; they all get the same reason and the remaining wait.
    upstream.failure = None
    clock.advance(delay / 2)
    other = make_source(upstream, store, clock)
    for caller in (source, other, source):
        waiting = fail_once(caller)
        assert waiting.reason == error.reason
        assert str(waiting) == f"{error.reason}, {shown_wait(delay / 2)}"
        assert waiting.retry_in_seconds == pytest.approx(delay / 2)
    assert upstream.calls == 1
    assert source.stats.rate_limited == 2
    assert other.stats.rate_limited == 1

    clock.advance(delay / 2)
    assert other.fetch(["ETH"], NOW).prices["ETH"].price_usd == PRICES["ETH"]
    assert upstream.calls == 2


def test_backoff_doubles_per_consecutive_failure_with_jitter_and_is_capped(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, base_backoff=5, max_backoff=40, seed=11)
    jitter = random.Random(11)
    upstream.failure = UpstreamDownError("connection refused")

    delays: list[float] = []
    for attempt in range(1, 9):
        error = fail_once(source)
        nominal = min(40.0, 5 * 2 ** (attempt - 1))  # 5, 10, 20, 40, 40, ...
        assert 0.5 * nominal <= error.retry_in_seconds <= 1.5 * nominal
        assert error.retry_in_seconds == pytest.approx(nominal * jitter.uniform(0.5, 1.5))
        delays.append(error.retry_in_seconds)
        clock.advance(error.retry_in_seconds - 0.01)
        assert fail_once(source).reason == error.reason  # still waiting: upstream not asked
        assert upstream.calls == attempt
        clock.advance(0.01)

    assert source.stats.errors == 8
    assert len(set(delays)) == len(delays)  # jittered: bots on many machines do not retry in step
    # The cap bounds the delay before jitter: a wait can reach 1.5 x max_backoff.
    assert max(delays) <= 1.5 * 40


@pytest.mark.parametrize("seed", range(5))
def test_a_retry_after_hint_is_a_minimum_wait(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource, seed: int
) -> None:
    source = make_source(upstream, store, clock, base_backoff=5, seed=seed)
    upstream.failure = UpstreamRateLimitedError(retry_after_seconds=40)

    error = fail_once(source)
    assert str(error) == (
        "price feed unavailable: HTTP 429, retry after 40 s, retrying in 40 s"
    )  # 5 s x jitter (at most 7.5 s) is shorter than the hint
    assert error.retry_in_seconds == 40

    clock.advance(39.5)
    assert str(fail_once(source)).endswith("retrying in 1 s")
    assert upstream.calls == 1
    upstream.failure = None
    clock.advance(0.5)
    source.fetch(["ETH"], NOW)
    assert upstream.calls == 2


def test_a_retry_after_hint_shorter_than_the_backoff_does_not_shorten_it(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, base_backoff=60, seed=5)
    delay = 60 * random.Random(5).uniform(0.5, 1.5)
    upstream.failure = UpstreamRateLimitedError(retry_after_seconds=2)
    error = fail_once(source)
    assert error.retry_in_seconds == pytest.approx(delay)
    assert error.retry_in_seconds >= 30


def test_a_retry_after_longer_than_the_backoff_cap_is_still_honoured(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, base_backoff=5, max_backoff=30)
    upstream.failure = UpstreamRateLimitedError(retry_after_seconds=3600)
    assert fail_once(source).retry_in_seconds == 3600

    upstream.failure = None
    clock.advance(3599)
    assert str(fail_once(source)).endswith("retrying in 1 s")
    assert upstream.calls == 1
    clock.advance(1)
    source.fetch(["ETH"], NOW)
    assert upstream.calls == 2


def test_a_success_resets_the_backoff(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock, ttl=30, base_backoff=5, seed=21)
    jitter = random.Random(21)
    upstream.failure = UpstreamDownError("timeout")
    for attempt in range(1, 4):
        error = fail_once(source)
        assert error.retry_in_seconds == pytest.approx(
            5 * 2 ** (attempt - 1) * jitter.uniform(0.5, 1.5)
        )
        clock.advance(error.retry_in_seconds)

    upstream.failure = None
    source.fetch(["ETH"], NOW)
    clock.advance(30)

    upstream.failure = UpstreamDownError("timeout again")
    error = fail_once(source)
    assert 2.5 <= error.retry_in_seconds <= 7.5  # from the base delay, not 40 s
    assert error.retry_in_seconds == pytest.approx(5 * jitter.uniform(0.5, 1.5))
    assert error.reason == "price feed unavailable: timeout again"


def test_backoff_keeps_working_through_a_very_long_outage(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    # Settings give float delays; 5.0 * 2**1024 cannot be a float. About 1100 failures at the
    # 300 s cap is under four days of outage: the bot must keep backing off, not crash.
    source = make_source(upstream, store, clock, base_backoff=5.0, max_backoff=300.0)
    upstream.failure = UpstreamDownError("network unreachable")
    for _ in range(1100):
        error = fail_once(source)
        assert error.retry_in_seconds <= 1.5 * 300
        clock.advance(error.retry_in_seconds)
    assert upstream.calls == 1100
    assert source.stats.errors == 1100


def test_fresh_prices_are_served_during_a_backoff_stale_ones_never(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    # Two bots on one store, with different TTLs: the impatient one finds the cache stale,
    # fails upstream and starts a backoff; for the patient one the cache is still fresh.
    impatient = make_source(upstream, store, clock, ttl=10, base_backoff=100)
    patient = make_source(upstream, store, clock, ttl=60, base_backoff=100)
    impatient.fetch(["ETH"], NOW)
    clock.advance(15)
    upstream.failure = UpstreamDownError("HTTP 502")
    error = fail_once(impatient)
    assert error.retry_in_seconds >= 50

    # The cache is checked before the backoff: a fresh cached price is still served...
    clock.advance(1)
    served = patient.fetch(["ETH"], NOW)
    assert served.prices["ETH"].price_usd == PRICES["ETH"]
    assert served.timestamp == datetime.fromtimestamp(START, tz=UTC)
    assert patient.stats.cache_hits == 1
    # ...while a bot for which it is stale gets the backoff error, never the old price.
    assert fail_once(impatient).reason == "price feed unavailable: HTTP 502"
    assert upstream.calls == 2

    clock.advance(60 - 16)  # now stale for the patient bot too, backoff still running
    assert fail_once(patient).reason == "price feed unavailable: HTTP 502"
    assert upstream.calls == 2


def test_a_non_price_error_from_upstream_is_not_swallowed(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    def broken() -> None:
        raise RuntimeError("bug in the client")

    upstream.before_answer = broken
    source = make_source(upstream, store, clock)
    with pytest.raises(RuntimeError, match="bug in the client"):
        source.fetch(["ETH"], NOW)
    # The lock was released: the next call can try again.
    upstream.before_answer = None
    assert source.fetch(["ETH"], NOW).prices["ETH"].price_usd == PRICES["ETH"]


def test_symbols_available_and_history_delegate_sensibly(
    clock: FakeClock, store: MemoryStore, upstream: CountingSource
) -> None:
    source = make_source(upstream, store, clock)
    assert source.name == "fakegecko"
    assert source.symbols_available() == ["BTC", "ETH", "USDC"]
    assert source.history("ETH", NOW, 10) == []
