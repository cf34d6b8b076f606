"""Exact money columns, one-transaction ticks, and reconciliation that catches tampering."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from paper_trading.engine.analyzer import MarketAnalyzer
from paper_trading.engine.events import TickResult, TradeExecuted
from paper_trading.models import (
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services.bot import BotSettings, build_loop, finish_session, start_session
from paper_trading.services.verification import verify_account
from paper_trading.store import DjangoStore

pytestmark = pytest.mark.django_db


def test_quantities_keep_all_18_decimals(account: PaperTradingAccount) -> None:
    quantity = Decimal("123456789.123456789012345678")
    PaperPosition.objects.create(
        account=account,
        token_symbol="WETH",
        token_address="0x4200000000000000000000000000000000000006",
        chain_id=8453,
        quantity=quantity,
        opened_at="2026-01-01T00:00:00Z",
    )
    assert PaperPosition.objects.get().quantity == quantity


@pytest.fixture
def traded(account: PaperTradingAccount) -> PaperTradingAccount:
    session = start_session(account, BotSettings(intel_level=9))
    outcome = build_loop(session, threading.Event(), max_ticks=300).run()
    finish_session(session, outcome)
    assert account.trades.filter(side="SELL", status="EXECUTED").exists()
    return account


def _run_keeping_results(
    account: PaperTradingAccount, intel_level: int, ticks: int
) -> tuple[DjangoStore, list[TickResult]]:
    """Run a bot for `ticks` ticks; a store for its session and every tick's result."""
    session = start_session(account, BotSettings(intel_level=intel_level))
    loop = build_loop(session, threading.Event(), max_ticks=ticks)
    results: list[TickResult] = []

    class Keep:
        def publish(self, result: TickResult) -> None:
            results.append(result)

    loop.sinks = [*loop.sinks, Keep()]
    loop.run()
    return DjangoStore(session, loop.analyzer.chain), results


def test_a_tick_already_committed_is_not_written_again(account: PaperTradingAccount) -> None:
    store, results = _run_keeping_results(account, intel_level=10, ticks=200)
    with_trade = next(r for r in results if r.of_type(TradeExecuted))
    before = PaperTrade.objects.count()
    store.publish(with_trade)  # a retry of an old tick
    assert PaperTrade.objects.count() == before
    assert verify_account(account).ok


def test_a_tick_locks_the_account_before_the_session(account: PaperTradingAccount) -> None:
    """The order `start_session` locks them in: the other order deadlocked on PostgreSQL when a
    start request (account, then sessions) came in while the bot was committing a tick."""
    store, results = _run_keeping_results(account, intel_level=5, ticks=3)
    with CaptureQueriesContext(connection) as queries:
        store.publish(results[-1])
    reads = [
        (table, "FOR UPDATE" in q["sql"])
        for q in queries.captured_queries
        for table in ("papertradingaccount", "papertradingsession")
        if f"paper_trading_{table}" in q["sql"].split(" WHERE ")[0]
    ]
    locks = connection.features.has_select_for_update  # SQLite locks the whole database
    assert reads[:2] == [("papertradingaccount", locks), ("papertradingsession", locks)]


def test_verification_names_each_kind_of_mismatch(
    traded: PaperTradingAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_account(traded).ok
    call_command("verify_paper_trading", "--account", traded.name)
    assert "OK   Main" in capsys.readouterr().out

    trade = traded.trades.filter(status="EXECUTED").first()
    assert trade is not None
    PaperTrade.objects.filter(pk=trade.pk).update(swap_fee_usd=trade.swap_fee_usd + 1)
    mismatches = verify_account(traded).mismatches
    assert any(m.startswith("fees from trades") for m in mismatches)
    with pytest.raises(CommandError, match="1 of 1 accounts do not reconcile"):
        call_command("verify_paper_trading", "--check-all")
    assert "fees from trades: stored" in capsys.readouterr().out
    PaperTrade.objects.filter(pk=trade.pk).update(swap_fee_usd=trade.swap_fee_usd)

    PaperTradingAccount.objects.filter(pk=traded.pk).update(
        current_balance_usd=traded.current_balance_usd + Decimal("0.00000001")
    )
    mismatches = verify_account(traded).mismatches
    assert any(m.startswith("ledger: cash + open positions at cost") for m in mismatches)
    assert any(m.startswith("cash from trades") for m in mismatches)
    PaperTradingAccount.objects.filter(pk=traded.pk).update(
        current_balance_usd=traded.current_balance_usd
    )

    duplicate = traded.trades.first()
    assert duplicate is not None
    session = duplicate.session
    assert session is not None
    duplicate.pk = None
    duplicate.trade_id = None
    duplicate.save(force_insert=True)
    report = verify_account(traded)
    assert any(m.startswith("duplicate trade") for m in report.mismatches)
    assert any("total_trades" in m for m in report.mismatches)
    assert report.duplicate_trades == 1


def test_a_session_left_running_by_a_dead_bot_is_named(
    account: PaperTradingAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    session = start_session(account, BotSettings(intel_level=9))
    build_loop(session, threading.Event(), max_ticks=50).run()
    assert verify_account(account).ok  # its bot is this process, alive
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # a process of this machine that has ended, like a killed bot
    PaperTradingSession.objects.filter(pk=session.pk).update(worker_pid=gone.pid)

    report = verify_account(account)
    assert report.sessions_left_running == [str(session.session_id)]
    (mismatch,) = report.mismatches
    assert f"session {session.session_id} left RUNNING: its bot (pid {gone.pid} " in mismatch
    with pytest.raises(CommandError, match="1 of 1 accounts do not reconcile"):
        call_command("verify_paper_trading", "--check-all", "--json")
    document = json.loads(capsys.readouterr().out)
    assert document["accounts_failed"] == 1
    assert (document["mismatches"], document["sessions_left_running"]) == (1, 1)
    assert document["duplicate_trades"] == 0
    assert document["accounts"][0]["sessions_left_running"] == [str(session.session_id)]

    # Resuming it (as a restarted bot does) and closing it leaves nothing to report.
    resumed = start_session(account, BotSettings(intel_level=9))
    assert resumed.session_id == session.session_id
    finish_session(resumed, build_loop(resumed, threading.Event(), max_ticks=5).run())
    call_command("verify_paper_trading", "--check-all", "--json")
    document = json.loads(capsys.readouterr().out)
    assert (document["accounts_failed"], document["sessions_left_running"]) == (0, 0)


def test_position_mismatch_is_named(traded: PaperTradingAccount) -> None:
    position = traded.positions.filter(is_open=True).first()
    if position is None:  # every position closed: reopen the last one's books by hand
        position = traded.positions.first()
        assert position is not None
    PaperPosition.objects.filter(pk=position.pk).update(
        quantity=position.quantity + Decimal("0.000000000000000001"), is_open=True
    )
    mismatches = verify_account(traded).mismatches
    assert any(f"{position.token_symbol} quantity" in m for m in mismatches)


def test_verify_requires_a_scope() -> None:
    with pytest.raises(CommandError, match="--check-all or --account"):
        call_command("verify_paper_trading")


def test_analyzer_never_unbalances_the_ledger_between_ticks(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings(intel_level=10))
    loop = build_loop(session, threading.Event(), max_ticks=150)
    analyzer: MarketAnalyzer = loop.analyzer

    class CheckLedger:
        def publish(self, result: TickResult) -> None:
            assert analyzer.portfolio.ledger_difference() == 0

    loop.sinks = [*loop.sinks, CheckLedger()]
    loop.run()
    assert verify_account(account).ok
