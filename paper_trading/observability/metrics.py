"""Prometheus metrics of this process, fed from the engine's event stream.

Metrics live in this process's memory: the embedded mode runs the web server and its bots in one
process, so one scrape sees everything; in scaled mode (separate web, worker and bot processes)
scrape each process, or switch to prometheus_client's multiprocess mode.
Labels stay low-cardinality on purpose: no session, account or token ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from paper_trading.engine.events import (
    BreakerTripped,
    PriceFeedChanged,
    PricesObserved,
    TickResult,
    TradeExecuted,
)
from paper_trading.engine.prices.cache import CachedPriceSource, FeedStats
from paper_trading.engine.prices.feed import PriceFeedService

BOT_TICKS = Counter("dexpaper_bot_ticks", "Ticks run by bots in this process.")
TICK_DURATION = Histogram(
    "dexpaper_bot_tick_duration_seconds",
    "Wall time of a tick: config read, analysis, trading and its sinks (pacing excluded).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TRADES = Counter("dexpaper_trades", "Paper trades by final status.", ["status"])
BREAKER_TRIPS = Counter("dexpaper_breaker_trips", "Circuit-breaker trips by code.", ["code"])
FEED_OUTAGES = Counter(
    "dexpaper_price_feed_outages", "Times a bot's prices stopped (stale, missing or failing)."
)
FEED_CALLS = Counter(
    "dexpaper_price_feed_upstream_calls", "Calls to the upstream price API.", ["source"]
)
FEED_CACHE_HITS = Counter(
    "dexpaper_price_feed_cache_hits", "Price fetches served by the shared cache.", ["source"]
)
FEED_ERRORS = Counter("dexpaper_price_feed_errors", "Failed upstream price calls.", ["source"])
PRICE_AGE = Gauge(
    "dexpaper_price_age_seconds",
    "Age of the newest price a bot saw, at its last tick (the feed's staleness).",
    ["source"],
)
API_LATENCY = Histogram(
    "dexpaper_http_request_duration_seconds",
    "HTTP request latency by view and status class.",
    ["view", "status"],
)
WEBSOCKET_CLIENTS = Gauge("dexpaper_websocket_clients", "WebSocket clients connected now.")


class MetricsSink:
    """An engine event sink that turns each tick into metric updates; never touches the ledger.

    Tick durations are not measured here: the loop times each tick itself and reports it to
    `TICK_DURATION.observe` (see `BotLoop.on_tick_duration`).

    `feed_stats` reads the price cache's running counters (live prices); their growth since the
    previous tick is added to the feed counters, so the cache itself needs no metrics code.
    """

    def __init__(self, source: str, feed_stats: FeedStats | None = None) -> None:
        self.source = source
        self.feed_stats = feed_stats
        self._seen = FeedStats()

    @classmethod
    def for_feed(cls, feed: PriceFeedService) -> MetricsSink:
        """A sink for a bot reading `feed`; live prices come through the cache and its counters."""
        source = feed.source
        stats = source.stats if isinstance(source, CachedPriceSource) else None
        return cls(feed.source_name, stats)

    def publish(self, result: TickResult) -> None:
        BOT_TICKS.inc()
        for trade in result.of_type(TradeExecuted):
            TRADES.labels(status=trade.trade.status.value).inc()
        for trip in result.of_type(BreakerTripped):
            BREAKER_TRIPS.labels(code=trip.code).inc()
        for change in result.of_type(PriceFeedChanged):
            if change.problem:
                FEED_OUTAGES.inc()
        newest = max(
            (at for seen in result.of_type(PricesObserved) for at, _ in seen.prices.values()),
            default=None,
        )
        if newest is not None:
            age = (result.timestamp - newest).total_seconds()
            PRICE_AGE.labels(source=self.source).set(max(age, 0.0))
        self._count_feed()

    def _count_feed(self) -> None:
        stats = self.feed_stats
        if stats is None:
            return
        seen = self._seen
        FEED_CALLS.labels(source=self.source).inc(stats.upstream_calls - seen.upstream_calls)
        FEED_CACHE_HITS.labels(source=self.source).inc(stats.cache_hits - seen.cache_hits)
        FEED_ERRORS.labels(source=self.source).inc(stats.errors - seen.errors)
        self._seen = FeedStats(
            upstream_calls=stats.upstream_calls, cache_hits=stats.cache_hits, errors=stats.errors
        )
