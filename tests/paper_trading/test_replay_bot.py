"""The bot on the whole shipped replay data set, through the management commands."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPerformanceMetrics,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
    PriceHistory,
)
from paper_trading.services.verification import verify_account


@pytest.fixture(scope="module")
def replayed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """One full replay at max speed, shared by the tests of this module (it takes seconds)."""
    with django_db_blocker.unblock():
        call_command("run_paper_bot", "--account", "Replay", "--speed", "max", verbosity=0)
    yield
    with django_db_blocker.unblock():
        PaperTradingAccount.objects.filter(name="Replay").delete()
        User.objects.filter(username="demo").delete()


pytestmark = pytest.mark.django_db


def test_full_replay_completes_and_trades_several_tokens(replayed: None) -> None:
    session = PaperTradingSession.objects.get(account__name="Replay")
    assert session.status == PaperTradingSession.Status.COMPLETED
    assert session.price_source == "replay"
    assert session.total_ticks > 1_000
    traded = set(PaperTrade.objects.values_list("token_symbol", flat=True))
    assert len(traded) >= 3, traded
    assert PaperTrade.objects.filter(side="SELL", status="EXECUTED").exists()


def test_ledger_reconciles_after_full_replay(
    replayed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    account = PaperTradingAccount.objects.get(name="Replay")
    report = verify_account(account)
    assert report.ok, report.mismatches
    call_command("verify_paper_trading", "--check-all")
    assert "1 accounts reconcile" in capsys.readouterr().out
    cost = sum((p.cost_basis_usd for p in account.positions.filter(is_open=True)), Decimal(0))
    assert account.current_balance_usd + cost == (
        account.initial_balance_usd
        + account.realized_pnl_usd
        - account.total_fees_usd
        - account.total_gas_usd
    )


def test_every_trade_records_each_cost_and_its_decision(replayed: None) -> None:
    trades = list(PaperTrade.objects.select_related("decision"))
    assert trades
    for trade in trades:
        assert trade.gas_cost_usd > 0
        assert trade.gas_units > 0
        assert trade.decision is not None
        assert trade.decision.reasoning
        if trade.status == "EXECUTED":
            assert trade.swap_fee_usd > 0
            assert trade.price_impact_bps >= 0
            assert trade.amount_in > 0
            assert trade.amount_out > 0
    # Base is an OP-stack chain: every trade pays an L1 data fee on top of L2 execution.
    assert all(t.l1_fee_native > 0 for t in trades)


def test_every_decision_leaves_a_thought(replayed: None) -> None:
    session = PaperTradingSession.objects.get(account__name="Replay")
    thoughts = PaperAIThoughtLog.objects.filter(session=session)
    assert thoughts.count() == session.total_thoughts
    # One thought per token per tick at least (HOLD included): 5 tradable tokens on Base.
    assert session.total_thoughts >= session.total_ticks * 5
    assert thoughts.filter(decision_type="HOLD").exists()
    assert not thoughts.filter(reasoning="").exists()


def test_metrics_positions_and_price_history_are_stored(replayed: None) -> None:
    assert PaperPerformanceMetrics.objects.count() >= 50
    latest = PaperPerformanceMetrics.objects.order_by("-computed_at").first()
    assert latest is not None
    assert latest.total_trades == PaperTrade.objects.count()
    assert PaperPosition.objects.filter(is_open=False).exists()
    assert PriceHistory.objects.filter(token_symbol="WETH", source="replay").count() > 1_000


def test_replaying_again_says_the_data_is_exhausted(replayed: None) -> None:
    with pytest.raises(CommandError, match="already traded through the recorded prices"):
        call_command("run_paper_bot", "--account", "Replay", "--speed", "max", verbosity=0)
    assert PaperTradingSession.objects.filter(account__name="Replay").count() == 1


def test_admin_shows_each_trade_cost(replayed: None, client: Client) -> None:
    User.objects.create_superuser("root", "root@example.com", "pw-for-admin-test")
    client.login(username="root", password="pw-for-admin-test")
    page = client.get("/admin/paper_trading/papertrade/?status__exact=EXECUTED")
    assert page.status_code == 200
    html = page.content.decode()
    for column in ("Swap fee usd", "Price impact bps", "Gas cost usd", "Status", "Slippage bps"):
        assert column in html
    thoughts = client.get("/admin/paper_trading/paperaithoughtlog/")
    assert thoughts.status_code == 200
    assert "Confidence level" in thoughts.content.decode()
    for model in (
        "papertradingaccount",
        "papertradingsession",
        "paperposition",
        "paperperformancemetrics",
        "paperstrategyconfiguration",
        "pricehistory",
    ):
        assert client.get(f"/admin/paper_trading/{model}/").status_code == 200
