"""`python -m bench.crash_loop`: SIGKILL a replaying bot N times; it must end as if never killed.

The real command (`manage.py run_paper_bot --prices replay --speed max` on the shipped
recording) runs in a subprocess on a database of its own. First an uninterrupted reference run on
one account; then, on a second account, the same replay is started and killed with SIGKILL `--kills`
times at random moments (most at a random tick, one in five during start-up, before the bot's
first new tick), and started again after each kill. Before the last, clean run,
`verify_paper_trading` must name the killed session as left RUNNING by a bot that is gone; after
it, `verify_paper_trading --check-all` must find no mismatch, no duplicate trade and no session
left RUNNING, the killed account must hold one session (resumed each time, COMPLETED) and its
trades and totals must equal the reference's, row for row.

The database is a new SQLite file in a temporary folder, `--database-url` (an empty database), or
with `--postgres SERVER_URL` a temporary database created on that server and dropped afterwards.
Prints a table, writes <results>/crash-loop-<stamp>.json and crash-loop-latest.json, and exits 1
if any check fails. `--seed` repeats a run's kill plan.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import dj_database_url

from bench import report
from bench.bot_capacity import _environment, _postgres_database, _with_database
from paper_trading.management.tables import TARGET_HEADER, text_table

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
REFERENCE = "Reference"
KILLED = "Killed"
#: The share of kills aimed at a bot's start-up (before its first new tick) instead of a tick.
STARTUP_SHARE = 0.2
#: Kills aim at least this many ticks before the end, so a bot never finishes before its kill.
#: (A kill after the last tick but before the session closes is tested on its own, in
#: tests/paper_trading/test_kill_restart.py, as polling cannot aim at that instant.)
END_MARGIN = 5
#: A bot that makes no progress for this long has hung.
PROGRESS_TIMEOUT = 120.0
POLL_SECONDS = 0.005
TRADE_COLUMNS = [
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
ACCOUNT_COLUMNS = ["current_balance_usd", "realized_pnl_usd", "total_fees_usd", "total_gas_usd"]


class Database:
    """Queries on the bots' database from outside Django: a SQLite file or PostgreSQL.

    The script polls a bot's progress every few milliseconds while the bot writes, and runs
    inside pytest too, whose Django connection belongs to the test database: hence DB-API.
    """

    def __init__(self, url: str) -> None:
        config = dj_database_url.parse(url)
        self.vendor = "sqlite" if "sqlite" in config["ENGINE"] else "postgresql"
        if self.vendor == "sqlite":
            self._conn: Any = sqlite3.connect(config["NAME"], timeout=30, isolation_level=None)
            self._mark = "?"
        else:
            import psycopg

            self._conn = psycopg.connect(url, autocommit=True)
            self._mark = "%s"

    def close(self) -> None:
        self._conn.close()

    def rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._conn.execute(
            sql.replace("%s", self._mark), params
        ).fetchall()
        return rows

    def ticks(self, account: str) -> int:
        """Ticks committed on the account's sessions (one session while all goes well)."""
        return int(
            self.rows(
                "SELECT COALESCE(SUM(s.total_ticks), 0) FROM paper_trading_papertradingsession s "
                "JOIN paper_trading_papertradingaccount a ON a.account_id = s.account_id "
                "WHERE a.name = %s",
                account,
            )[0][0]
        )

    def sessions(self, account: str) -> list[tuple[str, int]]:
        """(status, ticks) of each session of the account, oldest first."""
        return [
            (str(status), int(ticks))
            for status, ticks in self.rows(
                "SELECT s.status, s.total_ticks FROM paper_trading_papertradingsession s "
                "JOIN paper_trading_papertradingaccount a ON a.account_id = s.account_id "
                "WHERE a.name = %s ORDER BY s.started_at",
                account,
            )
        ]

    def active_sessions(self) -> int:
        return int(
            self.rows(
                "SELECT COUNT(*) FROM paper_trading_papertradingsession "
                "WHERE status IN ('RUNNING', 'PAUSED')"
            )[0][0]
        )

    def trades(self, account: str) -> list[tuple[Any, ...]]:
        columns = ", ".join(f"t.{c}" for c in TRADE_COLUMNS)
        return self.rows(
            f"SELECT {columns} FROM paper_trading_papertrade t "
            "JOIN paper_trading_papertradingaccount a ON a.account_id = t.account_id "
            "WHERE a.name = %s ORDER BY t.created_at, t.token_symbol, t.side, t.reason",
            account,
        )

    def totals(self, account: str) -> tuple[Any, ...]:
        rows = self.rows(
            f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM paper_trading_papertradingaccount "
            "WHERE name = %s",
            account,
        )
        return rows[0] if rows else ()


@dataclass(frozen=True)
class Kill:
    """One planned kill: a delay after the bot's launch (start-up), or after it reaches a tick.

    The delay after a tick is up to two ticks' time, so kills land anywhere in a tick: while
    it computes, while it writes, while it commits.
    """

    at_tick: int | None = None
    after_seconds: float = 0.0


@dataclass(frozen=True)
class KillRecord:
    """What one kill hit: the phase is start-up when the bot had made no new tick yet."""

    planned: str
    ticks_before: int
    ticks_at_kill: int
    seconds_after_launch: float

    @property
    def phase(self) -> str:
        return "start-up" if self.ticks_at_kill == self.ticks_before else "ticking"


def plan_kills(
    rng: random.Random, kills: int, total_ticks: int, startup_seconds: float, tick_seconds: float
) -> list[Kill]:
    """Distinct random ticks over the replay, in order, with start-up kills among them."""
    at_startup = round(kills * STARTUP_SHARE)
    at_ticks = kills - at_startup
    room = range(1, total_ticks - END_MARGIN)
    if at_ticks > len(room):
        raise ValueError(f"{kills} kills do not fit in a replay of {total_ticks} ticks")
    plan = [
        Kill(at_tick=t, after_seconds=rng.uniform(0, 2 * tick_seconds))
        for t in sorted(rng.sample(room, at_ticks))
    ]
    for _ in range(at_startup):
        plan.insert(rng.randint(0, len(plan)), Kill(after_seconds=rng.uniform(0, startup_seconds)))
    return plan


CONTEXT = "(context)"


class Verdict(NamedTuple):
    check: str
    value: str
    #: What passes, or CONTEXT for a figure shown for information.
    target: str
    passed: bool


@dataclass
class CrashLoopResult:
    seed: int
    database: str
    replay_args: list[str]
    kills_planned: int
    reference_ticks: int = 0
    reference_trades: int = 0
    #: The reference run: launch to first tick, and the mean time of a tick after that.
    startup_seconds: float = 0.0
    tick_seconds: float = 0.0
    kills: list[KillRecord] = field(default_factory=list)
    #: verify_paper_trading --json just before the final run, and after it.
    verify_before_final: dict[str, Any] = field(default_factory=dict)
    verify_before_final_exit: int | None = None
    active_before_final: int = 0
    verify: dict[str, Any] = field(default_factory=dict)
    verify_exit: int | None = None
    #: Ticks the killed account had made before the final run, and what that run did.
    ticks_before_final: int = 0
    final_exit: int | None = None
    final_resumed: bool = False
    killed_sessions: list[tuple[str, int]] = field(default_factory=list)
    active_sessions_after: int = -1
    killed_trades: int = 0
    trades_identical: bool = False
    totals_identical: bool = False
    first_difference: str = ""
    seconds: float = 0.0
    #: Why the run could not go on (a bot that crashed, hung or ended before its kill).
    errors: list[str] = field(default_factory=list)

    @property
    def restarts(self) -> int:
        """Launches after a kill: the next kill's launch, or the final clean run."""
        return max(0, len(self.kills) - 1 + (self.final_exit is not None))

    def verdicts(self) -> list[Verdict]:
        """The table, the JSON and the exit code: every check must pass."""
        v = self.verify
        orphans = self.verify_before_final.get("sessions_left_running")
        orphan_ok = orphans == self.active_before_final and (
            self.verify_before_final_exit == (1 if self.active_before_final else 0)
        )
        phases = [k.phase for k in self.kills]
        rows: list[tuple[str, str, str, bool]] = [
            (
                "kills (SIGKILL)",
                str(len(self.kills)),
                f"= {self.kills_planned}",
                len(self.kills) == self.kills_planned,
            ),
            (
                "  during start-up / while ticking",
                f"{phases.count('start-up')} / {phases.count('ticking')}",
                CONTEXT,
                True,
            ),
            (
                "restarts",
                str(self.restarts),
                f"= {self.kills_planned}",
                self.restarts == self.kills_planned,
            ),
            (
                "killed session seen left RUNNING",
                f"{orphans} of {self.active_before_final}",
                "all, verify exit 1",
                orphan_ok,
            ),
            (
                "final run resumed the session",
                "yes" if self.final_resumed else "no",
                "yes" if self.ticks_before_final else "(no tick yet)",
                self.final_resumed or not self.ticks_before_final,
            ),
            ("verify exit code", str(self.verify_exit), "= 0", self.verify_exit == 0),
            ("mismatches", str(v.get("mismatches")), "= 0", v.get("mismatches") == 0),
            (
                "duplicate trades",
                str(v.get("duplicate_trades")),
                "= 0",
                v.get("duplicate_trades") == 0,
            ),
            (
                "sessions left running",
                str(self.active_sessions_after),
                "= 0",
                self.active_sessions_after == 0 and v.get("sessions_left_running") == 0,
            ),
            (
                "killed account's sessions",
                ", ".join(f"{s} ({t} ticks)" for s, t in self.killed_sessions) or "none",
                f"COMPLETED ({self.reference_ticks} ticks)",
                [tuple(s) for s in self.killed_sessions] == [("COMPLETED", self.reference_ticks)],
            ),
            (
                "trades vs reference",
                f"{self.killed_trades} / {self.reference_trades}",
                "identical",
                self.trades_identical and self.reference_trades > 0,
            ),
            (
                "account totals vs reference",
                "identical" if self.totals_identical else "differ",
                "identical",
                self.totals_identical,
            ),
            ("errors", str(len(self.errors)), "= 0", not self.errors),
            ("seconds", f"{self.seconds:.1f}", CONTEXT, True),
        ]
        return [Verdict(*row) for row in rows]

    @property
    def ok(self) -> bool:
        return all(v.passed for v in self.verdicts())

    def table(self) -> list[str]:
        rows = [
            (
                v.check,
                v.value,
                v.target,
                "" if v.target == CONTEXT else "pass" if v.passed else "FAIL",
            )
            for v in self.verdicts()
        ]
        return text_table(TARGET_HEADER, rows)


def _bot_args(account: str, replay_args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        MANAGE,
        "run_paper_bot",
        "--account",
        account,
        "--prices",
        "replay",
        "--speed",
        "max",
        "-v0",
        *replay_args,
    ]


def _manage(
    env: dict[str, str], *args: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, MANAGE, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _verify(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """verify_paper_trading --check-all --json: its exit code and its document."""
    out = _manage(env, "verify_paper_trading", "--check-all", "--json")
    try:
        document: dict[str, Any] = json.loads(out.stdout)
    except json.JSONDecodeError:
        document = {"error": (out.stdout + out.stderr)[-2000:]}
    return out.returncode, document


class _Bots:
    """Launches of the real command; their stderr goes to one log file, read on failure."""

    def __init__(self, env: dict[str, str], replay_args: Sequence[str], log: Path) -> None:
        self.env = env
        self.replay_args = list(replay_args)
        self.log = log

    def launch(self, account: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as err:
            return subprocess.Popen(
                _bot_args(account, self.replay_args),
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


def _first_difference(ours: list[tuple[Any, ...]], reference: list[tuple[Any, ...]]) -> str:
    for i, (a, b) in enumerate(zip(ours, reference, strict=False)):
        if a != b:
            return f"trade {i}: killed {a!r}, reference {b!r}"
    if len(ours) != len(reference):
        return f"{len(ours)} trades, reference {len(reference)}"
    return ""


def run_crash_loop(
    database_url: str,
    folder: Path,
    kills: int,
    seed: int,
    replay_args: Sequence[str] = (),
) -> CrashLoopResult:
    """Reference run, `kills` kills each followed by a restart, the clean run, the checks."""
    began = time.perf_counter()
    env = _environment(database_url, "", folder)
    result = CrashLoopResult(seed, "", list(replay_args), kills)
    migrate = _manage(env, "migrate", "--noinput", "-v0")
    if migrate.returncode != 0:
        result.errors.append(f"migrate failed: {migrate.stderr[-2000:]}")
        return result
    db = Database(database_url)
    result.database = db.vendor
    try:
        _run(result, _Bots(env, replay_args, folder / "bots.log"), db, env)
    finally:
        db.close()
        result.seconds = time.perf_counter() - began
    return result


def _run(result: CrashLoopResult, bots: _Bots, db: Database, env: dict[str, str]) -> None:
    # The reference, uninterrupted; it also tells how long a bot takes to reach its first tick.
    launched = time.perf_counter()
    reference = bots.launch(REFERENCE)
    while db.ticks(REFERENCE) == 0 and reference.poll() is None:
        time.sleep(POLL_SECONDS)
    first_tick = time.perf_counter()
    result.startup_seconds = first_tick - launched
    if reference.wait(timeout=600) != 0:
        result.errors.append(f"the reference run failed: {bots.tail()}")
        return
    result.reference_ticks = db.ticks(REFERENCE)
    result.tick_seconds = (time.perf_counter() - first_tick) / result.reference_ticks
    reference_trades = db.trades(REFERENCE)
    result.reference_trades = len(reference_trades)

    rng = random.Random(result.seed)
    try:
        plan = plan_kills(
            rng,
            result.kills_planned,
            result.reference_ticks,
            result.startup_seconds,
            result.tick_seconds,
        )
    except ValueError as exc:
        result.errors.append(str(exc))
        return
    for kill in plan:
        record = _kill_once(bots, db, kill)
        if isinstance(record, str):
            result.errors.append(record)
            return
        result.kills.append(record)

    # Every bot is dead now: the verifier must name each active session as left RUNNING.
    result.active_before_final = db.active_sessions()
    result.verify_before_final_exit, result.verify_before_final = _verify(env)

    result.ticks_before_final = db.ticks(KILLED)
    final = _manage(env, *_bot_args(KILLED, bots.replay_args)[2:])
    result.final_exit = final.returncode
    if final.returncode != 0:
        result.errors.append(f"the final run failed: {final.stderr[-2000:]}")
    result.final_resumed = "Resuming session" in final.stdout
    result.verify_exit, result.verify = _verify(env)
    result.killed_sessions = db.sessions(KILLED)
    result.active_sessions_after = db.active_sessions()
    killed_trades = db.trades(KILLED)
    result.killed_trades = len(killed_trades)
    result.trades_identical = killed_trades == reference_trades
    result.totals_identical = db.totals(KILLED) == db.totals(REFERENCE)
    result.first_difference = _first_difference(killed_trades, reference_trades)


def _kill_once(bots: _Bots, db: Database, kill: Kill) -> KillRecord | str:
    """Launch the bot, SIGKILL it at the planned moment; a description of what went wrong."""
    before = db.ticks(KILLED)
    launched = time.perf_counter()
    bot = bots.launch(KILLED)
    if kill.at_tick is None:
        planned = f"{kill.after_seconds:.3f} s after launch"
    else:
        target = max(kill.at_tick, before + 1)
        planned = f"{kill.after_seconds * 1000:.1f} ms after tick {target}"
        last_progress, seen = time.perf_counter(), before
        while bot.poll() is None and (now := db.ticks(KILLED)) < target:
            if now != seen:
                last_progress, seen = time.perf_counter(), now
            elif time.perf_counter() - last_progress > PROGRESS_TIMEOUT:
                bot.kill()
                bot.wait()
                return f"the bot made no progress for {PROGRESS_TIMEOUT:.0f} s at tick {now}"
            time.sleep(POLL_SECONDS)
    time.sleep(kill.after_seconds)
    bot.kill()
    seconds = time.perf_counter() - launched
    if bot.wait() != -9:
        return f"the bot ended (exit {bot.returncode}) before its kill at {planned}: {bots.tail()}"
    return KillRecord(planned, before, db.ticks(KILLED), seconds)


@contextmanager
def _database(args: argparse.Namespace, folder: Path) -> Iterator[str]:
    """The database URL to run on; a temporary PostgreSQL database is dropped afterwards."""
    if args.postgres:
        name = f"dexpaper_crash_{uuid.uuid4().hex[:12]}"
        _postgres_database(args.postgres, "create", name)
        try:
            yield _with_database(args.postgres, name)
        finally:
            _postgres_database(args.postgres, "drop", name)
    else:
        yield args.database_url or f"sqlite:///{folder / 'crash-loop.sqlite3'}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs, each with a restart")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's kill plan")
    parser.add_argument(
        "--from", dest="period_start", help="replay from (UTC; default: the whole recording)"
    )
    parser.add_argument("--to", dest="period_end", help="replay until (UTC)")
    parser.add_argument(
        "--database-url", default="", help="an empty database (default: a new SQLite file)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", ""),
        help="a PostgreSQL server URL: run on a temporary database created on it",
    )
    report.add_results_option(parser)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    replay_args = [
        *(["--from", args.period_start] if args.period_start else []),
        *(["--to", args.period_end] if args.period_end else []),
    ]
    with tempfile.TemporaryDirectory(prefix="dexpaper-crash-loop-") as tmp:
        folder = Path(tmp)
        with _database(args, folder) as url:
            print(
                f"crash loop: {args.kills} kills, seed {seed}, on {url.split(':')[0]} ...",
                flush=True,
            )
            result = run_crash_loop(url, folder, args.kills, seed, replay_args)

    print()
    print(
        f"SIGKILL x {len(result.kills)} on a --speed max replay of {result.reference_ticks} "
        f"ticks ({result.database}, seed {seed})"
    )
    print("\n".join(result.table()))
    for line in [*result.errors, result.first_difference]:
        if line:
            print(f"\n{line}")

    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "command": " ".join(["python -m bench.crash_loop", *(argv or sys.argv[1:])]),
        "ok": result.ok,
        "verdicts": [v._asdict() for v in result.verdicts()],
        "result": asdict(result)
        | {"kills": [asdict(k) | {"phase": k.phase} for k in result.kills]},
    }
    print(f"\nSaved {report.save(document, 'crash-loop', args.results)}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
