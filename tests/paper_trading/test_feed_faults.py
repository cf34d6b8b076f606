"""Price-feed faults: the live bot never trades on a stale price, never crashes, always resumes.

The end-to-end tests run `python -m bench.feed_faults` (the real `run_paper_bot --prices live`
against the fake CoinGecko) for a short plan; the analysis tests feed it made-up runs to show
each failure it must catch is caught.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from bench.feed_faults import (
    HEALTHY,
    Observations,
    Segment,
    ThoughtSeen,
    TickSeen,
    Timing,
    TradeSeen,
    analyse,
)
from paper_trading.engine.events import TickResult
from paper_trading.models import PaperTrade, PaperTradingAccount
from tests.fakes.coingecko import GARBAGE_KINDS, FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.paper_trading.live_support import BuyWethEveryTick, live_loop, point_at, price_all

ROOT = Path(settings.BASE_DIR)

# -- the real bot, in a subprocess ----------------------------------------------------------


def _bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.feed_faults", "--results", str(tmp_path), *args],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # a failed run keeps its bot's files there
        capture_output=True,
        text=True,
        timeout=170,
    )
    latest = tmp_path / "feed-faults-latest.json"
    assert latest.exists(), done.stdout + done.stderr
    return done, json.loads(latest.read_text())


@pytest.mark.slow
@pytest.mark.own_database
def test_short_run_no_stale_trade_no_crash_and_every_fault_recovered(tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    done, result = _bench(tmp_path, "--minutes", "0.3", "--seed", str(seed))
    assert done.returncode == 0, done.stdout + done.stderr
    figures = result["figures"]
    assert figures["stale_trades"] == []
    assert figures["crashes"] == []
    assert figures["errors_logged"] == []
    assert figures["ledger_problems"] == []
    faults = [s for s in result["segments"] if s["mode"] != HEALTHY]
    assert faults, "the plan played no fault"
    assert figures["outages"] >= 1
    assert figures["unreported_outages"] == []
    recoveries = figures["recoveries"]
    assert recoveries
    assert all(r["trade_after"] is not None for r in recoveries)
    bound = result["timing"]["resume_bound_seconds"]
    assert figures["longest_resume_seconds"] <= bound
    # Trades happened only on healthy prices, and every fault mode played saw no priced trade.
    modes = figures["modes"]
    assert modes[HEALTHY]["trades"] == figures["trades"] > 0
    assert all(modes[s["mode"]]["trades"] == 0 for s in faults)
    assert "trades on stale or unserved prices  0" in done.stdout


@pytest.mark.slow
@pytest.mark.own_database
def test_a_bot_that_accepts_stale_prices_is_caught(tmp_path: Path) -> None:
    # The fake's stale prices are 1 min to 3 h old; a bot allowed 30 days trades on them.
    done, result = _bench(
        tmp_path, "--minutes", "0.1", "--modes", "stale", "--bot-max-age", str(30 * 86400)
    )
    assert done.returncode == 1
    stale = result["figures"]["stale_trades"]
    assert stale
    assert all("served while stale" in s for s in stale), stale
    assert result["figures"]["modes"]["stale"]["trades"] == len(stale)
    assert "FAIL" in done.stdout


# -- the bot loop in-process: every kind of garbage ----------------------------------------


@pytest.mark.django_db
def test_the_bot_survives_every_kind_of_garbage(
    fake_coingecko: FakeCoinGecko,  # noqa: F811
    account: PaperTradingAccount,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    price_all(fake_coingecko)
    point_at(fake_coingecko, monkeypatch, settings)
    plan: list[str] = [HEALTHY]
    for kind in GARBAGE_KINDS:
        plan += [kind, HEALTHY]
    seen: list[tuple[str, datetime]] = []

    def switch(result: TickResult) -> None:
        seen.append((plan[result.tick_number - 1], result.timestamp))
        if result.tick_number < len(plan):
            following = plan[result.tick_number]
            if following == HEALTHY:
                fake_coingecko.healthy()
            else:
                fake_coingecko.garbage(following)  # type: ignore[arg-type]

    session, loop = live_loop(account, len(plan), switch, BuyWethEveryTick())
    assert loop.run().ticks == len(plan)
    traded = set(PaperTrade.objects.filter(session=session).values_list("created_at", flat=True))
    assert {at for mode, at in seen if mode == HEALTHY} == traded


# -- the analysis: each failure is caught --------------------------------------------------

T0 = 1_800_000_000.0
TIMING = Timing()


def _clean_run() -> Observations:
    """10 s healthy, 3 s stale, 9 s healthy; a tick every second, trading when priced."""
    segments = [
        Segment(HEALTHY, None, "3000.00", 0.0, T0, T0 + 10),
        Segment("stale", 7200.0, "3001.00", 3.0, T0 + 10, T0 + 13),
        Segment(HEALTHY, None, "3002.00", 9.0, T0 + 13, T0 + 22),
    ]
    seen = Observations(1, TIMING, segments, total_ticks=22, exit_code=0, final_status="STOPPED")
    for number in range(1, 23):
        at = T0 + number - 0.5
        segment = next(s for s in segments if s.start <= at < s.end)
        if segment.mode == HEALTHY:
            seen.ticks.append(TickSeen(number, at, "RUNNING", ""))
            seen.priced_at.append(at)
            side = "BUY" if number % 2 else "SELL"
            seen.trades.append(TradeSeen(at, side, "EXECUTED", segment.weth_usd))
        else:
            seen.ticks.append(TickSeen(number, at, "PAUSED", "stale: last price ..."))
    seen.feed_thoughts = [
        ThoughtSeen(T0 + 10.5, "BLOCKED", "no ETH price to value gas (stale: ...)"),
        ThoughtSeen(T0 + 13.5, "HOLD", "price feed back after: no ETH price to value gas"),
    ]
    return seen


def test_a_clean_run_passes_with_its_figures() -> None:
    result = analyse(_clean_run())
    assert not result.failed
    assert (result.ticks, result.priced_ticks, result.trades) == (22, 19, 19)
    assert result.outages == 1
    assert [(r.after, r.trade_after) for r in result.recoveries] == [("stale", 0.5)]
    assert result.modes["stale"].switches == 1
    assert result.modes["stale"].ticks == 3
    assert result.modes["stale"].trades == 0
    assert result.modes[HEALTHY].trades == 19


def _trade_on(price: str, at: float) -> Callable[[Observations], None]:
    def change(seen: Observations) -> None:
        seen.trades.append(TradeSeen(at, "BUY", "EXECUTED", price))

    return change


def _unannounced(seen: Observations) -> None:
    seen.feed_thoughts = [t for t in seen.feed_thoughts if t.decision != "BLOCKED"]


def _not_paused(seen: Observations) -> None:
    seen.ticks = [replace(t, status="RUNNING", reason="") for t in seen.ticks]


def _no_recovery(seen: Observations) -> None:
    seen.trades = [t for t in seen.trades if t.quote_usd != "3002.00"]


def _died(seen: Observations) -> None:
    seen.died_at = T0 + 11
    seen.exit_code = 1
    seen.final_status, seen.final_reason = "FAILED", "bot crashed: boom"


def _logged_error(seen: Observations) -> None:
    seen.log_errors = ["Traceback (most recent call last):"]


@pytest.mark.parametrize(
    ("change", "target", "detail"),
    [
        (_trade_on("3001.00", T0 + 11.5), "trades on stale", "served while stale"),
        (_trade_on("3333.33", T0 + 15.5), "trades on stale", "a price the fake never served"),
        (_trade_on("3000.00", T0 + 12.5), "trades on stale", "served fresh until t+10.0 s"),
        (_unannounced, "outages reported", "no BLOCKED thought"),
        (_not_paused, "outages reported", "not PAUSED"),
        (_no_recovery, "recoveries that traded", ""),
        (_died, "crashes", "exited at t+11.0 s (exit code 1)"),
        (_logged_error, "errors logged", "Traceback"),
    ],
)
def test_the_analysis_catches(
    change: Callable[[Observations], None], target: str, detail: str
) -> None:
    seen = _clean_run()
    change(seen)
    result = analyse(seen)
    assert result.failed
    failing = [t[0] for t in result.targets() if t[3] == "FAIL"]
    assert any(name.startswith(target) for name in failing), failing
    details = [
        *result.stale_trades,
        *result.crashes,
        *result.errors_logged,
        *result.unreported_outages,
    ]
    assert any(detail in d for d in details) or not detail, details
