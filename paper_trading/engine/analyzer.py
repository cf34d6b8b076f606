"""MarketAnalyzer: one tick of the bot, as pure computation over in-memory state.

prices -> revalue -> auto-close -> breakers -> analyze each token -> execute -> metrics.
Every decision, HOLD included, becomes a thought; all effects leave as one `TickResult`.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from paper_trading.engine import metrics, money
from paper_trading.engine.chains import Chain, Token
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import (
    BreakerTripped,
    DecisionType,
    EngineCounters,
    Event,
    MetricsComputed,
    PerformanceSnapshot,
    PortfolioSnapshot,
    PositionChanged,
    PositionSnapshot,
    PriceFeedChanged,
    PricesObserved,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
    TradeRecord,
    TradeStatus,
)
from paper_trading.engine.executor import Execution, TradeExecutor, TradeRequest
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.metrics import EquityCurve
from paper_trading.engine.portfolio import Portfolio, Position
from paper_trading.engine.prices.feed import (
    PriceFeedService,
    PriceSnapshot,
    PriceUnavailableError,
    feed_problem,
)
from paper_trading.engine.prices.replay import ReplaySource, Timeline
from paper_trading.engine.risk import RiskState, exit_reason, tripped_breakers
from paper_trading.engine.strategies.base import (
    Action,
    Decision,
    FloatArray,
    MarketView,
    Strategy,
)
from paper_trading.engine.strategies.contract import (
    active_bars,
    checked_decision,
    indicator_arrays,
)
from paper_trading.engine.strategies.indicators import volatility

#: How many prices per token the analyzer keeps for strategies.
HISTORY_LENGTH = 250
#: Bars of log returns behind the volatility a pending swap's price drifts with.
_VOLATILITY_BARS = 50
#: Closes those returns come from.
VOLATILITY_CLOSES = _VOLATILITY_BARS + 1


class _RecordedIndicators:
    """A strategy's indicators over one symbol's whole recording, looked up by bar close time."""

    def __init__(self, strategy: Strategy, moments: Timeline, closes: FloatArray) -> None:
        # Checked not to look ahead where a run is prepared (`contract.check_recording`), once,
        # not here: an optimisation runs a backtest per candidate over the same recording.
        arrays = indicator_arrays(strategy, closes)
        active = active_bars(strategy, arrays, len(closes))
        # Plain lists of Python floats: indexing them is cheaper than numpy scalars per bar.
        self.columns = {name: values.tolist() for name, values in arrays.items()}
        #: The bars' close times: a bar is found by binary search, not a dict of every bar.
        self.moments = moments
        #: Per bar: might `decide` trade here? None when the strategy does not say.
        self.active = active

    def at(self, moment: datetime) -> Mapping[str, float] | None:
        i = self.moments.find(moment)
        if i is None:
            return None
        return {name: values[i] for name, values in self.columns.items()}


class MarketAnalyzer:
    def __init__(
        self,
        *,
        chain: Chain,
        feed: PriceFeedService,
        strategy: Strategy,
        simulator: DexSimulator,
        portfolio: Portfolio,
        config: TradingConfig,
        ids: IdFactory,
        bar_seconds: int,
        counters: EngineCounters | None = None,
        equity: Sequence[Decimal] = (),
        closed_trade_pnls: Sequence[Decimal] = (),
        universe: Sequence[Token] | None = None,
    ) -> None:
        self.chain = chain
        self.feed = feed
        self.strategy = strategy
        self.portfolio = portfolio
        #: Replaced between ticks when the user edits the configuration.
        self.config = config
        self.ids = ids
        self.bar_seconds = bar_seconds
        self.counters = counters or EngineCounters()
        self.executor = TradeExecutor(chain, simulator, portfolio)
        self.equity = EquityCurve(equity)
        self.closed_trades = metrics.ClosedTrades(closed_trade_pnls)
        self.history: dict[str, deque[Decimal]] = {}
        #: The last closes of each history as floats, for the volatility a swap drifts with:
        #: converting 51 Decimals per swap cost more than the pool math. Kept by `remember`.
        self._recent_closes: dict[str, deque[float]] = {}
        #: Tokens this run can price at all (a replay only has some); config narrows it further.
        self.universe = list(universe) if universe is not None else chain.tradable_tokens
        native = chain.token(chain.native_price_token)
        self._native_price_symbol = native.price_symbol
        #: Price symbol -> indicators over the whole recording, when the source has one.
        self._recorded: dict[str, _RecordedIndicators] = {}
        #: Allowed-token setting -> (tokens, price symbols): the same every tick until edited.
        self._selection: dict[tuple[str, ...], tuple[list[Token], list[str]]] = {}

    # -- set-up ---------------------------------------------------------------------------

    @property
    def tokens(self) -> list[Token]:
        return self._selected()[0]

    def price_symbols(self) -> list[str]:
        """What each tick fetches: the selected tokens' price symbols and the native token's."""
        return self._selected()[1]

    def _selected(self) -> tuple[list[Token], list[str]]:
        key = self.config.allowed_tokens
        selection = self._selection.get(key)
        if selection is None:
            allowed = {s.upper() for s in key}
            tokens = [t for t in self.universe if not allowed or t.symbol in allowed]
            symbols = {t.price_symbol for t in tokens} | {self._native_price_symbol}
            selection = self._selection[key] = (tokens, sorted(symbols))
        return selection

    def warm_up(self, until: datetime) -> None:
        """Fill the strategy's history from the source so a (re)start does not trade blind."""
        for symbol in self.price_symbols():
            points = self.feed.history(symbol, until, HISTORY_LENGTH)
            self.history[symbol] = deque(maxlen=HISTORY_LENGTH)
            self._recent_closes[symbol] = deque(maxlen=VOLATILITY_CLOSES)
            prices = [p for _, p in points]
            self.remember(symbol, prices, [float(p) for p in prices])

    # -- the tick -------------------------------------------------------------------------

    def tick(self, now: datetime) -> TickResult:
        c = self.counters
        c.tick_number += 1
        c.last_tick_at = now
        tick = _Tick(self, now)
        try:
            snapshot = self.feed.get_prices(self.price_symbols(), now)
        except PriceUnavailableError as exc:
            tick.feed_problem(feed_problem(exc))
            return tick.finish()
        tick.events.append(
            PricesObserved(
                snapshot.source,
                {s: (q.timestamp, q.price_usd) for s, q in snapshot.prices.items()},
            )
        )
        native = snapshot.prices.get(self._native_price_symbol)
        if native is None:
            reason = snapshot.unavailable.get(self._native_price_symbol, "missing")
            tick.feed_problem(
                f"no {self.chain.native_symbol} price to value gas ({reason}); not trading"
            )
            return tick.finish()
        if c.feed_problem:
            tick.events.append(PriceFeedChanged(""))
            tick.thought("", DecisionType.HOLD, f"price feed back after: {c.feed_problem}")
            c.feed_problem = ""
        for symbol, quote in snapshot.prices.items():
            self.remember(symbol, [quote.price_usd], [float(quote.price_usd)])
        for position in self.portfolio.positions.values():
            current = snapshot.prices.get(self.chain.token(position.symbol).price_symbol)
            if current is not None:
                position.revalue(current.price_usd)
        if c.day != now.date():
            c.day = now.date()
            c.day_start_value_usd = self.portfolio.total_value_usd
            c.trades_today = 0
        closed = tick.auto_close(snapshot, native.price_usd)
        tick.report_breakers()
        for token in self.tokens:
            if token.symbol not in closed:
                tick.analyze(token, snapshot, native.price_usd)
        return tick.finish()

    # -- helpers used by _Tick --------------------------------------------------------------

    def count_trade(self, trade: TradeRecord, at: datetime) -> None:
        """Book a swap in the counters the breakers and metrics read (either lane's swaps)."""
        c = self.counters
        c.total_trades += 1
        c.trades_today += 1
        if trade.status.failed:
            c.failed_trades += 1
            c.consecutive_failures += 1
            c.last_failure_at = at
        else:
            c.successful_trades += 1
            c.consecutive_failures = 0
            if trade.side == Side.SELL.value:
                self.closed_trades.add(trade.net_pnl_usd)

    def risk_state(self, now: datetime) -> RiskState:
        c = self.counters
        return RiskState(
            now=now,
            initial_balance_usd=self.portfolio.initial_balance_usd,
            portfolio_value_usd=self.portfolio.total_value_usd,
            cash_usd=self.portfolio.cash_usd,
            day_start_value_usd=c.day_start_value_usd,
            trades_today=c.trades_today,
            consecutive_failures=c.consecutive_failures,
            last_failure_at=c.last_failure_at,
            config=self.config,
        )

    def performance(self, now: datetime, portfolio: PortfolioSnapshot) -> PerformanceSnapshot:
        return metrics.compute(
            now=now,
            portfolio=portfolio,
            equity=self.equity,
            bar_seconds=self.bar_seconds,
            closed_trade_pnls=self.closed_trades,
            total_trades=self.counters.total_trades,
            reverted_trades=self.counters.failed_trades,
        )

    def indicators(self, price_symbol: str, at: datetime) -> Mapping[str, float]:
        """The strategy's indicator values for the bar closing at `at`.

        A replay knows its whole recording up front, so each symbol's indicators are computed
        once over all of it and looked up by bar (backtests and replayed bots share this path,
        hence make the same decisions); live prices only have the rolling history, so the
        indicators are recomputed over it every tick.
        """
        if not self.strategy.computes_indicators:
            return {}
        table = self.recorded_indicators(price_symbol)
        if table is not None:
            row = table.at(at)
            if row is not None:
                return row
        history = self.history[price_symbol]
        closes = np.fromiter((float(p) for p in history), dtype=np.float64, count=len(history))
        arrays = indicator_arrays(self.strategy, closes)
        return {name: float(values[-1]) for name, values in arrays.items()}

    def recorded_indicators(self, price_symbol: str) -> _RecordedIndicators | None:
        """The indicators over a replay's whole recording of `price_symbol` (None when live)."""
        source = self.feed.source
        if not isinstance(source, ReplaySource):
            return None
        table = self._recorded.get(price_symbol)
        if table is None:
            moments, _, floats = source.recording(price_symbol)
            table = self._recorded[price_symbol] = _RecordedIndicators(
                self.strategy, moments, floats
            )
        return table

    def remember(self, symbol: str, prices: Sequence[Decimal], floats: Sequence[float]) -> None:
        """Append closes to `symbol`'s history; `floats` are the same closes as floats (the
        last `VOLATILITY_CLOSES` of them are enough)."""
        history = self.history.get(symbol)
        if history is None:
            history = self.history[symbol] = deque(maxlen=HISTORY_LENGTH)
            self._recent_closes[symbol] = deque(maxlen=VOLATILITY_CLOSES)
        history.extend(prices)
        self._recent_closes[symbol].extend(floats[-VOLATILITY_CLOSES:])

    def volatility_per_sqrt_second(self, price_symbol: str) -> float:
        closes = list(self._recent_closes.get(price_symbol, ()))
        percent_per_bar = volatility(closes, _VOLATILITY_BARS) or 0.0
        return percent_per_bar / 100 / math.sqrt(self.bar_seconds)


class _Tick:
    """The working state of one tick: events so far and which positions it touched."""

    def __init__(self, analyzer: MarketAnalyzer, now: datetime) -> None:
        self.a = analyzer
        self.now = now
        self.events: list[Event] = []
        self.touched: dict[str, Position] = {}
        self._seq = 0
        self._value: Decimal | None = None

    def portfolio_value(self) -> Decimal:
        """The portfolio's value now: cached, as within a tick only a trade changes it."""
        if self._value is None:
            self._value = self.a.portfolio.total_value_usd
        return self._value

    def _id(self, kind: str) -> uuid.UUID:
        self._seq += 1
        return self.a.ids.make(kind, self.a.counters.tick_number, str(self._seq))

    def thought(
        self,
        symbol: str,
        decision_type: DecisionType,
        reasoning: str,
        *,
        decision: Decision | None = None,
        market_data: dict[str, Any] | None = None,
        trade_id: uuid.UUID | None = None,
        thought_id: uuid.UUID | None = None,
    ) -> None:
        record = ThoughtRecord(
            thought_id=thought_id or self._id("thought"),
            created_at=self.now,
            symbol=symbol,
            decision_type=decision_type,
            confidence=decision.confidence if decision else money.ZERO,
            risk_score=decision.risk_score if decision else money.ZERO,
            opportunity_score=decision.opportunity_score if decision else money.ZERO,
            reasoning=reasoning,
            market_data=market_data or {},
            strategy=self.a.strategy.name,
            trade_id=trade_id,
        )
        self.a.counters.thoughts += 1
        self.events.append(ThoughtLogged(record))

    def feed_problem(self, problem: str) -> None:
        c = self.a.counters
        if c.feed_problem != problem:
            self.events.append(PriceFeedChanged(problem))
            self.thought("", DecisionType.BLOCKED, f"{problem}. Not trading until prices return.")
            c.feed_problem = problem

    def report_breakers(self) -> None:
        c = self.a.counters
        reasons = tripped_breakers(self.a.risk_state(self.now))
        for reason in reasons:
            if reason.code not in c.tripped:
                self.events.append(BreakerTripped(reason.code, reason.message))
                self.thought("", DecisionType.BLOCKED, f"Circuit breaker: {reason.message}")
        c.tripped = [r.code for r in reasons]

    def auto_close(self, snapshot: PriceSnapshot, native_price: Decimal) -> set[str]:
        closed: set[str] = set()
        for position in list(self.a.portfolio.positions.values()):
            token = self.a.chain.token(position.symbol)
            if token.price_symbol not in snapshot.prices:
                continue
            reason = exit_reason(position, self.now, self.a.config)
            if reason is None:
                continue
            thought_id = self._id("thought")
            execution = self._trade(
                token, Side.SELL, position.quantity, native_price, reason.code, thought_id
            )
            text = f"Auto-close: {reason.message}. " + describe_execution(
                execution, "selling everything"
            )
            self.thought(
                position.symbol,
                DecisionType.SELL if execution.trade else DecisionType.BLOCKED,
                text,
                market_data=self._market_data(token.symbol, position.current_price_usd, None),
                trade_id=execution.trade.trade_id if execution.trade else None,
                thought_id=thought_id,
            )
            closed.add(position.symbol)
        return closed

    def analyze(self, token: Token, snapshot: PriceSnapshot, native_price: Decimal) -> None:
        a = self.a
        quote = snapshot.prices.get(token.price_symbol)
        if quote is None:
            reason = snapshot.unavailable.get(token.price_symbol, "no price")
            self.thought(
                token.symbol,
                DecisionType.BLOCKED,
                f"No price for {token.symbol}: {reason}. Skipping it this tick.",
            )
            return
        position = a.portfolio.positions.get(token.symbol)
        view = MarketView(
            symbol=token.symbol,
            now=self.now,
            price=quote.price_usd,
            history=tuple(a.history[token.price_symbol]),
            bar_seconds=a.bar_seconds,
            position=position.view() if position else None,
            cash_usd=a.portfolio.cash_usd,
            portfolio_value_usd=self.portfolio_value(),
            config=a.config,
            indicators=a.indicators(token.price_symbol, quote.timestamp),
        )
        decision = checked_decision(a.strategy, view)
        data = self._market_data(token.symbol, quote.price_usd, decision)
        reasoning = decision.reasoning
        action = decision.action
        threshold = a.config.confidence_threshold
        if action is not Action.HOLD and decision.confidence < threshold:
            reasoning += (
                f" Confidence {decision.confidence} is below the configured threshold "
                f"{threshold}: holding instead of {action.value}."
            )
            action = Action.HOLD
        if action is Action.HOLD:
            self.thought(
                token.symbol, DecisionType.HOLD, reasoning, decision=decision, market_data=data
            )
            return
        thought_id = self._id("thought")
        if action is Action.BUY:
            side, amount = Side.BUY, min(decision.size_usd, a.portfolio.cash_usd)
            if amount < a.config.min_trade_usd:
                self.thought(
                    token.symbol,
                    DecisionType.HOLD,
                    f"{reasoning} Size ${amount:,.2f} is below the ${a.config.min_trade_usd} "
                    "minimum trade: holding.",
                    decision=decision,
                    market_data=data,
                    thought_id=thought_id,
                )
                return
        else:
            if position is None:
                self.thought(
                    token.symbol,
                    DecisionType.HOLD,
                    f"{reasoning} Nothing held to sell.",
                    decision=decision,
                    market_data=data,
                    thought_id=thought_id,
                )
                return
            fraction = min(decision.sell_fraction, money.ONE)
            side = Side.SELL
            amount = (
                position.quantity
                if fraction >= 1
                else money.qty(money.mul(position.quantity, fraction))
            )
        execution = self._trade(token, side, amount, native_price, "strategy", thought_id)
        decided = DecisionType.BUY if side is Side.BUY else DecisionType.SELL
        self.thought(
            token.symbol,
            decided if execution.trade else DecisionType.BLOCKED,
            f"{reasoning} {describe_execution(execution, '')}".strip(),
            decision=decision,
            market_data=data,
            trade_id=execution.trade.trade_id if execution.trade else None,
            thought_id=thought_id,
        )

    def _trade(
        self,
        token: Token,
        side: Side,
        amount: Decimal,
        native_price: Decimal,
        reason: str,
        thought_id: uuid.UUID,
    ) -> Execution:
        a = self.a
        c = a.counters
        price_symbol = token.price_symbol
        request = TradeRequest(
            symbol=token.symbol,
            side=side,
            amount=amount,
            mid_price_usd=a.history[price_symbol][-1],
            native_price_usd=native_price,
            volatility_per_sqrt_second=a.volatility_per_sqrt_second(price_symbol),
            now=self.now,
            reason=reason,
            thought_id=thought_id,
            trade_id=self._id("trade"),
            position_id=a.ids.make("position", c.tick_number, token.symbol),
        )
        execution = a.executor.execute(request, a.risk_state(self.now))
        self._value = None  # even a blocked or reverted swap may have cost gas
        trade = execution.trade
        if trade is None or execution.ledger is None:
            return execution
        a.count_trade(trade, self.now)
        self.events.extend(trade.transactions)
        self.events.append(TradeExecuted(trade))
        if execution.ledger.position is not None:
            self.touched[token.symbol] = execution.ledger.position
        return execution

    def _market_data(
        self, symbol: str, price: Decimal, decision: Decision | None
    ) -> dict[str, Any]:
        a = self.a
        position = a.portfolio.positions.get(symbol)
        data: dict[str, Any] = {
            "price_usd": str(price),
            "chain_id": a.chain.chain_id,
            "cash_usd": str(a.portfolio.cash_usd),
            "portfolio_value_usd": str(self.portfolio_value()),
            "position_quantity": str(position.quantity) if position else "0",
            "position_pnl_percent": str(position.unrealized_pnl_percent) if position else None,
        }
        if decision is not None:
            data["strategy_action"] = decision.action.value
            data["size_usd"] = str(decision.size_usd)
            data["signals"] = dict(decision.signals)
        return data

    def finish(self) -> TickResult:
        a = self.a
        portfolio = a.portfolio
        positions = {**self.touched, **portfolio.positions}
        for position in positions.values():
            self.events.append(PositionChanged(position_snapshot(position)))
        snapshot = portfolio_snapshot(portfolio)
        c = a.counters
        if not c.feed_problem:
            a.equity.add(snapshot.total_value_usd)
        if c.tick_number % a.config.metrics_every_ticks == 0:
            self.events.append(MetricsComputed(a.performance(self.now, snapshot)))
        return TickResult(
            c.tick_number, self.now, tuple(self.events), snapshot, EngineCounters(**vars(c))
        )


def describe_execution(execution: Execution, what: str) -> str:
    """The sentence a thought log ends with: what the swap did, or why nothing happened."""
    trade = execution.trade
    if trade is None:
        return f"Not executed: {execution.blocked}."
    if trade.status is TradeStatus.DROPPED:
        return f"Swap dropped: {trade.revert_reason}; no gas paid."
    if trade.status is TradeStatus.REVERTED:
        return f"Swap reverted: {trade.revert_reason}; gas ${trade.gas_usd:,.4f} still paid."
    if trade.side == Side.BUY.value:
        done = f"Bought {trade.amount_out:.6f} {trade.symbol} for ${trade.amount_in:,.2f}"
    else:
        done = f"Sold {trade.amount_in:.6f} {trade.symbol} for ${trade.amount_out:,.2f}"
    text = (
        f"{done} at ${trade.execution_price_usd:,.4f} (fee ${trade.fee_usd:,.4f}, impact "
        f"{trade.price_impact_bps} bps, gas ${trade.gas_usd:,.4f})."
    )
    if trade.sandwiched:
        text += f" Sandwiched in the mempool: ${trade.mev_cost_usd:,.4f} lost to the attacker."
    return text


def portfolio_snapshot(portfolio: Portfolio) -> PortfolioSnapshot:
    # Portfolio.total_value_usd is cash plus this sum: valued once, not twice.
    positions_value = portfolio.positions_value_usd
    return PortfolioSnapshot(
        initial_balance_usd=portfolio.initial_balance_usd,
        cash_usd=portfolio.cash_usd,
        positions_value_usd=positions_value,
        total_value_usd=portfolio.cash_usd + positions_value,
        realized_pnl_usd=portfolio.realized_pnl_usd,
        unrealized_pnl_usd=portfolio.unrealized_pnl_usd,
        fees_usd=portfolio.fees_usd,
        gas_usd=portfolio.gas_usd,
    )


def position_snapshot(p: Position) -> PositionSnapshot:
    # Position.unrealized_pnl_usd is this value less the cost basis: valued once, not twice.
    value = p.current_value_usd
    return PositionSnapshot(
        position_id=p.position_id,
        symbol=p.symbol,
        chain_id=p.chain_id,
        token_address=p.token_address,
        quantity=p.quantity,
        cost_basis_usd=p.cost_basis_usd,
        entry_costs_usd=p.entry_costs_usd,
        average_entry_price_usd=p.average_entry_price_usd,
        current_price_usd=p.current_price_usd,
        current_value_usd=value,
        unrealized_pnl_usd=value - p.cost_basis_usd,
        realized_pnl_usd=p.realized_pnl_usd,
        peak_price_usd=p.peak_price_usd,
        opened_at=p.opened_at,
        closed_at=p.closed_at,
    )
