"""Mempool events: ABI decoding, the WebSocket and recorded sources, and the Fast Lane."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.chains import PoolKind, PoolSpec, get_chain
from paper_trading.engine.config import TradingConfig
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.dex.simulator import DexSimulator
from paper_trading.engine.events import DecisionType, ThoughtLogged, TickResult, TradeExecuted
from paper_trading.engine.ids import IdFactory
from paper_trading.engine.mempool.events import PendingSwap, PoolCreated, SwapLog
from paper_trading.engine.mempool.fast_lane import FastLane, FastLaneParams
from paper_trading.engine.mempool.sources import RecordedEventSource, Timed, record_line
from paper_trading.engine.mempool.uniswap import (
    FACTORIES,
    decode_log,
    decode_pending_swap,
    pool_address,
    tracked_pools,
)
from paper_trading.engine.mempool.websocket import WebSocketEventSource
from paper_trading.engine.portfolio import Portfolio
from paper_trading.engine.prices.feed import PriceFeedService
from paper_trading.engine.prices.synthetic import SyntheticSource
from paper_trading.engine.strategies.catalog import resolve_strategy
from tests.fakes.ws_node import (
    NEW_POOL,
    FakeWsNode,
    h,
    pool_created_log,
    recorded_base_chain,
    usdc,
    v2_swap_tx,
    v3_swap_log,
    v3_swap_tx,
)

D = Decimal
BASE = get_chain("base")
ETHEREUM = get_chain("ethereum")
WETH = BASE.token("WETH").address
USDC = BASE.quote_token.address
AAVE = BASE.token("AAVE").address
WETH_POOL = pool_address(BASE, BASE.token("WETH"))
V3_FACTORY = FACTORIES[BASE.chain_id].v3
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
#: On the synthetic price grid, so every event has prices.
AT = EPOCH + timedelta(hours=5)


# --- decoding -------------------------------------------------------------------------------


def test_pool_addresses_match_uniswaps_deployed_pools() -> None:
    # USDC/WETH 0.05% on Ethereum, and the V2 USDC/WETH pair, as deployed by Uniswap.
    assert pool_address(ETHEREUM, ETHEREUM.token("WETH")) == (
        "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"
    )
    v2_weth = dataclasses.replace(ETHEREUM.token("WETH"), pool=PoolSpec(PoolKind.V2, 3000, D(1)))
    assert pool_address(ETHEREUM, v2_weth) == "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"
    assert WETH_POOL is not None
    assert WETH_POOL.lower() in tracked_pools(BASE)


def test_router_calldata_decodes_to_a_pending_swap_in_a_tracked_pool() -> None:
    buy = decode_pending_swap(v3_swap_tx(h(1), USDC, WETH, usdc(250_000)), BASE)
    assert buy == PendingSwap(
        tx_hash=h(1),
        symbol="WETH",
        side=Side.BUY,
        amount_in=D(250_000),
        size_usd=D(250_000),
        gas_price_gwei=D("0.02"),
        router="v3",
    )
    sell = decode_pending_swap(v2_swap_tx(h(2), [AAVE, WETH, USDC], 3 * 10**18), BASE)
    assert sell is not None
    assert (sell.symbol, sell.side, sell.amount_in) == ("AAVE", Side.SELL, D(3))
    assert sell.size_usd is None  # a token quantity: the lane prices it
    assert sell.router == "v2"


@pytest.mark.parametrize(
    "tx",
    [
        {"hash": h(3), "input": "0xa9059cbb" + "00" * 64},  # an ERC-20 transfer
        v3_swap_tx(h(4), AAVE, WETH, 10**18),  # no stablecoin side: not a tracked pool
        {"hash": h(5), "input": "0x04e45aaf" + "00" * 7},  # truncated calldata
    ],
)
def test_other_transactions_are_not_pending_swaps(tx: dict[str, str]) -> None:
    assert decode_pending_swap(tx, BASE) is None


def test_logs_decode_to_pool_creations_and_swaps() -> None:
    assert V3_FACTORY is not None
    assert WETH_POOL is not None
    created = decode_log(
        pool_created_log(V3_FACTORY, AAVE, USDC, 3000, NEW_POOL, h(6)), BASE, tracked_pools(BASE)
    )
    assert created == PoolCreated(h(6), to_checksum_address(NEW_POOL), AAVE, USDC, 3000, "v3")
    log = v3_swap_log(WETH_POOL, -(10**18), usdc(3_000), h(7))
    swap = decode_log(log, BASE, tracked_pools(BASE))
    assert swap == SwapLog(h(7), WETH_POOL.lower(), "WETH", "v3", -(10**18), usdc(3_000))


# --- sources -----------------------------------------------------------------------------------


def collect(source: WebSocketEventSource, count: int) -> list[Timed]:
    stop = threading.Event()
    got: list[Timed] = []
    for timed in source.events(stop):
        got.append(timed)
        if len(got) == count:
            break
    return got


@pytest.mark.parametrize("full_pending", [True, False], ids=["full-transactions", "hashes-only"])
def test_websocket_source_subscribes_and_decodes(full_pending: bool) -> None:
    pending, logs = recorded_base_chain()
    balances = {NEW_POOL: usdc(150_000)}
    with FakeWsNode(pending, logs, full_pending=full_pending, balances=balances) as node:
        source = WebSocketEventSource(node.url, BASE, clock=lambda: AT)
        events = [e for _, e in collect(source, 4)]
    kinds = sorted(type(e).__name__ for e in events)
    assert kinds == ["PendingSwap", "PendingSwap", "PoolCreated", "SwapLog"]
    big = next(e for e in events if isinstance(e, PendingSwap) and e.tx_hash == h(10))
    assert big.size_usd == D(5_000_000)
    # The creation log does not carry the deposit: the source reads the pool's USDC balance.
    created = next(e for e in events if isinstance(e, PoolCreated))
    assert created.liquidity_usd == D(300_000)
    balance_calls = [p for m, p in node.calls if m == "eth_call"]
    assert balance_calls == [
        [
            {
                "to": BASE.quote_token.address,
                "data": "0x70a08231" + NEW_POOL[2:].lower().rjust(64, "0"),
            },
            "latest",
        ]
    ]
    methods = [m for m, _ in node.calls]
    subscriptions = [p for m, p in node.calls if m == "eth_subscribe"]
    assert ["newPendingTransactions", True] in subscriptions
    assert {tuple(p[1]["topics"][0]) for p in subscriptions if p[0] == "logs"} == {
        (
            "0x0d3648bd0f6ba80134a33ba9275ac585d9d315f0ad8355cddefde31afa28d0e9",
            "0x783cca1c0412dd0d695e784568c96da2e9c22ff989357a2e8b1d9b2b4e6b7118",
        ),
        (
            "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822",
            "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67",
        ),
    }
    if full_pending:
        assert "eth_getTransactionByHash" not in methods
    else:
        assert ["newPendingTransactions"] in subscriptions
        assert methods.count("eth_getTransactionByHash") == 3


def test_websocket_source_reconnects_after_a_dropped_connection() -> None:
    pending, logs = recorded_base_chain()
    with FakeWsNode(pending, logs, drop_first_connection=True) as node:
        source = WebSocketEventSource(node.url, BASE, backoff_seconds=0.01, clock=lambda: AT)
        events = collect(source, 4)
    assert len(events) == 4
    assert source.connections == node.connections == 2


def test_websocket_source_rejects_non_websocket_urls() -> None:
    with pytest.raises(ValueError, match="ws\\(s\\) URL") as info:
        WebSocketEventSource("https://node.example/key123", BASE)
    assert "key123" not in str(info.value)


def test_recorded_source_replays_a_jsonl_file_deterministically(tmp_path: Path) -> None:
    events: list[Timed] = [
        (AT, PendingSwap(h(1), "WETH", Side.BUY, D(9), D(9), D("0.02"), "v3")),
        (AT, PoolCreated(h(2), NEW_POOL, AAVE, USDC, 3000, "v3", D("250000.5"))),
        (AT + timedelta(hours=1), SwapLog(h(1), NEW_POOL, "WETH", "v3", -5, 7)),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(record_line(at, e) for at, e in events) + "\n")
    first = list(RecordedEventSource(path).events(threading.Event()))
    again = list(RecordedEventSource(path).events(threading.Event()))
    assert first == again == events


def test_recorded_source_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(record_line(AT, SwapLog(h(1), NEW_POOL, "", "v3", 1, 2)) + '\n{"at": "x"}\n')
    with pytest.raises(ValueError, match=r"events\.jsonl:2"):
        RecordedEventSource(path)


# --- the Fast Lane ------------------------------------------------------------------------------


def lane(params: FastLaneParams | None = None, config: TradingConfig | None = None) -> FastLane:
    portfolio = Portfolio.new(D(10_000))
    analyzer = MarketAnalyzer(
        chain=BASE,
        feed=PriceFeedService(SyntheticSource(seed=0, start=EPOCH), max_age=timedelta(hours=1)),
        strategy=resolve_strategy("intel_slider", {}, 5).strategy,
        simulator=DexSimulator(BASE, seed=1),
        portfolio=portfolio,
        config=config or TradingConfig(),
        ids=IdFactory(uuid.UUID(int=7)),
        bar_seconds=3600,
    )
    return FastLane(analyzer, params)


def react(fast: FastLane, at: datetime, event: PendingSwap | PoolCreated | SwapLog) -> TickResult:
    result = fast.handle(at, event)
    assert fast.a.portfolio.ledger_difference() == 0
    thoughts = result.of_type(ThoughtLogged)
    assert len(thoughts) == 1  # every event is explained, once
    assert thoughts[0].thought.strategy == "fast_lane"
    return result


def only_thought(result: TickResult) -> tuple[DecisionType, str]:
    (logged,) = result.of_type(ThoughtLogged)
    return logged.thought.decision_type, logged.thought.reasoning


def test_fast_lane_reacts_to_websocket_events() -> None:
    """Node to ledger: front-run the big buy, hold on the small one, sell when it lands."""
    pending, logs = recorded_base_chain()
    fast = lane(FastLaneParams(min_pool_liquidity_usd=D(100_000)))
    with FakeWsNode(pending, logs[1:]) as node:
        source = WebSocketEventSource(node.url, BASE, clock=lambda: AT)
        timed = collect(source, 3)
    by_hash = {e.tx_hash: e for _, e in timed if isinstance(e, PendingSwap)}
    swap_log = next(e for _, e in timed if isinstance(e, SwapLog))

    bought = react(fast, AT, by_hash[h(10)])
    decision, text = only_thought(bought)
    (trade,) = [e.trade for e in bought.of_type(TradeExecuted)]
    assert decision is DecisionType.BUY
    assert trade.reason == "fast_lane_front_run"
    assert "Pending V3 buy of $5,000,000 WETH" in text
    assert "edge of" in text
    assert trade.amount_in == D(200)  # 2% of the $10,000 portfolio, under the $250 cap
    assert trade.thought_id == bought.of_type(ThoughtLogged)[0].thought.thought_id

    held = react(fast, AT, by_hash[h(11)])
    decision, text = only_thought(held)
    assert decision is DecisionType.HOLD
    assert "Below the $50,000 Fast Lane minimum" in text
    assert not held.of_type(TradeExecuted)

    sold = react(fast, AT + timedelta(hours=1), swap_log)
    decision, text = only_thought(sold)
    (exit_trade,) = [e.trade for e in sold.of_type(TradeExecuted)]
    assert decision is DecisionType.SELL
    assert exit_trade.reason == "fast_lane_back_run"
    assert exit_trade.amount_in == trade.amount_out
    assert "WETH" not in fast.a.portfolio.positions
    assert fast.a.counters.total_trades == 2
    assert fast.a.counters.tick_number == 3


def test_fast_lane_holds_when_costs_beat_the_expected_move() -> None:
    fast = lane(FastLaneParams(min_pending_usd=D(1_000)))
    result = react(fast, AT, PendingSwap(h(1), "WETH", Side.BUY, D(2_000), D(2_000), D(1), "v3"))
    decision, text = only_thought(result)
    assert decision is DecisionType.HOLD
    assert "Holding." in text
    assert "round trip" in text


def test_fast_lane_respects_breakers_and_cooldown() -> None:
    big = PendingSwap(h(1), "WETH", Side.BUY, D(5_000_000), D(5_000_000), D(1), "v3")
    blocked = react(lane(config=TradingConfig(min_balance_usd=D(20_000))), AT, big)
    decision, text = only_thought(blocked)
    assert decision is DecisionType.BLOCKED
    assert "minimum balance" in text
    fast = lane()
    react(fast, AT, big)
    again = react(fast, AT, dataclasses.replace(big, tx_hash=h(2)))
    decision, text = only_thought(again)
    assert decision is DecisionType.HOLD
    assert "cooling down" in text


@pytest.mark.parametrize(
    ("token", "liquidity", "expected"),
    [
        (AAVE, D(500_000), "probe buy"),
        (AAVE, D(5_000), "below the $100,000 minimum"),
        (AAVE, None, "not known yet"),
        ("0x" + "cd" * 20, D(10**9), "rug pull"),
    ],
)
def test_fast_lane_probes_new_pools_or_says_why_not(
    token: str, liquidity: Decimal | None, expected: str
) -> None:
    fast = lane()
    pool = PoolCreated(h(3), NEW_POOL, token, USDC, 3000, "v3", liquidity)
    result = react(fast, AT, pool)
    decision, text = only_thought(result)
    assert expected in text
    trades = result.of_type(TradeExecuted)
    if expected == "probe buy":
        assert decision is DecisionType.BUY
        assert trades[0].trade.reason == "fast_lane_probe"
        assert trades[0].trade.amount_in == D(50)
    else:
        assert decision is DecisionType.HOLD
        assert not trades


def test_fast_lane_sells_ahead_of_a_big_pending_sell_of_a_held_token() -> None:
    fast = lane()
    react(fast, AT, PoolCreated(h(3), NEW_POOL, AAVE, USDC, 3000, "v3", D(10**6)))
    dump = PendingSwap(h(4), "AAVE", Side.SELL, D(10**6), None, D(1), "v2")
    result = react(fast, AT + timedelta(hours=1), dump)
    decision, text = only_thought(result)
    assert decision is DecisionType.SELL
    assert "selling the position ahead of it" in text
    assert "AAVE" not in fast.a.portfolio.positions


def test_fast_lane_trades_go_through_the_accounts_gas_strategy() -> None:
    """With a fee-market gas strategy the front-run is a paper transaction like any other."""
    fast = lane(config=TradingConfig(gas_strategy="fast"))
    big = PendingSwap(h(1), "WETH", Side.BUY, D(5_000_000), D(5_000_000), D(1), "v3")
    result = react(fast, AT, big)
    (trade,) = [e.trade for e in result.of_type(TradeExecuted)]
    assert trade.gas_strategy == "fast"
    assert trade.transactions
    assert all(t in result.events for t in trade.transactions)
