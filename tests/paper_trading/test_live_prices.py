"""Live prices through the app: one upstream call for many bots, honest failure, resume."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from paper_trading.engine.events import TickResult
from paper_trading.engine.prices.replay import ReplaySource
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
    PriceHistory,
)
from paper_trading.services.bot import finish_session
from paper_trading.services.prices import (
    DatabasePriceHistory,
    live_source,
    update_all_position_prices,
)
from paper_trading.services.verification import verify_account
from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.fakes.jsonrpc import FakeNode
from tests.paper_trading.live_support import (
    PRICES,
    BuyWethEveryTick,
    live_loop,
    point_at,
    price_all,
)

pytestmark = pytest.mark.django_db
Status = PaperTradingSession.Status


@pytest.fixture
def fake(
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> FakeCoinGecko:
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    return fake_coingecko


def _simple_price_calls(fake: FakeCoinGecko) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/simple/price"))


def _fifty_bots_fetch(fake: FakeCoinGecko) -> None:
    barrier = threading.Barrier(50)
    results: list[Decimal] = []
    errors: list[BaseException] = []

    def bot() -> None:
        source = live_source()  # each bot builds its own, as separate processes would
        barrier.wait()
        try:
            snapshot = source.fetch(["ETH", "BTC", "UNI"], datetime.now(UTC))
            results.append(snapshot.prices["ETH"].price_usd)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bot) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert results == [PRICES["weth"]] * 50


def test_fifty_bots_in_one_ttl_window_make_one_upstream_call(
    fake: FakeCoinGecko, settings: Any
) -> None:
    settings.PRICE_CACHE_TTL_SECONDS = 30
    _fifty_bots_fetch(fake)
    assert _simple_price_calls(fake) == 1


def test_fifty_bots_share_one_call_through_redis(
    fake: FakeCoinGecko, settings: Any, redis_price_cache: str
) -> None:
    settings.PRICE_CACHE_TTL_SECONDS = 30
    _fifty_bots_fetch(fake)
    assert _simple_price_calls(fake) == 1


def test_bots_in_separate_processes_share_one_call(fake: FakeCoinGecko, settings: Any) -> None:
    script = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','dexproject.settings');"
        "django.setup();"
        "from datetime import UTC, datetime;"
        "from paper_trading.services.prices import live_source;"
        "print(live_source().fetch(['ETH'], datetime.now(UTC)).prices['ETH'].price_usd)"
    )
    env = {**os.environ, "PRICE_CACHE_TTL_SECONDS": "30"}
    bots = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=django_settings.BASE_DIR,
        )
        for _ in range(8)
    ]
    outputs = [bot.communicate(timeout=60)[0].strip() for bot in bots]
    assert all(bot.returncode == 0 for bot in bots)
    assert {Decimal(o) for o in outputs} == {PRICES["weth"]}
    assert _simple_price_calls(fake) == 1


#: The fake's mode for each tick, set just before it: (name, how to switch).
FAILURES: list[tuple[str, Callable[[FakeCoinGecko], None]]] = [
    ("rate_limited", lambda f: f.rate_limited()),
    ("server_error", lambda f: f.server_error(503)),
    ("garbage", lambda f: f.garbage()),
    ("slow", lambda f: f.slow(2.0)),
    ("stale", lambda f: f.stale()),
    ("down", lambda f: f.down()),
]


def test_no_trade_without_fresh_prices_and_trading_resumes(
    fake: FakeCoinGecko, account: PaperTradingAccount
) -> None:
    plan: list[str] = []
    for name, _ in FAILURES:
        plan += ["healthy", "healthy", name, name]
    plan += ["healthy", "healthy"]
    modes = dict(FAILURES)
    seen: list[tuple[str, datetime, str]] = []

    def switch(result: TickResult) -> None:
        session = PaperTradingSession.objects.get(account=account)
        current = plan[result.tick_number - 1]
        seen.append((current, result.timestamp, session.status))
        if result.tick_number == len(plan):
            return
        following = plan[result.tick_number]
        if following != current:
            if current == "down":
                fake.up()
            fake.healthy()
            if following != "healthy":
                modes[following](fake)

    session, loop = live_loop(account, len(plan), switch, BuyWethEveryTick())
    outcome = loop.run()
    assert outcome.ticks == len(plan)  # the bot kept running through every failure

    trade_times = set(
        PaperTrade.objects.filter(session=session).values_list("created_at", flat=True)
    )
    for mode, at, status in seen:
        if mode == "healthy":
            assert at in trade_times, f"no trade at a healthy tick ({at})"
            assert status == Status.RUNNING
        else:
            assert at not in trade_times, f"traded during {mode} at {at}"
            if mode != "stale":
                assert status == Status.PAUSED, mode
    reasons = list(
        PaperAIThoughtLog.objects.filter(session=session, decision_type="BLOCKED").values_list(
            "reasoning", flat=True
        )
    )
    text = "\n".join(reasons)
    assert "price feed unavailable: CoinGecko rate limit (HTTP 429)" in text
    assert "retrying in" in text
    assert "CoinGecko answered HTTP 503" in text
    assert "not the documented JSON" in text
    assert "did not answer within 0.5 s" in text
    assert "stale: last price" in text
    assert "cannot reach CoinGecko" in text
    assert "price feed back after" in "\n".join(
        PaperAIThoughtLog.objects.filter(session=session).values_list("reasoning", flat=True)
    )
    assert verify_account(account).ok
    # Every price the live bot saw is in the price history, marked as CoinGecko's.
    assert PriceHistory.objects.filter(source="coingecko", token_symbol="WETH").exists()


def test_a_missing_token_is_skipped_and_the_rest_trade(
    fake: FakeCoinGecko, account: PaperTradingAccount
) -> None:
    fake.omit("weth")
    session, loop = live_loop(account, 2, strategy=BuyWethEveryTick())
    loop.run()
    assert not PaperTrade.objects.filter(session=session).exists()
    blocked = PaperAIThoughtLog.objects.filter(session=session, decision_type="BLOCKED")
    assert any(
        "no ETH price to value gas" in r for r in blocked.values_list("reasoning", flat=True)
    )


def test_live_gas_comes_from_the_chain_when_an_rpc_url_is_set(
    fake: FakeCoinGecko, account: PaperTradingAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeNode() as node:
        node.base_fees_wei = [2_000_000_000] * 11  # 2 gwei next block
        node.rewards_wei = [[1, 1_000_000, 5_000_000]] * 10  # median tip 0.001 gwei
        node.l1_fee_wei = 123_456_789_000
        monkeypatch.setenv("RPC_URL_8453", node.url)
        session, loop = live_loop(account, 1, strategy=BuyWethEveryTick())
        loop.run()
    trade = PaperTrade.objects.get(session=session)
    assert trade.gas_source == "rpc"
    assert trade.gas_price_gwei == Decimal("2.001")
    swap_gas = trade.gas_units * (2_000_000_000 + 1_000_000) + 123_456_789_000
    assert trade.gas_cost_native == Decimal(swap_gas).scaleb(-18)
    # The first swap also paid the one-off USDC approval, at the same live figures.
    approval = trade.gas_cost_usd - (trade.gas_cost_native * PRICES["weth"]).quantize(
        Decimal("0.00000001")
    )
    assert approval > 0


def test_replay_trades_record_modelled_gas(account: PaperTradingAccount) -> None:
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--prices",
        "replay",
        "--max-ticks",
        "300",
        "--intel",
        "10",
        verbosity=0,
    )
    assert set(PaperTrade.objects.values_list("gas_source", flat=True)) == {"default"}


def test_auto_picks_live_when_coingecko_answers(
    fake: FakeCoinGecko, account: PaperTradingAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--max-ticks",
        "1",
        "--tick-interval",
        "1",
        verbosity=0,
    )
    session = PaperTradingSession.objects.get(account=account)
    assert session.price_source == "live"
    assert "LIVE: prices from CoinGecko" in capsys.readouterr().out


def test_auto_falls_back_to_replay_and_says_so(
    account: PaperTradingAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("run_paper_bot", "--account", account.name, "--max-ticks", "1", verbosity=0)
    session = PaperTradingSession.objects.get(account=account)
    assert session.price_source == "replay"
    assert "live prices are unavailable (cannot reach CoinGecko" in session.price_source_note
    out = capsys.readouterr().out
    assert "REPLAY: live prices are unavailable" in out
    assert "This session stays on replay." in out


def test_live_history_warms_up_from_the_database(
    fake: FakeCoinGecko, account: PaperTradingAccount
) -> None:
    # CoinGecko reports one update time for all three ticks: one stored observation.
    fake.set_price("weth", PRICES["weth"], updated_at=datetime.now(UTC) - timedelta(seconds=5))
    session, loop = live_loop(account, 3)
    finish_session(session, loop.run())
    history = DatabasePriceHistory(loop.analyzer.chain).history("ETH", datetime.now(UTC), 10)
    assert [p for _, p in history] == [PRICES["weth"]]  # one distinct observation, deduplicated
    _, again = live_loop(PaperTradingAccount.objects.get(pk=account.pk), 1)
    assert list(again.analyzer.history["ETH"]) == [PRICES["weth"]]


def test_update_all_position_prices_revalues_each_live_position(
    fake: FakeCoinGecko, account: PaperTradingAccount
) -> None:
    session, loop = live_loop(account, 1, strategy=BuyWethEveryTick())
    loop.run()
    PaperTradingSession.objects.filter(pk=session.pk).update(status=Status.STOPPED)
    position = PaperPosition.objects.get(account=account, is_open=True)
    broken = PaperPosition.objects.create(
        account=account,
        session=session,
        token_symbol="NOPE",
        token_address="0x0",
        chain_id=8453,
        quantity=Decimal(1),
        opened_at=position.opened_at,
    )
    fake.set_price("weth", Decimal("3300.55"))
    report = update_all_position_prices()
    position.refresh_from_db()
    assert report.updated == 1
    assert report.failed == [
        f"{account.name} NOPE: unknown token 'NOPE' on Base; known: "
        "WETH, USDC, DAI, WBTC, UNI, AAVE, LINK"
    ]
    assert position.current_price_usd == Decimal("3300.55")
    assert position.current_value_usd == (position.quantity * Decimal("3300.55")).quantize(
        Decimal("0.00000001")
    )
    assert position.unrealized_pnl_usd == position.current_value_usd - position.cost_basis_usd
    broken.delete()
    account.refresh_from_db()
    assert account.total_pnl_usd == (
        account.current_balance_usd + position.current_value_usd - account.initial_balance_usd
    )


def test_update_position_prices_reports_an_outage(
    fake: FakeCoinGecko, account: PaperTradingAccount
) -> None:
    session, loop = live_loop(account, 1, strategy=BuyWethEveryTick())
    loop.run()
    PaperTradingSession.objects.filter(pk=session.pk).update(status=Status.STOPPED)
    fake.server_error(500)
    with pytest.raises(CommandError, match="no prices, nothing revalued: price feed unavailable"):
        call_command("update_position_prices")


def test_fetch_price_history_writes_replayable_files(
    fake: FakeCoinGecko, tmp_path: Path, account: PaperTradingAccount
) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    for coin_id, base in (("weth", 3000), ("uniswap", 7)):
        fake.set_chart(
            coin_id,
            [
                (datetime.fromtimestamp(start + h * 3600 + 5, tz=UTC), Decimal(base) + h)
                for h in range(100)
            ],
        )
    call_command(
        "fetch_price_history",
        "--token",
        "WETH",
        "--token",
        "UNI",
        "--days",
        "30",
        "--output",
        str(tmp_path),
        verbosity=0,
    )
    source = ReplaySource(data_dir=tmp_path, interval="1h")
    assert source.symbols_available() == ["ETH", "UNI"]
    first = source.timeline()[0]
    assert first == datetime(2026, 3, 1, 1, tzinfo=UTC)  # a point at 00:00:05 is known at 01:00
    assert source.fetch(["ETH"], first).prices["ETH"].price_usd == Decimal(3000)
    call_command(
        "run_paper_bot",
        "--account",
        account.name,
        "--prices",
        "replay",
        "--data",
        str(tmp_path),
        "--chain",
        "ethereum",
        "--from",
        "2026-03-02",
        verbosity=0,
    )
    session = PaperTradingSession.objects.get(account=account)
    assert session.status == Status.COMPLETED
    assert session.last_tick_at == datetime(2026, 3, 5, 4, tzinfo=UTC)
    with pytest.raises(CommandError, match="--days must be between 1 and 365"):
        call_command("fetch_price_history", "--token", "WETH", "--days", "0")
