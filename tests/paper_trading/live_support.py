"""Shared set-up for live-price tests: a fake CoinGecko priced for the registry, a fast loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from paper_trading.engine.chains import CHAINS
from paper_trading.engine.events import TickResult
from paper_trading.engine.loop import BotLoop, RunOutcome
from paper_trading.engine.schedule import WallClockSchedule
from paper_trading.engine.strategies.base import Action, Decision, MarketView, Strategy
from paper_trading.models import PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import BotSettings, build_loop, start_session
from tests.fakes.coingecko import FakeCoinGecko

#: Today-ish prices per CoinGecko id, for every token the registry trades.
PRICES = {
    "weth": Decimal("3000.50"),
    "wrapped-bitcoin": Decimal("90000.25"),
    "uniswap": Decimal("7.125"),
    "aave": Decimal("250.75"),
    "chainlink": Decimal("18.5"),
    "arbitrum": Decimal("0.45"),
    "optimism": Decimal("1.1"),
    "matic-network": Decimal("0.3"),
}


def price_all(fake: FakeCoinGecko) -> None:
    ids = {t.coingecko_id for c in CHAINS.values() for t in c.tradable_tokens}
    for coin_id in ids:
        fake.set_price(coin_id, PRICES[coin_id], change=Decimal("1.5"))


def point_at(fake: FakeCoinGecko, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Make the app (and the processes it starts) use the fake, with test-sized timings."""
    monkeypatch.setenv("COINGECKO_API_URL", fake.url)
    monkeypatch.setenv("COINGECKO_TIMEOUT_SECONDS", "0.5")
    settings.PRICE_CACHE_TTL_SECONDS = 0  # every tick asks upstream, so every mode is seen
    # Far shorter than a test tick (20 ms), so the tick after an outage already retries.
    settings.PRICE_BACKOFF_BASE_SECONDS = 0.001
    settings.PRICE_BACKOFF_MAX_SECONDS = 0.002
    settings.COINGECKO_CALLS_PER_MINUTE = 100_000


class BuyWethEveryTick(Strategy):
    """Always wants $50 more WETH: any tick without a trade is one the feed refused."""

    name = "buy-weth-every-tick"

    def decide(self, view: MarketView) -> Decision:
        if view.symbol != "WETH":
            return Decision(
                Action.HOLD,
                view.symbol,
                Decimal(0),
                Decimal(0),
                Decimal(10),
                Decimal(10),
                Decimal(10),
                "only WETH in this test",
            )
        return Decision(
            Action.BUY,
            "WETH",
            Decimal(50),
            Decimal(0),
            Decimal(90),
            Decimal(20),
            Decimal(80),
            f"test: buy $50 of WETH at {view.price}",
        )


class TickHook:
    """An event sink that runs a callback after each committed tick."""

    def __init__(self, callback: Callable[[TickResult], None]) -> None:
        self.callback = callback

    def publish(self, result: TickResult) -> None:
        self.callback(result)


def live_loop(
    account: PaperTradingAccount,
    ticks: int,
    hook: Callable[[TickResult], None] | None = None,
    strategy: Strategy | None = None,
    chain_id: int = 8453,
) -> tuple[PaperTradingSession, BotLoop]:
    session = start_session(account, BotSettings(prices="live", chain_id=chain_id))
    loop = build_loop(session, threading.Event(), max_ticks=ticks)
    loop.schedule = WallClockSchedule(0.02)
    if strategy is not None:
        loop.analyzer.strategy = strategy
    if hook is not None:
        loop.sinks = [*loop.sinks, TickHook(hook)]
    return session, loop


def run(loop: BotLoop) -> RunOutcome:
    return loop.run()
