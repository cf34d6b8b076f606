"""One engine: a backtest and a paper bot on the same replay make the same trades.

Both through the engine objects and through the commands (`backtest` and
`run_paper_bot --prices replay --speed max`).
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from paper_trading.engine.backtest import run_backtest
from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.engine.strategies.intel_slider import IntelSliderEngine
from paper_trading.models import PaperTradingAccount
from paper_trading.services.bot import BotSettings, build_loop, start_session

pytestmark = pytest.mark.django_db
TICKS = 400


def test_backtest_and_replay_bot_make_identical_trades(account: PaperTradingAccount) -> None:
    session = start_session(account, BotSettings(intel_level=7, chain_id=42161))
    build_loop(session, threading.Event(), max_ticks=TICKS).run()
    bot_trades = [
        (
            t.created_at,
            t.token_symbol,
            t.side,
            t.status,
            t.amount_in,
            t.amount_out,
            t.swap_fee_usd,
            t.gas_cost_usd,
            t.realized_pnl_usd,
        )
        for t in account.trades.order_by("created_at", "token_symbol", "side")
    ]

    source = ReplaySource()
    strategy = IntelSliderEngine(7)
    timeline = source.timeline()[: strategy.warmup_bars + TICKS]
    result = run_backtest(
        chain=get_chain("arbitrum"),
        source=source,
        timeline=timeline,
        bar_seconds=source.interval_seconds,
        strategy=strategy,
    )
    backtest_trades = sorted(
        (
            t.created_at,
            t.symbol,
            t.side,
            t.status.value,
            t.amount_in,
            t.amount_out,
            t.fee_usd,
            t.gas_usd,
            t.realized_pnl_usd,
        )
        for t in result.trades
    )
    assert result.ticks == TICKS
    assert len(bot_trades) > 10
    assert backtest_trades == sorted(bot_trades)
    account.refresh_from_db()
    assert result.portfolio.cash_usd == account.current_balance_usd
    assert result.portfolio.total_pnl_usd == account.total_pnl_usd


def test_the_backtest_command_and_run_paper_bot_at_max_speed_make_identical_trades(
    account: PaperTradingAccount, tmp_path: Path
) -> None:
    common = ["--intel", "7", "--chain", "arbitrum", "--from", "2025-12-20", "--to", "2026-01-05"]
    call_command(
        "run_paper_bot", "--account", account.name, "--prices", "replay", "--speed", "max",
        *common, stdout=StringIO(),
    )  # fmt: skip
    call_command("backtest", *common, "--no-progress", "--output", str(tmp_path), stdout=StringIO())

    doc = json.loads((tmp_path / "backtest.json").read_text())
    numbers = ["amount_in", "amount_out", "fee_usd", "gas_usd", "price_impact_bps"]
    numbers += ["slippage_bps", "realized_pnl_usd"]
    backtest_trades = sorted(
        (
            t["created_at"],
            t["symbol"],
            t["side"],
            t["status"],
            t["reason"],
            *(Decimal(t[c]) for c in numbers),
        )
        for t in doc["trades"]
    )
    bot_trades = sorted(
        (
            t.created_at.isoformat(),
            t.token_symbol,
            t.side,
            t.status,
            t.reason,
            t.amount_in,
            t.amount_out,
            t.swap_fee_usd,
            t.gas_cost_usd,
            t.price_impact_bps,
            t.slippage_bps,
            t.realized_pnl_usd,
        )
        for t in account.trades.all()
    )
    assert len(bot_trades) > 10
    assert backtest_trades == bot_trades
    account.refresh_from_db()
    assert Decimal(doc["metrics"]["total_pnl_usd"]) == account.total_pnl_usd
    assert account.sessions.get().total_ticks == doc["metrics"]["ticks"]
