"""A bot killed with SIGKILL mid-replay restarts with exactly the committed state.

Runs the real command in subprocesses on a file database, kills it at random moments, restarts
it, and compares the result with an uninterrupted run of the same replay.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
TRADE_COLUMNS = ", ".join(
    f"t.{column}"
    for column in [
        "token_symbol",
        "side",
        "status",
        "reason",
        "created_at",
        "amount_in",
        "amount_out",
        "swap_fee_usd",
        "price_impact_bps",
        "gas_cost_usd",
        "realized_pnl_usd",
    ]
)

pytestmark = pytest.mark.own_database


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, timeout=300
    )


def _ticks(db: Path, account: str) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        row = conn.execute(
            "SELECT COALESCE(MAX(s.total_ticks), 0) FROM paper_trading_papertradingsession s "
            "JOIN paper_trading_papertradingaccount a ON a.account_id = s.account_id "
            "WHERE a.name = ?",
            (account,),
        ).fetchone()
    return int(row[0])


def _trades(db: Path, account: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            f"SELECT {TRADE_COLUMNS} FROM paper_trading_papertrade t "
            "JOIN paper_trading_papertradingaccount a ON a.account_id = t.account_id "
            "WHERE a.name = ? ORDER BY t.created_at, t.token_symbol, t.side",
            (account,),
        ).fetchall()


@pytest.mark.slow
def test_sigkill_mid_replay_restarts_consistently(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    assert _manage(env, "migrate", "--noinput", "-v0").returncode == 0

    reference = _manage(env, "run_paper_bot", "--account", "Reference", "--speed", "max", "-v0")
    assert reference.returncode == 0, reference.stderr
    total = _ticks(db, "Reference")

    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    kill_points = sorted(rng.sample(range(20, total - 20), 3))
    for point in kill_points:
        bot = subprocess.Popen(
            [
                sys.executable,
                MANAGE,
                "run_paper_bot",
                "--account",
                "Killed",
                "--speed",
                "max",
                "-v0",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while _ticks(db, "Killed") < point and bot.poll() is None:
            assert time.monotonic() < deadline, "bot made no progress"
            time.sleep(0.01)
        bot.kill()
        bot.wait()
        assert bot.returncode == -9, f"bot ended before it was killed (seed {seed})"

    finish = _manage(env, "run_paper_bot", "--account", "Killed", "--speed", "max", "-v0")
    assert finish.returncode == 0, finish.stderr
    assert "Resuming session" in finish.stdout

    verify = _manage(env, "verify_paper_trading", "--check-all")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "2 accounts reconcile" in verify.stdout

    with sqlite3.connect(db) as conn:
        statuses = conn.execute(
            "SELECT status, COUNT(*) FROM paper_trading_papertradingsession GROUP BY status"
        ).fetchall()
    assert dict(statuses) == {"COMPLETED": 2}, f"seed {seed}: {statuses}"
    killed = _trades(db, "Killed")
    assert killed, "the replay made no trades"
    assert killed == _trades(db, "Reference"), f"kill points {kill_points} (seed {seed})"
