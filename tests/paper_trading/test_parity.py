"""One engine: a backtest and a paper bot on the same replay make the same trades."""

from __future__ import annotations

import threading

import pytest

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
