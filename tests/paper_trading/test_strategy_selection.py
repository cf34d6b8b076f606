"""Choosing the paper bot's strategy: the command line, the API, and the stored session."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from paper_trading.engine.backtest import run_backtest
from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.ma_crossover import MACrossover
from paper_trading.models import PaperAIThoughtLog, PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import BotSettings, build_loop, start_session
from paper_trading.services.bot_control import wait_for
from paper_trading.services.verification import verify_account
from tests.engine.test_catalog_user_strategies import USER_STRATEGY
from tests.engine.test_strategy_contract import PEEKING_STRATEGY

API = "/paper-trading/api/"
TICKS = 200

pytestmark = pytest.mark.django_db


def run_bot(account: str, *args: str) -> PaperTradingSession:
    call_command(
        "run_paper_bot",
        "--account",
        account,
        "--prices",
        "replay",
        "--speed",
        "max",
        "--max-ticks",
        str(TICKS),
        *args,
        verbosity=0,
    )
    return PaperTradingSession.objects.get(account__name=account)


def test_run_paper_bot_runs_a_user_strategy_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "my_strategy.py"
    path.write_text(USER_STRATEGY)
    session = run_bot("Mine", "--strategy", f"{path}:PriceOverEma", "--param", "period=10")
    assert session.strategy_name == f"{path}:PriceOverEma"
    assert session.strategy_params == {"period": 10}
    assert session.total_ticks == TICKS
    assert session.total_trades > 2
    thoughts = PaperAIThoughtLog.objects.filter(account__name="Mine")
    assert set(thoughts.values_list("strategy_name", flat=True)) == {"price_over_ema"}
    assert thoughts.filter(reasoning__contains="vs EMA(10)").exists()


def test_ma_crossover_bot_on_replay_trades_like_the_backtest() -> None:
    params = ("--param", "fast_period=5", "--param", "slow_period=20", "--chain", "arbitrum")
    session = run_bot("Cross", "--strategy", "ma_crossover", *params)
    assert session.strategy_params == {"fast_period": 5, "slow_period": 20, "size_percent": 10.0}
    bot = [
        (t.created_at, t.token_symbol, t.side, t.amount_in, t.amount_out, t.gas_cost_usd)
        for t in session.account.trades.order_by("created_at", "token_symbol", "side")
    ]

    source = ReplaySource()
    strategy = MACrossover(5, 20, 10.0)
    result = run_backtest(
        chain=get_chain("arbitrum"),
        source=source,
        timeline=source.timeline()[: strategy.warmup_bars + TICKS],
        bar_seconds=source.interval_seconds,
        strategy=strategy,
    )
    backtest = sorted(
        (t.created_at, t.symbol, t.side, t.amount_in, t.amount_out, t.gas_usd)
        for t in result.trades
    )
    assert len(bot) > 4
    assert bot == backtest


def test_intel_still_sets_the_slider_level() -> None:
    session = run_bot("Slider", "--intel", "8")
    assert (session.strategy_name, session.intel_level) == ("intel_slider", 8)
    assert session.strategy_params == {"level": 8}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--strategy", "ma_crossover", "--param", "fast_period=40"],
            "strategy_params: fast_period (40) must be shorter than slow_period (30)",
        ),
        (["--strategy", "rsi_reversion", "--param", "period"], "--param: expected NAME=VALUE"),
        (["--strategy", "rsi_reversion", "--param", "speed=2"], "has no parameter speed"),
        (["--strategy", "no_such"], "strategy: unknown strategy 'no_such'"),
        (["--strategy", "ma_crossover", "--intel", "3"], "--intel sets intel_slider's level"),
    ],
)
def test_bad_choices_are_refused_before_a_session_opens(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run_bot("Refused", *args)
    assert not PaperTradingSession.objects.filter(account__name="Refused").exists()


def test_a_strategy_that_looks_ahead_is_refused_before_a_session_opens(tmp_path: Path) -> None:
    path = tmp_path / "peek.py"
    path.write_text(PEEKING_STRATEGY)
    with pytest.raises(CommandError, match=r"--strategy: peek.indicators\(\) looks ahead: 'next_"):
        run_bot("Peeker", "--strategy", f"{path}:Peek")
    assert not PaperTradingSession.objects.filter(account__name="Peeker").exists()


def test_a_strategy_that_raises_fails_its_session_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "raiser.py"
    path.write_text(
        "from paper_trading.engine.strategies.base import Strategy\n\n\n"
        "class Raiser(Strategy):\n"
        "    name = 'raiser'\n\n"
        "    def decide(self, view):\n"
        "        raise KeyError('oops')\n"
    )
    with pytest.raises(CommandError, match=r"--strategy: raiser.decide\(\) raised KeyError for "):
        run_bot("Raiser", "--strategy", f"{path}:Raiser")
    session = PaperTradingSession.objects.get(account__name="Raiser")
    assert session.status == PaperTradingSession.Status.FAILED
    assert "raiser.decide() raised KeyError" in session.status_reason


def test_api_start_refuses_bad_strategy_input_naming_the_field(
    account: PaperTradingAccount,
) -> None:
    client = APIClient()
    client.force_authenticate(account.user)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"strategy": "/tmp/x.py:Evil"}, "strategy", "not a valid choice"),
        (
            {"strategy": "rsi_reversion", "strategy_params": {"period": 1}},
            "strategy_params",
            "period: 1 is outside [2, 50]",
        ),
        ({"strategy_params": {"level": "high"}}, "strategy_params", "level: 'high' is not"),
    ]
    for body, field, text in cases:
        response = client.post(API + "bot/start/", {"prices": "replay", **body}, format="json")
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert list(error["fields"]) == [field]
        assert text in str(error["fields"][field])
    assert not PaperTradingSession.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_api_start_with_a_strategy_stores_it_on_the_session(
    account: PaperTradingAccount,
) -> None:
    client = APIClient()
    client.force_authenticate(account.user)
    started = client.post(
        API + "bot/start/",
        {
            "prices": "replay",
            "speed": "36000",
            "strategy": "rsi_reversion",
            "strategy_params": {"oversold": 25},
        },
        format="json",
    )
    assert started.status_code == 201, started.content
    session = started.json()
    try:
        assert session["strategy_name"] == "rsi_reversion"
        assert session["strategy_params"] == {
            "period": 14,
            "oversold": 25.0,
            "overbought": 70.0,
            "size_percent": 10.0,
        }
    finally:
        client.post(API + "bot/stop/", {"reason": "test over"}, format="json")
    assert wait_for(session["session_id"], timeout=30)


def test_a_bot_on_another_chain_than_the_open_positions_is_refused(
    account: PaperTradingAccount,
) -> None:
    # WETH bought on Ethereum stays there: a Base bot could neither value nor sell it.
    weth = ("--strategy", "tests.paper_trading.live_support.BuyWethEveryTick", "--max-ticks", "3")
    run_bot(account.name, *weth, "--chain", "ethereum")
    held = account.positions.filter(is_open=True)
    assert list(held.values_list("chain_id", "token_symbol")) == [(1, "WETH")]
    message = (
        "account 'Main' holds open positions on another chain (Ethereum: WETH), which a bot on "
        "Base cannot value or sell: run a bot on Ethereum to manage them (strategy exit_all "
        "sells them all at its first tick), or reset the account"
    )
    with pytest.raises(CommandError, match=re.escape(f"--chain: {message}")):
        call_command("run_paper_bot", "--account", account.name, "--chain", "base", verbosity=0)
    client = APIClient()
    client.force_authenticate(account.user)
    refused = client.post(API + "bot/start/", {"prices": "replay", "chain": "base"}, format="json")
    assert refused.status_code == 409, refused.content
    assert refused.json()["error"]["message"] == message
    assert account.sessions.count() == 1  # nothing opened by the refusals

    # As the message says: exit_all on Ethereum sells the WETH at its first tick...
    bot = ("--account", account.name, "--prices", "replay", "--speed", "max", "--max-ticks", "1")
    call_command("run_paper_bot", *bot, "--chain", "ethereum", "--strategy", "exit_all",
                 verbosity=0)  # fmt: skip
    assert not held.exists()
    sold = account.trades.latest("created_at")
    assert (sold.side, sold.token_symbol, sold.chain_id) == ("SELL", "WETH", 1)
    assert sold.decision is not None
    assert sold.decision.reasoning.startswith("Closing all positions: selling all ")
    # ...and then the account trades on Base.
    call_command("run_paper_bot", *bot, "--chain", "base", verbosity=0)
    assert account.sessions.latest("started_at").chain_id == 8453
    assert verify_account(account).ok


def test_a_killed_bot_is_not_resumed_in_place_of_the_bot_asked_for(
    account: PaperTradingAccount,
) -> None:
    """After a kill, a start for another chain or strategy starts that bot (or is refused): it
    used to resume the killed bot instead, ignoring the chain, its check and the strategy."""
    buyer = BotSettings(
        strategy="tests.paper_trading.live_support.BuyWethEveryTick", chain_id=1, prices="replay"
    )
    killed = start_session(account, buyer)
    build_loop(killed, threading.Event(), max_ticks=3).run()
    # What SIGKILL leaves: the session RUNNING, its committed ticks, its process gone.
    PaperTradingSession.objects.filter(pk=killed.pk).update(
        worker_host="gone.example", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    held = account.positions.filter(is_open=True)
    assert list(held.values_list("chain_id", "token_symbol")) == [(1, "WETH")]
    client = APIClient()
    client.force_authenticate(account.user)
    on_base = {"prices": "replay", "speed": "max", "chain": "base", "strategy": "exit_all"}
    refused = client.post(API + "bot/start/", on_base, format="json")
    assert refused.status_code == 409, refused.content
    assert "holds open positions on another chain (Ethereum: WETH)" in refused.content.decode()
    killed.refresh_from_db()
    assert (killed.status, account.sessions.count()) == (
        "RUNNING",
        1,
    )  # the refusal changed nothing

    call_command("run_paper_bot", "--account", account.name, "--prices", "replay", "--speed",
                 "max", "--max-ticks", "1", "--chain", "ethereum", "--strategy", "exit_all",
                 verbosity=0)  # fmt: skip
    closer = account.sessions.latest("started_at")
    assert (closer.strategy_name, closer.chain_id) == ("exit_all", 1)
    killed.refresh_from_db()
    assert killed.status == "FAILED"
    assert not held.exists()
    assert verify_account(account).ok
