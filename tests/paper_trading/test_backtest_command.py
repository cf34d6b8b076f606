"""`manage.py backtest`: the summary, the JSON result, the report, storage and bad input."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from paper_trading.models import PaperTrade, PaperTradingAccount, PaperTradingSession
from paper_trading.selectors.analytics import equity_curve, per_token
from paper_trading.services.verification import verify_account
from tests.engine.test_strategy_contract import PEEKING_STRATEGY

ROOT = Path(__file__).resolve().parents[2]
#: 120 hourly bars of the shipped data: 80 ticks after the Intel slider's 40-bar warm-up.
PERIOD = ["--from", "2025-12-10", "--to", "2025-12-15"]


def printed_table(printed: str, first_column: str) -> list[list[str]]:
    """The rows of the summary's table whose header starts with `first_column`, as cells."""
    lines = printed.splitlines()
    top = next(i for i, line in enumerate(lines) if line.split("  ")[1:2] == [first_column])
    # Under the dashes, to the first line that is not an indented row.
    rows = itertools.takewhile(
        lambda line: line.startswith("  ") and line.strip(), lines[top + 2 :]
    )
    return [re.split(r"\s{2,}", row.strip()) for row in rows]


def backtest(*args: str) -> str:
    out = StringIO()
    call_command("backtest", *args, "--no-progress", stdout=out)
    return out.getvalue()


def test_it_prints_the_summary_and_writes_a_json_result_and_a_report(tmp_path: Path) -> None:
    printed = backtest("--intel", "8", *PERIOD, "--output", str(tmp_path))

    doc = json.loads((tmp_path / "backtest.json").read_text())
    m = doc["metrics"]
    for label in ("trades", "win rate", "total return", "annualised", "Sharpe", "Sortino",
                  "max drawdown", "profit factor", "swap fees", "gas", "reverted swaps",
                  "exposure"):  # fmt: skip
        assert f"  {label} " in printed
    assert f"  trades          {m['trades']} ({m['reverted_trades']} reverted swaps)" in printed
    assert f"JSON result: {tmp_path / 'backtest.json'}" in printed
    assert f"HTML report: {tmp_path / 'backtest.html'}" in printed

    config = doc["config"]
    assert config["strategy"] == "intel_slider"
    assert config["params"] == {"level": 8}
    assert (config["chain"], config["bar"], config["fee_model"], config["seed"]) == (
        "base", "1h", "pool", 0,
    )  # fmt: skip
    assert config["period"]["from"] == "2025-12-10T00:00:00+00:00"
    assert config["period"]["first_tick"] == "2025-12-11T16:00:00+00:00"  # after 40 bars
    assert config["period"]["last_tick"] == "2025-12-15T00:00:00+00:00"
    assert {Path(f["path"]).name for f in config["data_files"]} >= {"ETH_USDT-1h.csv.gz"}
    assert m["ticks"] == len(doc["equity"]) == 81

    # Every figure is exact text; the trade list adds up to the totals.
    trades = doc["trades"]
    assert m["trades"] == len(trades) > 0
    assert all(isinstance(t["fee_usd"], str) for t in trades)
    fees = sum(Decimal(t["fee_usd"]) for t in trades)
    gas = sum(Decimal(t["gas_usd"]) for t in trades)
    assert Decimal(m["fees_usd"]) == fees
    assert Decimal(m["gas_usd"]) == gas
    for column in ("fee_usd", "gas_usd", "price_impact_bps", "slippage_bps", "status",
                   "revert_reason", "approval_gas_usd", "l1_fee_native"):  # fmt: skip
        assert column in trades[0]
    assert sum(r["trades"] for r in doc["per_token"]) == len(trades)
    assert sum(Decimal(r["fees_usd"]) for r in doc["per_token"]) == fees
    tokens = printed_table(printed, "token")
    assert [row[:2] for row in tokens] == [
        [r["symbol"], str(r["trades"])] for r in doc["per_token"]
    ]
    # Exits by reason: every sell once; the period rows: every trade once, chained values.
    sells = [t for t in trades if t["side"] == "SELL"]
    assert sum(r["trades"] for r in doc["per_exit_reason"]) == len(sells)
    assert {r["reason"] for r in doc["per_exit_reason"]} == {t["reason"] for t in sells}
    exits = printed_table(printed, "exit reason")
    assert [row[:3] for row in exits] == [
        [r["reason"], str(r["trades"]), str(r["reverted"])] for r in doc["per_exit_reason"]
    ]
    months = doc["breakdown"]["rows"]
    assert doc["breakdown"]["period"] == "month"
    assert [r["start"] for r in months] == ["2025-12-01"]
    assert sum(r["trades"] for r in months) == len(trades)
    assert Decimal(months[0]["start_value_usd"]) == Decimal(10_000)
    assert months[-1]["end_value_usd"] == doc["equity"][-1]["value_usd"]
    assert printed_table(printed, "month") == [
        [r["start"], f"{Decimal(r['return_percent']):.2f}%", ANY, str(r["trades"]), ANY, ANY]
        for r in months
    ]
    # Buy and hold over the run's own prices, as the benchmark.
    changes = [Decimal(p[-1][1]) / Decimal(p[0][1]) - 1 for p in doc["prices"].values()]
    expected = sum(changes, Decimal(0)) * 100 / len(changes)
    assert abs(Decimal(m["market_change_percent"]) - expected) < Decimal("0.0001")
    assert "  market change   " in printed
    assert m["mean_hold_seconds"] > 0
    assert "  average hold    " in printed
    final = Decimal(m["final_value_usd"])
    assert Decimal(doc["equity"][-1]["value_usd"]) == final
    assert Decimal(m["total_pnl_usd"]) == final - Decimal(10_000)
    assert set(doc["prices"]) == set(config["tokens"])

    html = (tmp_path / "backtest.html").read_text()
    assert "TradingView Lightweight Charts" in html  # inlined, not linked
    assert "<script src" not in html
    assert 'rel="stylesheet"' not in html


def test_options_reach_the_run(tmp_path: Path) -> None:
    printed = backtest(
        "--intel", "10", *PERIOD, "--tokens", "weth, uni", "--chain", "arbitrum",
        "--fee-model", "flat:5", "--initial-balance", "2500", "--seed", "3",
        "--breakdown", "day", "--output", str(tmp_path),
    )  # fmt: skip
    doc = json.loads((tmp_path / "backtest.json").read_text())
    days = doc["breakdown"]["rows"]
    assert [r["start"] for r in days] == [f"2025-12-{d}" for d in range(11, 16)]
    for before, after in itertools.pairwise(days):
        assert after["start_value_usd"] == before["end_value_usd"]
    assert [row[0] for row in printed_table(printed, "day")] == [r["start"] for r in days]
    assert doc["config"]["tokens"] == ["WETH", "UNI"]
    assert (doc["config"]["chain_id"], doc["config"]["seed"]) == (42161, 3)
    assert doc["metrics"]["initial_balance_usd"] == "2500.00000000"
    assert doc["trades"]
    assert {t["symbol"] for t in doc["trades"]} <= {"WETH", "UNI"}
    assert {t["fee_pips"] for t in doc["trades"]} == {500}  # 5 bps on every pool


def test_a_user_strategy_from_a_file_with_params(tmp_path: Path) -> None:
    strategy = tmp_path / "always_buy.py"
    strategy.write_text(
        textwrap.dedent(
            """
            from decimal import Decimal
            from paper_trading.engine.strategies.base import (
                Action, Decision, MarketView, Parameter, Strategy,
            )

            class AlwaysBuy(Strategy):
                name = "always_buy"
                parameters = {"usd": Parameter(50, 10, 1000)}

                def __init__(self, usd: int) -> None:
                    self.usd = Decimal(usd)

                def decide(self, view: MarketView) -> Decision:
                    return Decision(Action.BUY, view.symbol, self.usd, Decimal(0), Decimal(90),
                                    Decimal(10), Decimal(50), "always")
            """
        )
    )
    out = tmp_path / "out"
    spec = f"{strategy}:AlwaysBuy"
    backtest(
        "--strategy", spec, "--param", "usd=20", "--tokens", "WETH", *PERIOD, "--output", str(out)
    )
    doc = json.loads((out / "backtest.json").read_text())
    assert doc["config"]["strategy_name"] == "always_buy"
    assert doc["config"]["params"] == {"usd": 20}
    buys = [t for t in doc["trades"] if t["side"] == "BUY" and t["reason"] == "strategy"]
    assert buys
    assert {t["amount_in"] for t in buys} == {"20.000000000000000000"}


def test_a_strategy_that_looks_ahead_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "peek.py"
    path.write_text(PEEKING_STRATEGY)
    for command in ("backtest", "optimize"):
        with pytest.raises(CommandError, match=r"--strategy: peek.indicators\(\) looks ahead"):
            call_command(command, "--strategy", f"{path}:Peek", *PERIOD, "--no-progress")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tokens", "DOGE"], "--tokens: unknown token 'DOGE'"),
        (["--tokens", "DAI"], "--tokens: DAI is not tradable on Base"),
        (["--from", "2030-01-01"], "--from/--to: the period has 0 1h bars"),
        (["--from", "2026-01-02", "--to", "2026-01-01"], "--to: 2026-01-01 00:00 is not after"),
        (["--from", "yesterday"], "argument --from: not an ISO date or time: 'yesterday'"),
        (["--param", "level=11"], "--param: level: 11 is outside [1, 10]"),
        (["--breakdown", "year"], "argument --breakdown: invalid choice: 'year'"),
        (["--intel", "5", "--param", "level=3"], "--intel: --param level=3 sets the level too"),
        (["--intel", "11"], "--intel: must be a whole number from 1 to 10, not '11'"),
        (["--param", "level"], "--param: expected NAME=VALUE"),
        (["--param", "speed=3"], "--param: intel_slider has no parameter speed"),
        (["--strategy", "nowhere.Thing"], "--strategy: cannot import 'nowhere'"),
        (["--strategy", "rsi_whatever"], "--strategy: unknown strategy"),
        (["--strategy", "x.py:Nope", "--intel", "3"], "--intel: is shorthand"),
        (["--initial-balance", "lots"], "--initial-balance: 'lots' is not a number"),
        (["--initial-balance", "-5"], "--initial-balance: must be positive"),
        (["--initial-balance", "NaN"], "--initial-balance: 'NaN' is not a number"),
        (["--initial-balance", "1e30"], "--initial-balance: must be at most 1,000,000,000"),
        (["--output", "/proc/version/x"], "--output: cannot write there"),
        (["--fee-model", "cheap"], "--fee-model: 'cheap' is not pool, none or flat:<bps>"),
        (["--chain", "solana"], "--chain: unknown chain 'solana'"),
        (["--bar", "2x"], "--bar: unsupported candle interval"),
        (["--data", "/nonexistent/folder"], "--data: /nonexistent/folder is not a folder"),
    ],
)
def test_bad_input_is_a_clear_error_naming_the_option(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        backtest(*args)
    assert message in str(caught.value)


def test_the_command_line_prints_errors_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "backtest", "--tokens", "DOGE", "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CommandError: --tokens: unknown token 'DOGE'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.django_db
def test_save_stores_a_finished_session_the_analytics_can_show(tmp_path: Path, user: User) -> None:
    printed = backtest("--intel", "9", *PERIOD, "--save", "--user", user.username,
                       "--output", str(tmp_path))  # fmt: skip
    doc: dict[str, Any] = json.loads((tmp_path / "backtest.json").read_text())

    session = PaperTradingSession.objects.get()
    account = session.account
    assert f"Saved as session {session.session_id} of account {account.name!r}" in printed
    assert account.user == user
    assert account.name.startswith("Backtest intel_slider base 2025-12-11")
    assert session.status == PaperTradingSession.Status.COMPLETED
    assert (session.price_source, session.intel_level, session.total_ticks) == ("replay", 9, 81)
    assert (session.strategy_name, session.strategy_params) == ("intel_slider", {"level": 9})
    assert session.ending_value_usd == Decimal(doc["metrics"]["final_value_usd"])
    stored = PaperTrade.objects.filter(session=session).order_by("created_at", "token_symbol")
    assert [
        (t.token_symbol, t.side, str(t.swap_fee_usd), t.decision is not None) for t in stored
    ] == [
        (t["symbol"], t["side"], t["fee_usd"], True)
        for t in sorted(doc["trades"], key=lambda t: (t["created_at"], t["symbol"]))
    ]
    # The books reconcile as for any paper bot, and the analytics read the run.
    report = verify_account(account)
    assert report.ok, report.mismatches
    assert account.total_pnl_usd == Decimal(doc["metrics"]["total_pnl_usd"])
    assert len(equity_curve(account)) >= 4  # a metrics row every 20 ticks
    assert {r.token for r in per_token(account)} == {r["symbol"] for r in doc["per_token"]}
    # A second saved run gets its own account: no ids collide.
    backtest("--intel", "9", *PERIOD, "--save", "--user", user.username)
    assert PaperTradingAccount.objects.filter(user=user).count() == 2


_DECIDE = """
from decimal import Decimal
from paper_trading.engine.strategies.base import Action, Decision, Strategy

class Broken(Strategy):
    name = "broken"

    def decide(self, view):
        if view.position is None:
            return Decision(Action.BUY, view.symbol, Decimal(100), Decimal(0), Decimal(90),
                            Decimal(10), Decimal(50), "buy")
        {sell}
"""


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("class Broken(:\n", "cannot load '{path}': SyntaxError at line 1"),
        ("x = 1\nimport no_such_module_here\n", "ModuleNotFoundError at line 2"),
        (_DECIDE.format(sell="raise RuntimeError('boom')"), "broken.decide() raised RuntimeError"),
        (_DECIDE.format(sell="return 'SELL'"), "returned str, not a Decision"),
        (
            _DECIDE.format(sell="return Decision('SELL', view.symbol, *[Decimal(1)] * 5, 'x')"),
            "returned action 'SELL', not an Action",
        ),
        (
            _DECIDE.format(
                sell="return Decision(Action.SELL, view.symbol, 0.0, 0.5, *[1] * 3, '')"
            ),
            "returned size_usd=0.0, not a finite Decimal",
        ),
        (
            _DECIDE.format(
                sell="return Decision(Action.SELL, view.symbol, *[Decimal(-1)] * 5, '')"
            ),
            "returned a SELL of sell_fraction=-1, not in (0, 1]",
        ),
    ],
)
def test_a_broken_strategy_file_is_an_error_naming_the_option(
    tmp_path: Path, source: str, message: str
) -> None:
    """A user's mistake in a strategy stops backtest, optimize and gas_report with
    `--strategy: ...`, not a traceback from the importer or from deep in the engine."""
    path = tmp_path / "broken.py"
    path.write_text(source)
    own = {"backtest": ["--no-progress"], "optimize": ["--no-progress", "--workers", "1"]}
    for command in ("backtest", "optimize", "gas_report"):
        with pytest.raises(CommandError) as caught:
            call_command(
                command, "--strategy", f"{path}:Broken", "--chain", "base", "--tokens", "WETH",
                *PERIOD, *own.get(command, []),
            )  # fmt: skip
        assert str(caught.value).startswith("--strategy: ")
        assert message.format(path=path) in str(caught.value)
