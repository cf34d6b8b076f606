"""TradeExecutor routing swaps through the transaction manager on scripted fee paths."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from paper_trading.engine import money
from paper_trading.engine.chains import ETHEREUM, Chain, PoolKind, PoolSpec
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import BreakerTripped, TradeStatus, TransactionChanged
from paper_trading.engine.executor import Execution, TradeExecutor, TradeRequest
from paper_trading.engine.portfolio import Portfolio
from paper_trading.engine.risk import RiskState
from paper_trading.engine.tx.fee_path import ScriptedFeePath
from tests.engine.test_analyzer import CHAIN, TOKENS, at, buy, harness, the_trade

GWEI = 10**9
NOW = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)
BLOCK = timedelta(seconds=12)
MID = Decimal(2500)
V2_WETH = {"WETH": PoolSpec(PoolKind.V2, 3000, Decimal(2_000_000))}
#: Tips paid per block at the 10th/50th/90th percentiles: a legacy 1.25 x base bid clears them.
CHEAP_TIPS = (0, 0, 0)


class ScriptedMarket(DexSimulator):
    """The real simulator, with the mid price at each moment given by the test."""

    def __init__(self, chain: Chain, prices: Callable[[datetime], Decimal]) -> None:
        super().__init__(chain, pool_overrides=V2_WETH)
        self.prices = prices

    def price_path(
        self, symbol: str, mid_price_usd: Decimal, now: datetime, volatility: float
    ) -> Callable[[datetime], Decimal]:
        return self.prices


def _flat(_: datetime) -> Decimal:
    return MID


def _executor(
    base_fees: list[int],
    tips: tuple[int, int, int] = CHEAP_TIPS,
    prices: Callable[[datetime], Decimal] = _flat,
) -> TradeExecutor:
    path = ScriptedFeePath(ETHEREUM, NOW, base_fees, [tips])
    portfolio = Portfolio.new(Decimal(100_000))
    return TradeExecutor(ETHEREUM, ScriptedMarket(ETHEREUM, prices), portfolio, fee_path=path)


def _buy(
    executor: TradeExecutor, usdc: str = "1000", **config: object
) -> tuple[Execution, Portfolio]:
    settings = {"gas_strategy": "legacy", "sandwich_probability": Decimal(0), **config}
    trading = TradingConfig(**settings)  # type: ignore[arg-type]
    portfolio = executor.portfolio
    request = TradeRequest(
        symbol="WETH",
        side=Side.BUY,
        amount=Decimal(usdc),
        mid_price_usd=MID,
        native_price_usd=MID,
        volatility_per_sqrt_second=0.0,
        now=NOW,
        reason="strategy",
        thought_id=uuid.uuid4(),
        trade_id=uuid.uuid4(),
        position_id=uuid.uuid4(),
    )
    risk = RiskState(
        now=NOW,
        initial_balance_usd=portfolio.initial_balance_usd,
        portfolio_value_usd=portfolio.total_value_usd,
        cash_usd=portfolio.cash_usd,
        day_start_value_usd=portfolio.total_value_usd,
        trades_today=0,
        consecutive_failures=0,
        last_failure_at=None,
        config=trading,
    )
    return executor.execute(request, risk), portfolio


def _states(events: tuple[TransactionChanged, ...]) -> list[tuple[str, int, int]]:
    return [(e.state, e.attempt, e.block) for e in events]


def test_included_next_block_fills_at_the_blocks_price_and_fees() -> None:
    later = MID * Decimal("1.001")
    executor = _executor([10 * GWEI], prices=lambda moment: later if moment > NOW else MID)
    execution, portfolio = _buy(executor)
    trade = execution.trade
    assert trade is not None
    assert trade.status is TradeStatus.EXECUTED
    assert _states(trade.transactions) == [("submitted", 0, 1), ("included", 0, 1)]
    assert trade.transactions[-1].at == NOW + BLOCK
    assert trade.transactions[-1].base_fee_gwei == Decimal(10)
    assert trade.transactions[-1].max_fee_gwei == Decimal("12.5")
    assert (trade.gas_strategy, trade.tx_attempts, trade.inclusion_delay_blocks) == ("legacy", 1, 1)
    # Price at inclusion, not at the decision, sets the fill.
    assert trade.mid_price_usd == later
    # A legacy price is paid whole: 12.5 gwei per gas (plus the USDC approval).
    assert trade.gas_price_gwei == Decimal("12.5")
    assert trade.gas_usd == portfolio.gas_usd > 0
    assert not trade.sandwiched
    assert trade.mev_cost_usd == trade.private_routing_fee_usd == 0
    assert portfolio.ledger_difference() == 0


def test_a_revert_while_pending_burns_gas() -> None:
    # The price jumps 2% against the buy before the block: a 0.5% tolerance reverts it.
    executor = _executor([10 * GWEI], prices=lambda moment: MID * Decimal("1.02"))
    execution, portfolio = _buy(executor)
    trade = execution.trade
    assert trade is not None
    assert trade.status is TradeStatus.REVERTED
    assert trade.status.failed
    assert _states(trade.transactions) == [("submitted", 0, 1), ("reverted", 0, 1)]
    assert trade.revert_reason.startswith("price moved 2.00% against the swap")
    assert trade.amount_out == 0
    assert trade.gas_usd > 0
    assert portfolio.cash_usd == Decimal(100_000) - trade.gas_usd
    assert portfolio.ledger_difference() == 0


def test_a_stuck_swap_is_replaced_with_a_higher_fee_then_included() -> None:
    # A 2.5 gwei legacy tip is below the 3 gwei every block takes; the +10% replacement clears it.
    executor = _executor([10 * GWEI], tips=(3 * GWEI, 4 * GWEI, 5 * GWEI))
    execution, portfolio = _buy(executor)
    trade = execution.trade
    assert trade is not None
    assert trade.status is TradeStatus.EXECUTED
    assert _states(trade.transactions) == [
        ("submitted", 0, 1),
        ("pending", 0, 1),
        ("replaced", 0, 3),
        ("submitted", 1, 4),
        ("included", 1, 4),
    ]
    assert trade.transactions[-1].max_fee_gwei == Decimal("13.75")
    assert (trade.tx_attempts, trade.inclusion_delay_blocks) == (2, 4)
    assert trade.gas_price_gwei == Decimal("13.75")
    assert portfolio.ledger_difference() == 0


def test_a_dropped_swap_fills_nothing_and_pays_nothing() -> None:
    executor = _executor([10 * GWEI], tips=(100 * GWEI,) * 3)
    execution, portfolio = _buy(executor)
    trade = execution.trade
    assert trade is not None
    assert trade.status is TradeStatus.DROPPED
    assert trade.status.failed
    assert trade.transactions[-1].state == "dropped"
    assert trade.tx_attempts == 4  # the first send and three replacements
    assert "still stuck after 3 replacements" in trade.revert_reason
    assert {trade.amount_in, trade.amount_out, trade.fee_usd, trade.gas_usd} == {Decimal(0)}
    assert portfolio.cash_usd == Decimal(100_000)
    assert portfolio.gas_usd == portfolio.fees_usd == 0
    assert not portfolio.positions
    assert not portfolio.approvals  # nothing landed, so the approval is still to pay
    assert execution.ledger is not None
    assert execution.ledger.net_pnl_usd == 0


def test_a_sandwiched_swap_records_its_cost_and_the_books_balance() -> None:
    clean, _ = _buy(_executor([10 * GWEI]), "50000", slippage_tolerance_percent=Decimal(1))
    execution, portfolio = _buy(
        _executor([10 * GWEI]),
        "50000",
        slippage_tolerance_percent=Decimal(1),
        sandwich_probability=Decimal(1),
    )
    trade, unsandwiched = execution.trade, clean.trade
    assert trade is not None
    assert unsandwiched is not None
    assert trade.status is TradeStatus.EXECUTED
    assert trade.sandwiched
    assert not unsandwiched.sandwiched
    assert trade.amount_out == trade.min_amount_out < unsandwiched.amount_out
    # The victim's loss: what the clean fill would have given, less the minimum, at the mid.
    lost = unsandwiched.amount_out - trade.amount_out
    assert trade.mev_cost_usd == money.usd(lost * MID) > 0
    assert "sandwiched" in trade.transactions[-1].reason
    assert portfolio.positions["WETH"].quantity == trade.min_amount_out
    assert portfolio.ledger_difference() == 0


def test_private_routing_avoids_the_sandwich_and_its_fee_is_gas() -> None:
    execution, portfolio = _buy(
        _executor([10 * GWEI]),
        "50000",
        slippage_tolerance_percent=Decimal(1),
        sandwich_probability=Decimal(1),
        private_routing=True,
    )
    trade = execution.trade
    assert trade is not None
    assert not trade.sandwiched
    assert trade.private_routing_fee_usd == Decimal("0.5")
    assert trade.gas_usd == portfolio.gas_usd
    assert portfolio.ledger_difference() == 0
    position = portfolio.positions["WETH"]
    assert position.entry_costs_usd == trade.fee_usd + trade.gas_usd


def test_the_default_strategy_keeps_the_simulator_path() -> None:
    executor = _executor([10 * GWEI])
    execution, _ = _buy(executor, gas_strategy="simulator")
    trade = execution.trade
    assert trade is not None
    assert trade.gas_strategy == "simulator"
    assert trade.transactions == ()
    assert 1 <= trade.inclusion_delay_blocks <= 3


def test_an_unknown_gas_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown gas strategy 'turbo'"):
        TradingConfig(gas_strategy="turbo")


def test_dropped_swaps_count_for_the_consecutive_failure_breaker() -> None:
    config = TradingConfig(gas_strategy="legacy", max_consecutive_failures=1, allowed_tokens=TOKENS)
    h = harness(config)
    # Every block on this path wants a 100 gwei tip: no legacy bid or replacement gets in.
    path = ScriptedFeePath(CHAIN, at(0), [GWEI // 100], [(100 * GWEI,) * 3])
    h.analyzer.executor = TradeExecutor(
        CHAIN, DexSimulator(CHAIN, seed=1), h.portfolio, fee_path=path
    )
    result = h.tick(0, plan=[buy("LINK", "100")])
    trade = the_trade(result)
    assert trade.status is TradeStatus.DROPPED
    assert [e.state for e in result.of_type(TransactionChanged)][-1] == "dropped"
    counters = h.analyzer.counters
    assert (counters.consecutive_failures, counters.failed_trades) == (1, 1)
    assert h.portfolio.cash_usd == Decimal(10_000)

    blocked = h.tick(0.25, plan=[buy("LINK", "100")])
    (event,) = blocked.of_type(BreakerTripped)
    assert event.code == "consecutive_failures"


def test_the_cash_check_counts_the_private_routing_fee() -> None:
    def blocked_budget(**config: object) -> Decimal:
        execution, portfolio = _buy(_executor([10 * GWEI]), "100000", **config)
        assert execution.trade is None
        assert portfolio.cash_usd == Decimal(100_000)
        return Decimal(execution.blocked.split("plus about $")[1].removesuffix(" gas"))

    public = blocked_budget()
    assert blocked_budget(private_routing=True) == public + Decimal("0.5")
    assert blocked_budget(private_routing=True, gas_strategy="simulator") == public
