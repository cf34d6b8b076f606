"""MarketAnalyzer.tick end to end: scripted prices and decisions through the real simulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine import money
from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.chains import get_chain
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import (
    BreakerTripped,
    DecisionType,
    EngineCounters,
    PositionChanged,
    PriceFeedChanged,
    PricesObserved,
    ThoughtLogged,
    ThoughtRecord,
    TickResult,
    TradeExecuted,
    TradeRecord,
    TradeStatus,
)
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.loop import BotLoop, EndReason
from paper_trading.engine.portfolio import Portfolio
from paper_trading.engine.prices.feed import (
    PriceFeedService,
    PriceQuote,
    PriceSnapshot,
    PriceUnavailableError,
)
from paper_trading.engine.prices.synthetic import SyntheticSource
from paper_trading.engine.schedule import ReplaySchedule
from paper_trading.engine.strategies.base import Action, Decision, MarketView, Strategy
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine

D = Decimal
CHAIN = get_chain("base")
T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
SESSION = uuid.UUID(int=42)
START_PRICES = {"ETH": D(3000), "LINK": D(20), "AAVE": D(100)}
#: Scenario tests trade two tokens; ETH only prices gas.
TOKENS = ("LINK", "AAVE")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


class ScriptedSource:
    """A PriceSource serving the prices a test sets for each moment."""

    name = "scripted"

    def __init__(self) -> None:
        self.table: dict[datetime, dict[str, Decimal]] = {}
        self.missing: dict[datetime, dict[str, str]] = {}
        self.outages: dict[datetime, str] = {}
        self.past: dict[str, list[tuple[datetime, Decimal]]] = {}

    def fetch(self, symbols: Sequence[str], now: datetime) -> PriceSnapshot:
        if now in self.outages:
            raise PriceUnavailableError(self.outages[now])
        table = self.table.get(now, {})
        prices = {s: PriceQuote(s, table[s], now, self.name) for s in symbols if s in table}
        gaps = {s: r for s, r in self.missing.get(now, {}).items() if s in symbols}
        return PriceSnapshot(now, self.name, prices, gaps)

    def history(self, symbol: str, until: datetime, limit: int) -> list[tuple[datetime, Decimal]]:
        return [(t, p) for t, p in self.past.get(symbol, []) if t <= until][-limit:]


def hold(symbol: str) -> Decision:
    return Decision(Action.HOLD, symbol, D(0), D(0), D(10), D(20), D(30), "Nothing to do.")


def buy(symbol: str, usd: str, confidence: str = "80") -> Decision:
    return Decision(
        Action.BUY,
        symbol,
        D(usd),
        D(0),
        D(confidence),
        D(25),
        D(70),
        f"Scripted BUY of ${usd}.",
        {"script": "buy"},
    )


def sell(symbol: str, fraction: str, confidence: str = "80") -> Decision:
    return Decision(
        Action.SELL, symbol, D(0), D(fraction), D(confidence), D(25), D(10), "Scripted SELL."
    )


class ScriptedStrategy(Strategy):
    """Returns the decision planned for (time, symbol), HOLD otherwise; remembers its views."""

    name = "scripted"

    def __init__(self) -> None:
        self.plan: dict[tuple[datetime, str], Decision] = {}
        self.views: list[MarketView] = []

    def decide(self, view: MarketView) -> Decision:
        self.views.append(view)
        return self.plan.get((view.now, view.symbol), hold(view.symbol))


@dataclass
class Harness:
    analyzer: MarketAnalyzer
    source: ScriptedSource
    strategy: ScriptedStrategy
    portfolio: Portfolio
    prices: dict[str, Decimal] = field(default_factory=lambda: dict(START_PRICES))

    def tick(
        self,
        hours: float,
        *,
        plan: Sequence[Decision] = (),
        missing: Mapping[str, str] | None = None,
        outage: str | None = None,
        **prices: str,
    ) -> TickResult:
        """Run the tick `hours` after T0, with price changes that persist and one-off gaps."""
        now = at(hours)
        self.prices.update({s: D(p) for s, p in prices.items()})
        gaps = dict(missing or {})
        self.source.table[now] = {s: p for s, p in self.prices.items() if s not in gaps}
        self.source.missing[now] = gaps
        if outage is not None:
            self.source.outages[now] = outage
        for decision in plan:
            self.strategy.plan[(now, decision.symbol)] = decision
        result = self.analyzer.tick(now)
        assert self.portfolio.ledger_difference() == 0
        return result


def harness(
    config: TradingConfig | None = None,
    *,
    namespace: uuid.UUID = SESSION,
    counters: EngineCounters | None = None,
) -> Harness:
    source = ScriptedSource()
    strategy = ScriptedStrategy()
    portfolio = Portfolio.new(D(10_000))
    analyzer = MarketAnalyzer(
        chain=CHAIN,
        feed=PriceFeedService(source, max_age=timedelta(hours=2)),
        strategy=strategy,
        simulator=DexSimulator(CHAIN, seed=1),
        portfolio=portfolio,
        config=config or TradingConfig(allowed_tokens=TOKENS),
        ids=IdFactory(namespace),
        bar_seconds=3600,
        counters=counters,
    )
    return Harness(analyzer, source, strategy, portfolio)


def thoughts(result: TickResult, symbol: str | None = None) -> list[ThoughtRecord]:
    return [
        e.thought
        for e in result.of_type(ThoughtLogged)
        if symbol is None or e.thought.symbol == symbol
    ]


def the_thought(result: TickResult, symbol: str) -> ThoughtRecord:
    (thought,) = thoughts(result, symbol)
    return thought


def trades(result: TickResult) -> list[TradeRecord]:
    return [e.trade for e in result.of_type(TradeExecuted)]


def the_trade(result: TickResult) -> TradeRecord:
    (trade,) = trades(result)
    return trade


def assert_linked(thought: ThoughtRecord, trade: TradeRecord) -> None:
    assert trade.thought_id == thought.thought_id
    assert thought.trade_id == trade.trade_id


# -- (a) thoughts and trades ---------------------------------------------------------------


def test_every_decision_is_a_thought_and_a_buy_is_linked_to_its_trade() -> None:
    h = harness()
    quiet = h.tick(0)
    # One thought per token, in the chain's token order.
    assert [(t.symbol, t.decision_type) for t in thoughts(quiet)] == [
        ("AAVE", DecisionType.HOLD),
        ("LINK", DecisionType.HOLD),
    ]
    link_hold = the_thought(quiet, "LINK")
    assert link_hold.reasoning == "Nothing to do."
    assert (link_hold.confidence, link_hold.risk_score, link_hold.opportunity_score) == (
        D(10),
        D(20),
        D(30),
    )
    assert link_hold.strategy == "scripted"
    assert link_hold.trade_id is None
    assert link_hold.market_data["price_usd"] == "20"
    assert trades(quiet) == []
    (observed,) = quiet.of_type(PricesObserved)
    assert observed.source == "scripted"
    assert observed.prices == {s: (at(0), p) for s, p in START_PRICES.items()}

    bought = h.tick(1, plan=[buy("LINK", "1000")])
    trade = the_trade(bought)
    thought = the_thought(bought, "LINK")
    assert thought.decision_type is DecisionType.BUY
    assert_linked(thought, trade)
    assert thought.confidence == D(80)
    assert thought.market_data["strategy_action"] == "BUY"
    assert thought.market_data["signals"] == {"script": "buy"}
    assert thought.reasoning.startswith("Scripted BUY of $1000. Bought ")
    assert the_thought(bought, "AAVE").decision_type is DecisionType.HOLD

    assert trade.status is TradeStatus.EXECUTED
    assert (trade.side, trade.symbol, trade.reason) == ("BUY", "LINK", "strategy")
    assert (trade.token_in, trade.token_out) == ("USDC", "LINK")
    assert trade.amount_in == D(1000)
    assert trade.amount_in_usd == D(1000)
    assert trade.amount_out > 0
    assert trade.mid_price_usd == D(20)  # no volatility yet: included at the quoted mid
    # Base's LINK pool charges 0.3%: 3 USDC on 1,000, i.e. 30 bps.
    assert trade.fee_usd == D(3)
    assert trade.fee_bps == D(30)
    assert trade.price_impact_bps >= 0
    assert trade.gas_usd > 0
    assert trade.gas_units > 0
    assert 0 < trade.approval_gas_usd < trade.gas_usd  # first USDC spend pays the approval
    assert trade.slippage_tolerance_bps == D(50)
    assert trade.execution_price_usd > D(20)  # fee and impact make the fill worse than mid
    assert trade.net_pnl_usd == -(trade.fee_usd + trade.gas_usd)
    assert trade.realized_pnl_usd == 0

    position = h.portfolio.positions["LINK"]
    assert trade.position_id == position.position_id
    assert position.quantity == trade.amount_out
    assert position.cost_basis_usd == D(997)
    assert h.portfolio.cash_usd == D(10_000) - D(1000) - trade.gas_usd
    (changed,) = bought.of_type(PositionChanged)
    assert changed.position.position_id == position.position_id
    assert changed.position.is_open
    assert bought.counters.total_trades == 1
    assert bought.counters.trades_today == 1
    assert bought.counters.thoughts == 4  # two per tick
    assert bought.portfolio.cash_usd == h.portfolio.cash_usd

    again = h.tick(2, plan=[buy("LINK", "500")])
    assert the_trade(again).approval_gas_usd == 0  # USDC is approved already
    assert h.portfolio.positions["LINK"].position_id == position.position_id


def test_a_strategy_sell_sells_the_fraction_asked() -> None:
    h = harness()
    h.tick(0, plan=[buy("LINK", "1000")])
    held = h.portfolio.positions["LINK"].quantity
    result = h.tick(1, plan=[sell("LINK", "0.5")])
    trade = the_trade(result)
    assert_linked(the_thought(result, "LINK"), trade)
    assert (trade.side, trade.reason, trade.token_out) == ("SELL", "strategy", "USDC")
    assert trade.amount_in == money.qty(held * D("0.5"))
    assert h.portfolio.positions["LINK"].quantity == held - trade.amount_in
    assert trade.approval_gas_usd > 0  # the first LINK spend
    assert (h.analyzer.closed_trades.count, h.analyzer.closed_trades.best) == (
        1,
        trade.net_pnl_usd,
    )


def test_a_sell_with_nothing_held_is_a_hold() -> None:
    h = harness()
    result = h.tick(0, plan=[sell("AAVE", "1")])
    thought = the_thought(result, "AAVE")
    assert thought.decision_type is DecisionType.HOLD
    assert thought.reasoning == "Scripted SELL. Nothing held to sell."
    assert trades(result) == []


def test_a_buy_below_the_minimum_trade_is_a_hold() -> None:
    h = harness()
    result = h.tick(0, plan=[buy("AAVE", "9.99")])
    thought = the_thought(result, "AAVE")
    assert thought.decision_type is DecisionType.HOLD
    assert "Size $9.99 is below the $10 minimum trade: holding." in thought.reasoning
    assert trades(result) == []
    assert the_trade(h.tick(1, plan=[buy("AAVE", "10")])).amount_in == D(10)


# -- (b) auto-close rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path", "code"),
    [
        # Average entry 20.001 (the cost basis is net of the fee, so only the ~1 bp impact
        # shows): -4.5% holds, -5.5% stops out.
        pytest.param(TradingConfig(), [(2, "19.1"), (3, "18.9")], "stop_loss", id="stop-loss"),
        # +9.5% holds, +11% takes the profit.
        pytest.param(TradingConfig(), [(2, "21.9"), (3, "22.2")], "take_profit", id="take-profit"),
        # Peak 21 with a 5% trail puts the stop at 19.95: 20.0 holds, 19.9 sells (-0.5% from the
        # entry, nowhere near the stop-loss).
        pytest.param(
            TradingConfig(trailing_stop_percent=D(5)),
            [(2, "21"), (3, "20.0"), (4, "19.9")],
            "trailing_stop",
            id="trailing-stop",
        ),
        # Bought at 01:00: still held at 24:59, closed at 25:00, after exactly 24 h.
        pytest.param(
            TradingConfig(),
            [(24 + 59 / 60, "20"), (25, "20")],
            "max_hold_time",
            id="max-hold-time",
        ),
    ],
)
def test_each_exit_rule_closes_the_position(
    config: TradingConfig, path: list[tuple[float, str]], code: str
) -> None:
    h = harness(TradingConfig(**{**vars(config), "allowed_tokens": TOKENS}))
    h.tick(1, plan=[buy("LINK", "1000")])
    position = h.portfolio.positions["LINK"]
    *before, (last_hour, last_price) = path
    for hour, price in before:
        result = h.tick(hour, LINK=price)
        assert trades(result) == [], f"closed early at {price}"
        assert "LINK" in h.portfolio.positions
    views_before = len(h.strategy.views)
    quantity = position.quantity

    result = h.tick(last_hour, LINK=last_price)
    trade = the_trade(result)
    thought = the_thought(result, "LINK")
    assert (trade.side, trade.reason, trade.status) == ("SELL", code, TradeStatus.EXECUTED)
    assert trade.amount_in == quantity  # the whole position
    assert position.quantity == 0
    assert trade.position_id == position.position_id
    assert thought.decision_type is DecisionType.SELL
    assert thought.reasoning.startswith("Auto-close: ")
    assert "Sold " in thought.reasoning
    assert_linked(thought, trade)
    assert "LINK" not in h.portfolio.positions
    assert position.closed_at == at(last_hour)
    (changed,) = result.of_type(PositionChanged)
    assert not changed.position.is_open
    # The strategy is not asked about a token the tick just closed; AAVE still is.
    assert [v.symbol for v in h.strategy.views[views_before:]] == ["AAVE"]
    assert (h.analyzer.closed_trades.count, h.analyzer.closed_trades.best) == (
        1,
        trade.net_pnl_usd,
    )
    if code == "stop_loss":
        assert trade.realized_pnl_usd < 0
    if code == "take_profit":
        assert trade.realized_pnl_usd > 0


# -- (c) circuit breakers --------------------------------------------------------------------

# One market for every breaker: at 01:00 buy 1,000 of AAVE, then 2,000 of LINK; at 02:00 AAVE
# drops 3% (-30, and the entries cost ~9: the account is down ~0.39%); at 03:00 it is down 6% and
# the stop-loss sells it; the next day starts at 24:00. The strategy keeps asking to buy LINK.
BREAKER_CASES = [
    # Floor 10,000 x (1 - 0.25%) = 9,975: ~9,991 after the entries, ~9,961 after the drop.
    pytest.param(
        TradingConfig(max_portfolio_loss_percent=D("0.25"), allowed_tokens=TOKENS),
        "max_portfolio_loss",
        False,
        id="max-portfolio-loss",
    ),
    pytest.param(
        TradingConfig(daily_loss_limit_percent=D("0.25"), allowed_tokens=TOKENS),
        "daily_loss",
        True,
        id="daily-loss",
    ),
    # The two entries are the day's two trades.
    pytest.param(
        TradingConfig(max_daily_trades=2, allowed_tokens=TOKENS),
        "daily_trade_limit",
        True,
        id="daily-trade-limit",
    ),
    # Cash is 9,000 after the AAVE entry (so LINK is allowed) and 7,000 after LINK; the AAVE
    # stop-loss brings back about 934, still under 8,000.
    pytest.param(
        TradingConfig(min_balance_usd=D(8000), allowed_tokens=TOKENS),
        "minimum_balance",
        False,
        id="minimum-balance",
    ),
]


@pytest.mark.parametrize(("config", "code", "clears_next_day"), BREAKER_CASES)
def test_a_breaker_blocks_buys_reports_once_and_lets_exits_run(
    config: TradingConfig, code: str, clears_next_day: bool
) -> None:
    h = harness(config)
    entries = h.tick(1, plan=[buy("AAVE", "1000"), buy("LINK", "2000")])
    assert [t.symbol for t in trades(entries)] == ["AAVE", "LINK"]
    assert entries.of_type(BreakerTripped) == []

    tripped = h.tick(2, plan=[buy("LINK", "500")], AAVE="97")
    (event,) = tripped.of_type(BreakerTripped)
    assert event.code == code
    bot_wide = the_thought(tripped, "")
    assert bot_wide.decision_type is DecisionType.BLOCKED
    assert bot_wide.reasoning == f"Circuit breaker: {event.message}"
    blocked = the_thought(tripped, "LINK")
    assert blocked.decision_type is DecisionType.BLOCKED
    assert blocked.reasoning == f"Scripted BUY of $500. Not executed: {event.message}."
    assert blocked.trade_id is None
    assert trades(tripped) == []
    assert tripped.counters.tripped == [code]

    still = h.tick(3, plan=[buy("LINK", "500")], AAVE="94")
    assert still.of_type(BreakerTripped) == []  # reported once, not every tick
    assert thoughts(still, "") == []
    assert the_thought(still, "LINK").decision_type is DecisionType.BLOCKED
    exit_trade = the_trade(still)
    assert (exit_trade.symbol, exit_trade.side, exit_trade.reason) == ("AAVE", "SELL", "stop_loss")
    assert exit_trade.status is TradeStatus.EXECUTED
    assert still.counters.tripped == [code]

    next_day = h.tick(24, plan=[buy("LINK", "500")])
    if clears_next_day:
        assert next_day.counters.tripped == []
        assert the_thought(next_day, "LINK").decision_type is DecisionType.BUY
        assert [t.symbol for t in trades(next_day)] == ["LINK"]
    else:
        assert next_day.counters.tripped == [code]
        assert the_thought(next_day, "LINK").decision_type is DecisionType.BLOCKED
        assert trades(next_day) == []


def test_a_breaker_that_clears_and_trips_again_is_reported_again() -> None:
    h = harness(TradingConfig(max_daily_trades=1, allowed_tokens=TOKENS))
    h.tick(1, plan=[buy("LINK", "100")])
    assert [e.code for e in h.tick(2).of_type(BreakerTripped)] == ["daily_trade_limit"]
    assert h.tick(3).of_type(BreakerTripped) == []
    h.tick(24, plan=[buy("LINK", "100")])  # new day: cleared, and this buy uses it up again
    assert [e.code for e in h.tick(25).of_type(BreakerTripped)] == ["daily_trade_limit"]


def test_consecutive_failures_block_buys_until_the_cool_down_ends() -> None:
    # A restarted bot carries its counters: five reverts in a row, the last at 00:30.
    counters = EngineCounters(consecutive_failures=5, last_failure_at=at(0.5))
    h = harness(counters=counters)
    first = h.tick(1, plan=[buy("LINK", "100")])
    (event,) = first.of_type(BreakerTripped)
    assert event.code == "consecutive_failures"
    assert "5 swaps in a row failed, reverted or dropped (limit 5)" in event.message
    assert "until 2026-01-05 01:30 UTC" in event.message
    assert the_thought(first, "LINK").decision_type is DecisionType.BLOCKED
    assert trades(first) == []

    almost = h.tick(1 + 29 / 60, plan=[buy("LINK", "100")])
    assert almost.of_type(BreakerTripped) == []
    assert the_thought(almost, "LINK").decision_type is DecisionType.BLOCKED

    resumed = h.tick(1.5, plan=[buy("LINK", "100")])
    assert resumed.counters.tripped == []
    assert the_trade(resumed).status is TradeStatus.EXECUTED
    assert resumed.counters.consecutive_failures == 0  # a fill ends the streak


def test_a_reverted_swap_pays_gas_counts_as_a_failure_and_trips_the_breaker() -> None:
    # A choppy history (20 <-> 22 every hour, ~9.5% per bar) makes the price move a lot while a
    # swap is pending; with 0.05% slippage tolerance about half the buys revert.
    config = TradingConfig(
        slippage_tolerance_percent=D("0.05"), max_consecutive_failures=1, allowed_tokens=TOKENS
    )
    h = harness(config)
    h.source.past["LINK"] = [(at(-60 + k), D(20 + 2 * (k % 2))) for k in range(60)]
    h.analyzer.warm_up(at(0))
    reverted: TradeRecord | None = None
    hours = 0.0
    for _ in range(20):
        result = h.tick(hours, plan=[buy("LINK", "100")])
        trade = the_trade(result)
        if trade.status is TradeStatus.REVERTED:
            reverted = trade
            break
        hours += 0.25
    assert reverted is not None, "no swap reverted in 20 volatile ticks"
    thought = the_thought(result, "LINK")
    assert_linked(thought, reverted)
    assert thought.decision_type is DecisionType.BUY
    assert "Swap reverted: price moved" in thought.reasoning
    assert "still paid" in thought.reasoning
    assert reverted.revert_reason.startswith("price moved")
    assert (reverted.amount_in, reverted.amount_out, reverted.fee_usd) == (D(0), D(0), D(0))
    assert reverted.gas_usd > 0
    assert reverted.net_pnl_usd == -reverted.gas_usd
    counters = h.analyzer.counters
    assert counters.consecutive_failures == 1
    assert counters.failed_trades == 1
    assert counters.last_failure_at == at(hours)

    blocked = h.tick(hours + 0.25, plan=[buy("LINK", "100")])
    (event,) = blocked.of_type(BreakerTripped)
    assert event.code == "consecutive_failures"
    assert "1 swaps in a row failed, reverted or dropped (limit 1)" in event.message
    assert the_thought(blocked, "LINK").decision_type is DecisionType.BLOCKED


# -- (d) missing prices --------------------------------------------------------------------


def test_a_token_gap_blocks_that_token_only() -> None:
    h = harness()
    h.tick(0, plan=[buy("AAVE", "1000")])
    gap = "no recorded bar at 2026-01-05 01:00 (gap)"
    # AAVE would be at a stop-loss price, but with no price the exit cannot be judged either.
    result = h.tick(1, plan=[buy("LINK", "100")], missing={"LINK": gap, "AAVE": gap}, AAVE="50")
    for symbol in TOKENS:
        thought = the_thought(result, symbol)
        assert thought.decision_type is DecisionType.BLOCKED
        assert thought.reasoning == f"No price for {symbol}: {gap}. Skipping it this tick."
    assert trades(result) == []
    assert h.strategy.views[-1].now == at(0)  # not consulted at all at 01:00
    assert "AAVE" in h.portfolio.positions

    one_gap = h.tick(2, plan=[buy("LINK", "100")], missing={"AAVE": gap})
    assert the_trade(one_gap).symbol == "LINK"
    assert the_thought(one_gap, "AAVE").decision_type is DecisionType.BLOCKED

    back = h.tick(3)
    assert [(t.symbol, t.reason) for t in trades(back)] == [("AAVE", "stop_loss")]


def test_without_a_native_price_the_bot_stops_until_prices_return() -> None:
    h = harness()
    h.tick(0)
    equity_points = len(h.analyzer.equity)

    stopped = h.tick(1, plan=[buy("LINK", "100")], missing={"ETH": "gap"})
    problem = "no ETH price to value gas (gap); not trading"
    assert stopped.of_type(PriceFeedChanged) == [PriceFeedChanged(problem)]
    (thought,) = thoughts(stopped)
    assert (thought.symbol, thought.decision_type) == ("", DecisionType.BLOCKED)
    assert thought.reasoning == f"{problem}. Not trading until prices return."
    assert trades(stopped) == []
    assert stopped.counters.feed_problem == problem

    still = h.tick(2, plan=[buy("LINK", "100")], missing={"ETH": "gap"})
    assert still.of_type(PriceFeedChanged) == []  # the change is reported once
    assert thoughts(still) == []
    assert trades(still) == []
    assert len(h.analyzer.equity) == equity_points  # no equity points while not trading

    back = h.tick(3, plan=[buy("LINK", "100")])
    assert back.of_type(PriceFeedChanged) == [PriceFeedChanged("")]
    recovered = the_thought(back, "")
    assert recovered.decision_type is DecisionType.HOLD
    assert recovered.reasoning == f"price feed back after: {problem}"
    assert the_trade(back).symbol == "LINK"
    assert back.counters.feed_problem == ""
    assert len(h.analyzer.equity) == equity_points + 1


def test_a_source_outage_stops_trading_and_recovers() -> None:
    h = harness()
    down = h.tick(0, plan=[buy("LINK", "100")], outage="HTTP 503 from the price API")
    problem = "price feed unavailable: HTTP 503 from the price API"
    assert down.of_type(PriceFeedChanged) == [PriceFeedChanged(problem)]
    assert down.of_type(PricesObserved) == []
    assert trades(down) == []
    back = h.tick(1, plan=[buy("LINK", "100")])
    assert back.of_type(PriceFeedChanged) == [PriceFeedChanged("")]
    assert the_trade(back).symbol == "LINK"


# -- (e) confidence threshold --------------------------------------------------------------


def test_a_buy_below_the_confidence_threshold_becomes_a_hold() -> None:
    h = harness()
    assert h.analyzer.config.confidence_threshold == D(40)
    result = h.tick(0, plan=[buy("LINK", "1000", confidence="39.99")])
    thought = the_thought(result, "LINK")
    assert thought.decision_type is DecisionType.HOLD
    assert thought.reasoning == (
        "Scripted BUY of $1000. Confidence 39.99 is below the configured threshold 40: "
        "holding instead of BUY."
    )
    assert thought.confidence == D("39.99")
    assert thought.market_data["strategy_action"] == "BUY"
    assert trades(result) == []
    # At the threshold it acts.
    at_threshold = h.tick(1, plan=[buy("LINK", "1000", confidence="40")])
    assert the_thought(at_threshold, "LINK").decision_type is DecisionType.BUY
    assert the_trade(at_threshold).side == "BUY"


def test_a_sell_below_the_confidence_threshold_becomes_a_hold() -> None:
    h = harness(TradingConfig(confidence_threshold=D(60), allowed_tokens=TOKENS))
    h.tick(0, plan=[buy("LINK", "1000")])
    result = h.tick(1, plan=[sell("LINK", "1", confidence="59")])
    thought = the_thought(result, "LINK")
    assert thought.decision_type is DecisionType.HOLD
    assert "Confidence 59 is below the configured threshold 60: holding instead of SELL." in (
        thought.reasoning
    )
    assert trades(result) == []
    assert "LINK" in h.portfolio.positions


# -- (g) deterministic ids -----------------------------------------------------------------


def _scripted_run(namespace: uuid.UUID) -> list[TickResult]:
    h = harness(namespace=namespace)
    return [
        h.tick(0, plan=[buy("LINK", "1000"), buy("AAVE", "500")]),
        h.tick(1, plan=[sell("AAVE", "0.5")]),
        h.tick(2, LINK="18"),  # stop-loss
    ]


def _ids(results: list[TickResult]) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    for result in results:
        found += [t.thought_id for t in thoughts(result)]
        for trade in trades(result):
            assert trade.position_id is not None
            found += [trade.trade_id, trade.position_id]
    return found


def test_ids_are_derived_from_the_session() -> None:
    first = _scripted_run(SESSION)
    again = _scripted_run(SESSION)
    other = _scripted_run(uuid.UUID(int=43))
    assert sum(len(trades(r)) for r in first) == 4
    assert _ids(first) == _ids(again)
    assert [trades(r) for r in first] == [trades(r) for r in again]
    assert set(_ids(first)).isdisjoint(_ids(other))
    # Thought and trade ids are unique within the session; positions are named at opening.
    ids = _ids(first)
    position_ids = {t.position_id for r in first for t in trades(r)}
    thought_and_trade_ids = [i for i in ids if i not in position_ids]
    assert len(set(thought_and_trade_ids)) == len(thought_and_trade_ids)
    # The position opened by the LINK buy at tick 1 is named from (session, tick, symbol).
    (link_buy,) = [t for t in trades(first[0]) if t.symbol == "LINK"]
    assert link_buy.position_id == IdFactory(SESSION).make("position", 1, "LINK")
    assert len(position_ids) == 2


# -- (f) a long synthetic run with the real strategy -----------------------------------------

LONG_TICKS = 10_000
PREFIX_TICKS = 1_500
SYNTHETIC_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class _Run:
    trades: list[TradeRecord]
    ledger_differences: set[Decimal]
    outcome_ticks: int
    outcome_reason: EndReason
    portfolio: Portfolio


class _Recorder:
    """A sink that checks the books after every tick and keeps the trades."""

    def __init__(self, portfolio: Portfolio) -> None:
        self.portfolio = portfolio
        self.trades: list[TradeRecord] = []
        self.ledger_differences: set[Decimal] = set()

    def publish(self, result: TickResult) -> None:
        self.ledger_differences.add(self.portfolio.ledger_difference())
        self.trades += trades(result)


def _synthetic_run(seed: int, ticks: int) -> _Run:
    source = SyntheticSource(seed=seed, start=SYNTHETIC_START, step_seconds=3600)
    portfolio = Portfolio.new(D(10_000))
    # One token keeps 10,000 ticks fast; metrics are recomputed over the whole equity curve, so
    # they are asked for rarely here (they never feed back into decisions).
    config = TradingConfig(allowed_tokens=("WETH",), metrics_every_ticks=1_000)
    analyzer = MarketAnalyzer(
        chain=CHAIN,
        feed=PriceFeedService(source, max_age=timedelta(hours=2)),
        strategy=IntelSliderEngine(7),
        simulator=DexSimulator(CHAIN, seed=seed),
        portfolio=portfolio,
        config=config,
        ids=IdFactory(SESSION),
        bar_seconds=3600,
    )
    recorder = _Recorder(portfolio)
    loop = BotLoop(analyzer, ReplaySchedule(source.timeline(ticks)), [recorder], threading.Event())
    outcome = loop.run()
    return _Run(
        recorder.trades, recorder.ledger_differences, outcome.ticks, outcome.reason, portfolio
    )


@pytest.fixture(scope="module")
def long_run() -> _Run:
    return _synthetic_run(seed=11, ticks=LONG_TICKS)


@pytest.mark.slow
def test_a_long_synthetic_run_keeps_the_books_exact_and_trades(long_run: _Run) -> None:
    assert (long_run.outcome_ticks, long_run.outcome_reason) == (LONG_TICKS, EndReason.COMPLETED)
    assert long_run.ledger_differences == {D(0)}
    sides = {t.side for t in long_run.trades}
    assert sides == {"BUY", "SELL"}
    assert len(long_run.trades) >= 100
    assert {t.reason for t in long_run.trades} > {"strategy"}  # some auto-closes too
    assert all(t.fee_usd > 0 and t.gas_usd > 0 for t in long_run.trades if t.status == "EXECUTED")
    assert long_run.portfolio.ledger_difference() == 0


@pytest.mark.slow
def test_the_same_seed_makes_the_same_trades(long_run: _Run) -> None:
    cutoff = SYNTHETIC_START + timedelta(hours=PREFIX_TICKS)
    prefix = [t for t in long_run.trades if t.created_at < cutoff]
    assert len(prefix) >= 10
    assert _synthetic_run(seed=11, ticks=PREFIX_TICKS).trades == prefix
    assert _synthetic_run(seed=12, ticks=PREFIX_TICKS).trades != prefix
