"""The transaction manager wired end to end: configuration, bot, store, stream, API, export."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from paper_trading.engine.events import TickResult, TradeExecuted, TransactionChanged
from paper_trading.models import PaperStrategyConfiguration, PaperTrade, PaperTradingAccount
from paper_trading.realtime.messages import tick_messages
from paper_trading.selectors.analytics import per_gas_strategy
from paper_trading.services.accounts import create_account, trading_config
from paper_trading.services.bot import BotSettings, build_loop, finish_session, start_session
from paper_trading.services.verification import verify_account
from paper_trading.store import trade_row
from tests.engine.test_tx_executor import GWEI, _buy, _executor

API = "/paper-trading/api/"
ETHEREUM_ID = 1
pytestmark = pytest.mark.django_db
#: The states a transaction's story ends in.
FINAL = {"included", "reverted", "dropped"}


def test_configuration_api_validates_the_gas_settings(account: PaperTradingAccount) -> None:
    client = APIClient()
    client.force_authenticate(account.user)
    assert client.get(API + "configuration/").json()["gas_strategy"] == "simulator"
    bad = client.post(
        API + "configuration/",
        {"gas_strategy": "turbo", "private_routing": "sometimes"},
        format="json",
    )
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert set(error["fields"]) == {"gas_strategy", "private_routing"}
    assert "gas_strategy" in error["message"]
    good = client.post(
        API + "configuration/",
        {"gas_strategy": "wait_for_cheaper", "private_routing": True},
        format="json",
    )
    assert good.status_code == 200, good.content
    config = trading_config(account)
    assert (config.gas_strategy, config.private_routing) == ("wait_for_cheaper", True)


def test_a_gas_strategy_change_reaches_the_bot_and_every_record_round_trips(
    account: PaperTradingAccount,
) -> None:
    session = start_session(account, BotSettings(intel_level=10, chain_id=ETHEREUM_ID))
    loop = build_loop(session, threading.Event(), max_ticks=250)
    results: list[TickResult] = []
    switched: list[int] = []

    class SwitchAfterFirstTrade:
        def publish(self, result: TickResult) -> None:
            results.append(result)
            if not switched and result.of_type(TradeExecuted):
                switched.append(result.tick_number)
                PaperStrategyConfiguration.objects.filter(account=account).update(
                    gas_strategy="fast"
                )

    loop.sinks = [*loop.sinks, SwitchAfterFirstTrade()]
    finish_session(session, loop.run())
    records = [(r, e.trade) for r in results for e in r.of_type(TradeExecuted)]
    early = {t.gas_strategy for r, t in records if r.tick_number <= switched[0]}
    late = [t for r, t in records if r.tick_number > switched[0]]
    assert early == {"simulator"}
    assert late
    assert {t.gas_strategy for t in late} == {"fast"}
    # The store keeps each record's transaction fields and its story as the engine told it.
    for trade in late:
        row = PaperTrade.objects.get(trade_id=trade.trade_id)
        assert row.gas_strategy == "fast"
        assert row.status == trade.status.value
        assert (row.tx_attempts, row.inclusion_delay_blocks) == (
            trade.tx_attempts,
            trade.inclusion_delay_blocks,
        )
        assert (row.sandwiched, row.mev_cost_usd) == (trade.sandwiched, trade.mev_cost_usd)
        assert row.private_routing_fee_usd == trade.private_routing_fee_usd
        assert row.transactions == [e.to_json() for e in trade.transactions]
        assert row.transactions[0]["state"] == "submitted"
        assert row.transactions[-1]["state"] in FINAL
    # Each state change streams as a transaction_update ahead of its trade.
    result = next(r for r in results if r.of_type(TransactionChanged))
    kinds = [
        m["type"]
        for m in tick_messages(result, account_id=account.account_id, session_id=session.pk)
    ]
    first_trade = kinds.index("trade_executed")
    assert kinds[:first_trade].count("transaction_update") >= 2
    assert verify_account(account).ok


@pytest.fixture(scope="module")
def private_fast(django_db_setup: None, django_db_blocker: Any) -> Iterator[PaperTradingAccount]:
    """A replay bot on Ethereum (a public mempool) with fast gas and private routing."""
    with django_db_blocker.unblock():
        owner = User.objects.create_user("private-fast", password="pw")
        account = create_account(owner, "Private")
        PaperStrategyConfiguration.objects.filter(account=account).update(
            gas_strategy="fast", private_routing=True
        )
        call_command(
            "run_paper_bot",
            "--account",
            "Private",
            "--user",
            "private-fast",
            "--chain",
            "ethereum",
            "--prices",
            "replay",
            "--max-ticks",
            "300",
            "--intel",
            "9",
            verbosity=0,
        )
        yield account
        account.delete()
        owner.delete()


def test_replay_with_fast_gas_and_private_routing_reconciles(
    private_fast: PaperTradingAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    trades = list(private_fast.trades.all())
    assert trades
    assert {t.gas_strategy for t in trades} == {"fast"}
    assert not any(t.sandwiched for t in trades)
    for trade in trades:
        assert trade.transactions[-1]["state"] in FINAL
        if trade.status != PaperTrade.Status.DROPPED:
            # Private routing's fee is booked as gas: part of the trade's gas cost.
            assert trade.private_routing_fee_usd == Decimal("0.5")
            assert trade.gas_cost_usd > trade.private_routing_fee_usd
    assert verify_account(private_fast).ok
    call_command("verify_paper_trading", "--check-all")
    assert "accounts reconcile" in capsys.readouterr().out
    (row,) = per_gas_strategy(private_fast)
    assert (row.strategy, row.trades) == ("fast", len(trades))
    assert row.gas_usd == sum((t.gas_cost_usd for t in trades), Decimal(0))
    assert row.mean_inclusion_delay_blocks >= 1


def test_api_and_export_show_the_transaction_fields(private_fast: PaperTradingAccount) -> None:
    client = APIClient()
    client.force_authenticate(private_fast.user)
    page = client.get(API + "trades/").json()
    trade = page["results"][0]
    assert trade["gas_strategy"] == "fast"
    assert trade["private_routing_fee_usd"] in {"0.50000000", "0E-8"}
    assert trade["tx_attempts"] >= 1
    assert trade["transactions"][0]["state"] == "submitted"
    assert set(trade["transactions"][0]) == {
        "state",
        "attempt",
        "block",
        "at",
        "max_fee_gwei",
        "max_priority_fee_gwei",
        "base_fee_gwei",
        "reason",
    }
    export = client.get(API + "analytics/export/", HTTP_ACCEPT="text/csv")
    body = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
    header, first, *_ = csv.reader(io.StringIO(body))
    for column in ("gas_strategy", "mev_cost_usd", "private_routing_fee_usd", "sandwiched"):
        assert column in header
    assert first[header.index("gas_strategy")] == "fast"


def test_the_trades_page_badges_a_dropped_swap(account: PaperTradingAccount) -> None:
    # Every block wants a 100 gwei tip: the legacy bid and its replacements never get in.
    execution, _ = _buy(_executor([10 * GWEI], tips=(100 * GWEI,) * 3))
    assert execution.trade is not None
    session = start_session(account, BotSettings())
    row = trade_row(execution.trade, account.account_id, session.pk)
    row.decision_id = None  # the engine-only trade has no logged thought
    row.save()
    client = Client()
    client.force_login(account.user)
    page = client.get("/paper-trading/trades/?status=DROPPED").content.decode()
    assert '<span class="tag warn" title="still stuck after 3 replacements' in page
    assert ">dropped</span>" in page
    assert ">replaced 3x</span>" in page
    assert ">pending 12 blk</span>" in page
