"""`run_paper_bot --fast-lane`: recorded mempool events through the bot's session and sinks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from paper_trading.engine.chains import get_chain
from paper_trading.engine.dex.quote import Side
from paper_trading.engine.mempool.events import PendingSwap, PoolCreated, SwapLog
from paper_trading.engine.mempool.sources import Timed, record_line
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services.verification import verify_account
from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.fakes.ws_node import FakeWsNode, recorded_base_chain
from tests.paper_trading.live_support import point_at, price_all

pytestmark = pytest.mark.django_db

D = Decimal
BASE = get_chain("base")
#: Synthetic prices tick hourly from here, so events on the hour have prices.
START = datetime(2025, 1, 1, 5, tzinfo=UTC)
POOL = "0x" + "ab" * 20


def h(n: int) -> str:
    return "0x" + f"{n:064x}"


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    timed: list[Timed] = [
        (START, PendingSwap(h(1), "WETH", Side.BUY, D(5_000_000), D(5_000_000), D(1), "v3")),
        (START, PendingSwap(h(2), "WETH", Side.BUY, D(800), D(800), D(1), "v3")),
        (
            START + timedelta(hours=1),
            PoolCreated(
                h(3),
                POOL,
                BASE.token("AAVE").address,
                BASE.quote_token.address,
                3000,
                "v3",
                D(400_000),
            ),
        ),
        (START + timedelta(hours=2), SwapLog(h(1), POOL, "WETH", "v3", -(10**21), 5 * 10**12)),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(record_line(at, e) for at, e in timed) + "\n")
    return path


def run(*args: str, prices: str = "synthetic") -> None:
    call_command("run_paper_bot", "--account", "Main", "--prices", prices, *args, verbosity=0)


def test_recorded_events_trade_and_explain_through_the_session(
    account: PaperTradingAccount, events_file: Path
) -> None:
    run("--mempool-events", str(events_file))
    session = PaperTradingSession.objects.get(account=account)
    assert session.status == PaperTradingSession.Status.COMPLETED
    assert session.total_ticks == 4  # one result per event
    thoughts = list(PaperAIThoughtLog.objects.filter(session=session).order_by("created_at"))
    assert len(thoughts) == 4
    assert {t.strategy_name for t in thoughts} == {"fast_lane"}
    by_decision = [(t.decision_type, t.token_symbol) for t in thoughts]
    assert sorted(by_decision) == sorted(
        [("BUY", "WETH"), ("HOLD", "WETH"), ("BUY", "AAVE"), ("SELL", "WETH")]
    )
    small = next(t for t in thoughts if t.decision_type == "HOLD")
    assert "Below the $50,000 Fast Lane minimum" in small.reasoning
    assert small.market_data["event"]["tx_hash"] == h(2)
    reasons = sorted(PaperTrade.objects.filter(session=session).values_list("reason", flat=True))
    assert reasons == ["fast_lane_back_run", "fast_lane_front_run", "fast_lane_probe"]
    assert all(t.decision is not None for t in PaperTrade.objects.filter(session=session))
    report = verify_account(account)
    assert report.ok, report.mismatches
    account.refresh_from_db()
    assert account.total_fees_usd > 0
    assert account.positions.filter(is_open=True).get().token_symbol == "AAVE"


def test_the_same_recording_makes_the_same_decisions(
    account: PaperTradingAccount, events_file: Path
) -> None:
    run("--mempool-events", str(events_file))
    call_command(
        "run_paper_bot",
        "--account",
        "Twin",
        "--prices",
        "synthetic",
        "--mempool-events",
        str(events_file),
        verbosity=0,
    )
    runs = [
        list(
            PaperAIThoughtLog.objects.filter(account__name=name)
            .order_by("created_at", "reasoning")
            .values_list("decision_type", "reasoning")
        )
        for name in ("Main", "Twin")
    ]
    assert runs[0] == runs[1]
    assert len(runs[0]) == 4


def test_live_mempool_needs_a_node_and_live_prices(
    account: PaperTradingAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WS_RPC_URL_8453", raising=False)
    with pytest.raises(CommandError, match="WS_RPC_URL_8453"):
        run("--fast-lane")
    monkeypatch.setenv("WS_RPC_URL_8453", "wss://node.example/secret-key")
    with pytest.raises(CommandError, match="--prices live"):
        run("--fast-lane")
    assert not PaperTradingSession.objects.filter(account=account).exists()


def test_a_bad_recording_is_refused_before_a_session_starts(
    account: PaperTradingAccount, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"at": "2025-01-01T05:00:00+00:00", "type": "rumour"}\n')
    with pytest.raises(CommandError, match=r"bad\.jsonl:1"):
        run("--mempool-events", str(path))
    assert not PaperTradingSession.objects.filter(account=account).exists()


@pytest.fixture
def run_live(
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> Iterator[Callable[..., None]]:
    """Runs `run_paper_bot --prices live --fast-lane` on Main against a fake Base node (found
    through WS_RPC_URL_8453) that replays the recorded chain, priced by the fake CoinGecko."""
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    pending, logs = recorded_base_chain()
    # The new AAVE pool holds $10,000 of USDC: worth $20,000, under the $100,000 minimum.
    with FakeWsNode(pending, logs, balances={POOL: 10_000 * 10**6}) as node:
        monkeypatch.setenv("WS_RPC_URL_8453", node.url)
        yield partial(run, "--fast-lane", prices="live")


def test_live_node_events_reach_the_dashboard_tables(
    account: PaperTradingAccount, run_live: Callable[..., None]
) -> None:
    """WS_RPC_URL set, live prices: the node's pending swaps and logs become thoughts and trades."""
    run_live("--max-ticks", "4")
    session = PaperTradingSession.objects.get(account=account)
    assert session.price_source == "live"
    assert session.total_ticks == 4
    decisions = sorted(session.thoughts.values_list("decision_type", "token_symbol"))
    assert decisions == [("BUY", "WETH"), ("HOLD", "AAVE"), ("HOLD", "WETH"), ("SELL", "WETH")]
    new_pool = session.thoughts.get(token_symbol="AAVE")
    assert "liquidity $20,000 is below the $100,000 minimum" in new_pool.reasoning.lower()
    assert session.trades.count() == 2
    assert verify_account(account).ok


def test_both_lanes_share_one_engine_in_time_order(
    account: PaperTradingAccount, events_file: Path
) -> None:
    """--both-lanes on replay: the strategy ticks, and before each tick the recorded events
    up to its time reach the Fast Lane, on the same books; the same file repeats exactly."""
    for name in ("Main", "Twin"):
        call_command(
            "run_paper_bot",
            "--account",
            name,
            "--prices",
            "synthetic",
            "--speed",
            "max",
            "--mempool-events",
            str(events_file),
            "--both-lanes",
            "--max-ticks",
            "6",
            verbosity=0,
        )
    session = PaperTradingSession.objects.get(account=account)
    assert session.status == PaperTradingSession.Status.STOPPED  # at the tick limit
    thoughts = list(PaperAIThoughtLog.objects.filter(session=session).order_by("created_at"))
    lanes = {t.strategy_name for t in thoughts}
    assert lanes == {"fast_lane", session.strategy_name}
    fast = [t for t in thoughts if t.strategy_name == "fast_lane"]
    assert len(fast) == 4  # every recorded event, each before the tick at or after its time
    smart_times = sorted({t.created_at for t in thoughts if t.strategy_name != "fast_lane"})
    assert len(smart_times) == 6
    for thought in fast:
        assert any(thought.created_at <= moment for moment in smart_times)
    assert session.total_ticks == 6 + 4
    report = verify_account(account)
    assert report.ok, report.mismatches
    runs = [
        list(
            PaperAIThoughtLog.objects.filter(account__name=name)
            .order_by("created_at", "strategy_name", "token_symbol", "decision_type")
            .values_list("strategy_name", "decision_type", "token_symbol")
        )
        for name in ("Main", "Twin")
    ]
    assert runs[0] == runs[1]


def test_both_lanes_needs_a_mempool(account: PaperTradingAccount) -> None:
    with pytest.raises(CommandError, match="--both-lanes"):
        run("--both-lanes")


@pytest.mark.django_db(transaction=True)  # the Fast Lane's thread has its own connection
def test_both_lanes_live_events_between_ticks(
    account: PaperTradingAccount, run_live: Callable[..., None]
) -> None:
    """--both-lanes live: the node's events are handled as they arrive, between the ticks."""
    run_live("--both-lanes", "--tick-interval", "1", "--max-ticks", "3")
    session = PaperTradingSession.objects.get(account=account)
    fast = sorted(
        session.thoughts.filter(strategy_name="fast_lane").values_list(
            "decision_type", "token_symbol"
        )
    )
    assert fast == [("BUY", "WETH"), ("HOLD", "AAVE"), ("HOLD", "WETH"), ("SELL", "WETH")]
    assert session.thoughts.exclude(strategy_name="fast_lane").exists()  # the Smart Lane ticked
    assert session.total_ticks == 3 + 4
    assert verify_account(account).ok
