"""The Fast Lane: quick, small, risk-checked paper trades in reaction to on-chain events.

The Smart Lane (the tick-driven strategy) weighs prices every tick; the Fast Lane acts on what
the mempool shows before it lands in a price:

- a large pending buy in a tracked pool: buy a little ahead of it, only if the move it will
  cause beats our fees, price impact and gas both ways; its Swap log (the buy landed) sells out;
- a large pending sell of a token we hold: sell ahead of it;
- a new pool of a token the chain knows, with enough liquidity: a small probe buy.

Every event that reaches the lane becomes a thought saying what happened and why the lane did
or did not act; trades go through the same `TradeExecutor` (breakers, simulator, ledger) as the
Smart Lane's, and each event's effects leave as one `TickResult` for the bot's sinks.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from paper_trading.engine import money

# The analyzer's own wording of an outcome and its position snapshot, so both lanes read alike.
from paper_trading.engine.analyzer import (
    MarketAnalyzer,
    describe_execution,
    portfolio_snapshot,
    position_snapshot,
)
from paper_trading.engine.chains import Token
from paper_trading.engine.dex.pools import InsufficientLiquidityError
from paper_trading.engine.dex.quote import Side, SwapQuote
from paper_trading.engine.events import (
    DecisionType,
    EngineCounters,
    Event,
    PositionChanged,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
    TradeStatus,
)
from paper_trading.engine.executor import Execution, TradeRequest
from paper_trading.engine.loop import BotLoop, EndReason, RunOutcome
from paper_trading.engine.mempool.events import MempoolEvent, PendingSwap, PoolCreated, SwapLog
from paper_trading.engine.mempool.sources import EventSource, Timed
from paper_trading.engine.portfolio import Position
from paper_trading.engine.prices.feed import PriceUnavailableError
from paper_trading.engine.schedule import TickSchedule

STRATEGY_NAME = "fast_lane"
_BPS = Decimal(10_000)


@dataclass(frozen=True)
class FastLaneParams:
    """The lane's knobs; the defaults suit a $10k paper account."""

    #: Pending swaps smaller than this (USD) are noise: the lane holds.
    min_pending_usd: Decimal = Decimal(50_000)
    #: A Fast Lane trade spends at most this many USD...
    max_trade_usd: Decimal = Decimal(250)
    #: ...and at most this share of the portfolio's value.
    max_trade_percent: Decimal = Decimal(2)
    #: A new pool needs at least this much liquidity (USD) before the lane probes it.
    min_pool_liquidity_usd: Decimal = Decimal(100_000)
    #: Size of a probe buy into a new pool's token (capped like any Fast Lane trade).
    probe_usd: Decimal = Decimal(50)
    #: The expected move must beat round-trip costs by at least this many basis points.
    min_edge_bps: Decimal = Decimal(10)
    #: After a Fast Lane trade in a token, further events in it only hold for this long.
    cooldown: timedelta = timedelta(minutes=5)


@dataclass
class _Event:
    """One event's working state: the records it produced and the positions it touched."""

    at: datetime
    tick: int
    events: list[Event] = field(default_factory=list)
    touched: dict[str, Position] = field(default_factory=dict)
    seq: int = 0


class FastLane:
    """Reacts to mempool events on the Smart Lane's portfolio, counters, executor and prices."""

    def __init__(self, analyzer: MarketAnalyzer, params: FastLaneParams | None = None) -> None:
        self.a = analyzer
        self.params = params or FastLaneParams()
        #: Pending buys we traded ahead of: tx hash -> (symbol, token quantity bought).
        self.front_runs: dict[str, tuple[str, Decimal]] = {}
        #: Symbol -> when the lane last traded it.
        self.last_trade_at: dict[str, datetime] = {}

    def handle(self, at: datetime, event: MempoolEvent) -> TickResult:
        """React to one event; its thought, any trade and the new books as one result."""
        c = self.a.counters
        c.tick_number += 1
        c.last_tick_at = at
        if c.day != at.date():
            c.day = at.date()
            c.day_start_value_usd = self.a.portfolio.total_value_usd
            c.trades_today = 0
        work = _Event(at, c.tick_number)
        if isinstance(event, PendingSwap):
            self._pending(work, event)
        elif isinstance(event, PoolCreated):
            self._pool(work, event)
        else:
            self._swap_log(work, event)
        return self._finish(work)

    # -- reactions ----------------------------------------------------------------------------

    def _pending(self, w: _Event, swap: PendingSwap) -> None:
        data: dict[str, Any] = {"event": swap.to_json()}
        prices = self._prices(w, swap.symbol, data)
        if prices is None:
            return
        mid, native = prices
        size = swap.size_usd
        if size is None:  # a token quantity: value it at the mid price
            size = money.usd(money.mul(swap.amount_in, mid))
        data["pending_size_usd"] = str(size)
        what = (
            f"Pending {swap.router.upper()} {swap.side.value.lower()} of ${size:,.0f} "
            f"{swap.symbol} ({swap.tx_hash[:10]}, gas {swap.gas_price_gwei.normalize():f} gwei)."
        )
        p = self.params
        if size < p.min_pending_usd:
            self._thought(
                w,
                swap.symbol,
                DecisionType.HOLD,
                f"{what} Below the ${p.min_pending_usd:,.0f} Fast Lane minimum: too small to "
                "move the price past our costs; holding.",
                data,
            )
            return
        if self._cooling(w, swap.symbol, what, data):
            return
        if swap.side is Side.SELL:
            self._sell_ahead(w, swap, what, data, mid, native)
            return
        try:
            theirs = self._quote(swap.symbol, size, mid, native, w.at)
        except InsufficientLiquidityError as exc:
            self._thought(
                w, swap.symbol, DecisionType.HOLD, f"{what} Cannot model it: {exc}.", data
            )
            return
        amount = self._trade_size(w, swap.symbol, p.max_trade_usd, what, data)
        if amount is None:
            return
        ours = self._quote(swap.symbol, amount, mid, native, w.at)
        move = theirs.price_impact_bps
        costs = 2 * (ours.fee_bps + ours.price_impact_bps) + 2 * ours.gas.total_usd / amount * _BPS
        edge = money.ratio(move - costs)
        data.update(
            expected_move_bps=str(move),
            round_trip_cost_bps=str(money.ratio(costs)),
            edge_bps=str(edge),
            trade_usd=str(amount),
        )
        sums = (
            f"It should lift {swap.symbol} about {move} bps; buying ${amount:,.2f} ahead and "
            f"selling after costs about {money.ratio(costs)} bps round trip (fees, impact, gas), "
            f"an edge of {edge} bps against the {p.min_edge_bps} bps minimum."
        )
        if edge < p.min_edge_bps:
            self._thought(w, swap.symbol, DecisionType.HOLD, f"{what} {sums} Holding.", data)
            return
        execution = self._execute(
            w, swap.symbol, Side.BUY, amount, mid, native, "fast_lane_front_run"
        )
        if execution.trade is not None and execution.trade.status is TradeStatus.EXECUTED:
            self.front_runs[swap.tx_hash] = (swap.symbol, execution.trade.amount_out)
        self._decided(w, swap.symbol, Side.BUY, f"{what} {sums}", execution, data)

    def _sell_ahead(
        self,
        w: _Event,
        swap: PendingSwap,
        what: str,
        data: dict[str, Any],
        mid: Decimal,
        native: Decimal,
    ) -> None:
        position = self.a.portfolio.positions.get(swap.symbol)
        if position is None:
            self._thought(
                w,
                swap.symbol,
                DecisionType.HOLD,
                f"{what} It will push {swap.symbol} down, but nothing is held to sell ahead of it.",
                data,
            )
            return
        execution = self._execute(
            w, swap.symbol, Side.SELL, position.quantity, mid, native, "fast_lane_exit_ahead"
        )
        self._decided(
            w,
            swap.symbol,
            Side.SELL,
            f"{what} It will push {swap.symbol} down: selling the position ahead of it.",
            execution,
            data,
        )

    def _pool(self, w: _Event, pool: PoolCreated) -> None:
        chain = self.a.chain
        data: dict[str, Any] = {"event": pool.to_json()}
        by_address = {t.address.lower(): t for t in chain.tokens.values()}
        quote = chain.quote_token
        t0, t1 = by_address.get(pool.token0.lower()), by_address.get(pool.token1.lower())
        what = (
            f"New {pool.kind.upper()} pool {pool.pool_address[:10]} "
            f"({_name(t0, pool.token0)}/{_name(t1, pool.token1)}, fee {pool.fee_pips / 10_000}%)."
        )
        token = t1 if t0 is quote else t0 if t1 is quote else None
        p = self.params
        reason = ""
        if quote not in (t0, t1):
            reason = f"Not paired with {quote.symbol}, the only quote the paper wallet holds"
        elif token is None or token not in chain.tradable_tokens:
            reason = (
                f"The other token is not one {chain.name} lists here: a fresh unknown token is "
                "the classic rug pull, so no probe"
            )
        elif pool.liquidity_usd is None:
            reason = "Its liquidity is not known yet; not probing blind"
        elif pool.liquidity_usd < p.min_pool_liquidity_usd:
            reason = (
                f"Liquidity ${pool.liquidity_usd:,.0f} is below the "
                f"${p.min_pool_liquidity_usd:,.0f} minimum"
            )
        symbol = token.symbol if token is not None else ""
        if reason:
            self._thought(w, symbol, DecisionType.HOLD, f"{what} {reason}; holding.", data)
            return
        if self._cooling(w, symbol, what, data):
            return
        prices = self._prices(w, symbol, data)
        if prices is None:
            return
        amount = self._trade_size(w, symbol, p.probe_usd, what, data)
        if amount is None:
            return
        execution = self._execute(w, symbol, Side.BUY, amount, *prices, "fast_lane_probe")
        self._decided(
            w,
            symbol,
            Side.BUY,
            f"{what} Liquidity ${pool.liquidity_usd:,.0f} clears the "
            f"${p.min_pool_liquidity_usd:,.0f} minimum: a ${amount:,.2f} probe buy.",
            execution,
            data,
        )

    def _swap_log(self, w: _Event, log: SwapLog) -> None:
        data: dict[str, Any] = {"event": log.to_json()}
        what = f"Swap {log.tx_hash[:10]} confirmed in the {log.symbol or 'untracked'} pool."
        front_run = self.front_runs.pop(log.tx_hash, None)
        if front_run is None:
            self._thought(
                w,
                log.symbol,
                DecisionType.HOLD,
                f"{what} Not one we traded ahead of; a confirmed swap is already in the price.",
                data,
            )
            return
        symbol, bought = front_run
        position = self.a.portfolio.positions.get(symbol)
        if position is None:
            self._thought(
                w,
                symbol,
                DecisionType.HOLD,
                f"{what} We bought ahead of it, but the position is already closed.",
                data,
            )
            return
        prices = self._prices(w, symbol, data)
        if prices is None:
            return
        quantity = min(bought, position.quantity)
        execution = self._execute(w, symbol, Side.SELL, quantity, *prices, "fast_lane_back_run")
        self._decided(
            w,
            symbol,
            Side.SELL,
            f"{what} The buy we front-ran has landed: selling the {quantity:.6f} {symbol} bought "
            "ahead of it.",
            execution,
            data,
        )

    # -- helpers ------------------------------------------------------------------------------

    def _prices(
        self, w: _Event, symbol: str, data: dict[str, Any]
    ) -> tuple[Decimal, Decimal] | None:
        """Mid price of `symbol` and of the native token now, or None after a BLOCKED thought."""
        chain = self.a.chain
        token = chain.token(symbol)
        native = chain.token(chain.native_price_token)
        wanted = [token.price_symbol, native.price_symbol]
        problem = ""
        try:
            snapshot = self.a.feed.get_prices(wanted, w.at)
        except PriceUnavailableError as exc:
            problem = str(exc)
        else:
            missing = [s for s in wanted if s not in snapshot.prices]
            problem = "; ".join(f"{s}: {snapshot.unavailable.get(s, 'missing')}" for s in missing)
        if problem:
            self._thought(w, symbol, DecisionType.BLOCKED, f"No price to act on ({problem}).", data)
            return None
        mid = snapshot.prices[token.price_symbol].price_usd
        position = self.a.portfolio.positions.get(symbol)
        if position is not None:
            position.revalue(mid)
        data["price_usd"] = str(mid)
        return mid, snapshot.prices[native.price_symbol].price_usd

    def _cooling(self, w: _Event, symbol: str, what: str, data: dict[str, Any]) -> bool:
        last = self.last_trade_at.get(symbol)
        if last is None or w.at - last >= self.params.cooldown:
            return False
        self._thought(
            w,
            symbol,
            DecisionType.HOLD,
            f"{what} The Fast Lane traded {symbol} at {last:%H:%M:%S} UTC; cooling down until "
            f"{last + self.params.cooldown:%H:%M:%S} UTC.",
            data,
        )
        return True

    def _trade_size(
        self, w: _Event, symbol: str, wanted: Decimal, what: str, data: dict[str, Any]
    ) -> Decimal | None:
        """`wanted` USD capped by the lane's limits and the position cap; None (after a HOLD
        thought) when that is below the configured minimum trade."""
        value = self.a.portfolio.total_value_usd
        p = self.params
        caps = (
            wanted,
            p.max_trade_usd,
            money.div(money.mul(value, p.max_trade_percent), money.HUNDRED),
            money.div(money.mul(value, self.a.config.max_position_size_percent), money.HUNDRED),
        )
        amount = money.usd(min(caps))
        if amount >= self.a.config.min_trade_usd:
            return amount
        self._thought(
            w,
            symbol,
            DecisionType.HOLD,
            f"{what} A Fast Lane trade would be ${amount:,.2f}, below the "
            f"${self.a.config.min_trade_usd} minimum trade; holding.",
            data,
        )
        return None

    def _quote(
        self, symbol: str, usd: Decimal, mid: Decimal, native: Decimal, at: datetime
    ) -> SwapQuote:
        tolerance = self.a.config.slippage_tolerance_percent
        return self.a.executor.simulator.quote(symbol, Side.BUY, usd, mid, native, tolerance, at)

    def _id(self, w: _Event, kind: str) -> uuid.UUID:
        w.seq += 1
        return self.a.ids.make(kind, w.tick, f"fast_lane:{w.seq}")

    def _execute(
        self,
        w: _Event,
        symbol: str,
        side: Side,
        amount: Decimal,
        mid: Decimal,
        native: Decimal,
        reason: str,
    ) -> Execution:
        a = self.a
        token = a.chain.token(symbol)
        request = TradeRequest(
            symbol=symbol,
            side=side,
            amount=amount,
            mid_price_usd=mid,
            native_price_usd=native,
            volatility_per_sqrt_second=a.volatility_per_sqrt_second(token.price_symbol),
            now=w.at,
            reason=reason,
            thought_id=self._id(w, "thought"),
            trade_id=self._id(w, "trade"),
            position_id=a.ids.make("position", w.tick, symbol),
        )
        execution = a.executor.execute(request, a.risk_state(w.at))
        trade = execution.trade
        if trade is None or execution.ledger is None:
            return execution
        a.count_trade(trade, w.at)
        if not trade.status.failed:
            self.last_trade_at[symbol] = w.at
        w.events.extend(trade.transactions)
        w.events.append(TradeExecuted(trade))
        if execution.ledger.position is not None:
            w.touched[symbol] = execution.ledger.position
        return execution

    def _decided(
        self,
        w: _Event,
        symbol: str,
        side: Side,
        reasoning: str,
        execution: Execution,
        data: dict[str, Any],
    ) -> None:
        trade = execution.trade
        decided = DecisionType.BUY if side is Side.BUY else DecisionType.SELL
        outcome = describe_execution(execution, "")
        thought_id = trade.thought_id if trade is not None else None
        self._thought(
            w,
            symbol,
            decided if trade is not None else DecisionType.BLOCKED,
            f"{reasoning} {outcome}",
            data,
            trade_id=trade.trade_id if trade else None,
            thought_id=thought_id,
        )

    def _thought(
        self,
        w: _Event,
        symbol: str,
        decided: DecisionType,
        reasoning: str,
        data: dict[str, Any],
        *,
        trade_id: uuid.UUID | None = None,
        thought_id: uuid.UUID | None = None,
    ) -> None:
        self.a.counters.thoughts += 1
        w.events.append(
            ThoughtLogged(
                ThoughtRecord(
                    thought_id=thought_id or self._id(w, "thought"),
                    created_at=w.at,
                    symbol=symbol,
                    decision_type=decided,
                    confidence=money.ZERO,
                    risk_score=money.ZERO,
                    opportunity_score=money.ZERO,
                    reasoning=reasoning,
                    market_data={"chain_id": self.a.chain.chain_id, **data},
                    strategy=STRATEGY_NAME,
                    trade_id=trade_id,
                )
            )
        )

    def _finish(self, w: _Event) -> TickResult:
        portfolio = self.a.portfolio
        for position in {**w.touched, **portfolio.positions}.values():
            w.events.append(PositionChanged(position_snapshot(position)))
        snapshot = portfolio_snapshot(portfolio)
        c = self.a.counters
        return TickResult(c.tick_number, w.at, tuple(w.events), snapshot, EngineCounters(**vars(c)))


def _name(token: Token | None, address: str) -> str:
    return token.symbol if token is not None else address[:10]


def run_fast_lane(
    loop: BotLoop,
    source: EventSource,
    params: FastLaneParams | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> RunOutcome:
    """Feed `source` into a Fast Lane on `loop`'s engine and sinks, with the loop's limits.

    `loop.max_ticks` counts events here; the configuration is re-read before each event, as
    before each tick.
    """
    lane = FastLane(loop.analyzer, params)
    stop: threading.Event = loop.stop
    started = monotonic()
    handled = 0
    for at, event in source.events(stop):
        loop.step(partial(lane.handle, at, event))
        handled += 1
        if loop.max_ticks is not None and handled >= loop.max_ticks:
            return RunOutcome(handled, EndReason.TICK_LIMIT)
        if (
            loop.max_runtime_seconds is not None
            and monotonic() - started >= loop.max_runtime_seconds
        ):
            return RunOutcome(handled, EndReason.RUNTIME_LIMIT)
    return RunOutcome(handled, EndReason.STOPPED if stop.is_set() else EndReason.COMPLETED)


def run_both_lanes(
    loop: BotLoop,
    source: EventSource,
    params: FastLaneParams | None = None,
    *,
    on_feed_exit: Callable[[], None] | None = None,
) -> RunOutcome:
    """The Smart Lane's ticks and the Fast Lane's events on one engine, never both at once.

    Recorded events are interleaved with the ticks by time, before each tick every event up to
    it, so a replay repeats exactly. Live events are read on a thread of their own and handled
    as they arrive, between ticks: a lock keeps an event and a tick from touching the books at
    the same moment. `loop`'s limits count ticks; `on_feed_exit` runs when that thread ends
    (the Django side closes the thread's database connection there).
    """
    lane = FastLane(loop.analyzer, params)
    halt = threading.Event()

    def react(at: datetime, event: MempoolEvent) -> None:
        loop.step(partial(lane.handle, at, event))

    failures: list[BaseException] = []
    if source.live:
        lock = threading.Lock()

        def feed() -> None:
            try:
                for at, event in source.events(halt):
                    with lock:
                        react(at, event)
            except BaseException as exc:  # reported on the loop's thread
                failures.append(exc)
                loop.stop.set()
            finally:
                if on_feed_exit is not None:
                    on_feed_exit()

        # In this thread's context variables, so the bot's log context follows its events.
        feeder = threading.Thread(
            target=contextvars.copy_context().run, args=(feed,), name="fast-lane", daemon=True
        )
        loop.schedule = _Locked(loop.schedule, lock)
        feeder.start()
    else:
        loop.schedule = _Interleaved(loop.schedule, iter(source.events(halt)), react)
    try:
        outcome = loop.run()
    finally:
        halt.set()
        if source.live:
            feeder.join(timeout=10)
    if failures:
        raise failures[0]
    return outcome


class _Locked:
    """Holds `lock` from each tick's time until the loop asks for the next one."""

    def __init__(self, inner: TickSchedule, lock: threading.Lock) -> None:
        self.inner, self.lock = inner, lock

    def ticks(self, stop: threading.Event) -> Iterator[datetime]:
        for now in self.inner.ticks(stop):
            with self.lock:
                yield now


class _Interleaved:
    """Before each tick, the recorded events up to its time, in order."""

    def __init__(
        self,
        inner: TickSchedule,
        events: Iterator[Timed],
        react: Callable[[datetime, MempoolEvent], None],
    ) -> None:
        self.inner, self.events, self.react = inner, events, react

    def ticks(self, stop: threading.Event) -> Iterator[datetime]:
        upcoming = next(self.events, None)
        for now in self.inner.ticks(stop):
            while upcoming is not None and upcoming[0] <= now:
                self.react(*upcoming)
                upcoming = next(self.events, None)
            yield now
