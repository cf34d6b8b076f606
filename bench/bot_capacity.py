"""`python -m bench.bot_capacity`: how many bots one worker process sustains at a 15 s tick.

N bots run round-robin in one process (one core): each has its own account, session and
portfolio, and is wired exactly as a worker wires it (`services.bot.build_loop`: MarketAnalyzer
on the shipped replay prices, DjangoStore, ChannelsPublisher, LogSink, plus the stop-request
watcher `run_session` adds). Each bot tick is timed in the loop's own steps:

* engine: `analyzer.tick(now)` alone (pure computation, no database);
* engine + store: `analyzer.tick` + `DjangoStore.publish` (one transaction per tick): the
  figure the capacity target is measured on;
* full loop: everything `BotLoop.run` does per tick: reading the account's configuration, the
  tick, then every sink (store, websocket publisher with nobody listening, log, stop watcher).

Capacity = 15 s / (median ms per bot tick): bots per core if ticks are spread over the 15 s.
The first rounds (warm-up, first trades) are not measured. Each database backend runs in its
own process on a fresh database: a temporary SQLite file (WAL, as shipped), and PostgreSQL when
`--postgres URL` (or BENCH_POSTGRES_URL) names a server: a temporary database is created on it
and dropped afterwards. `--redis URL` (or BENCH_REDIS_URL) makes the publisher use channels-redis
as a scaled worker does (default: the in-memory layer, the one-machine mode).

Prints a table, writes bench/results/bot-capacity-<stamp>.json and bot-capacity-latest.json,
and exits 1 if a target fails (>= 500 bots per core on engine + store).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import report
from paper_trading.management.tables import TARGET_HEADER, text_table

TICK_SECONDS = 15.0
TARGET_BOTS_PER_CORE = 500.0


# -- one backend, in its own process ------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values),
        "mean_ms": statistics.fmean(values),
        "p95_ms": _percentile(values, 95),
        "max_ms": max(values),
    }


def _child(bots: int, rounds: int, warmup_rounds: int) -> dict[str, Any]:
    """Runs with DATABASE_URL (and maybe REDIS_URL) already set by the parent."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dexproject.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from paper_trading.engine.events import ThoughtLogged, TradeExecuted
    from paper_trading.engine.prices.replay import ReplaySource
    from paper_trading.services.accounts import create_account, trading_config
    from paper_trading.services.bot import (
        BotSettings,
        StopRequestWatcher,
        build_loop,
        start_session,
    )
    from paper_trading.store import DjangoStore

    call_command("migrate", verbosity=0, interactive=False)
    user = User.objects.create_user("bench", "bench@localhost", uuid.uuid4().hex)
    # Bots start spread over the recording (different markets, some trading) with Intel 1-10.
    timeline = ReplaySource(interval="1h").timeline()
    last_start = len(timeline) - 2 * (warmup_rounds + rounds) - 300
    began = time.perf_counter()
    wired = []
    for i in range(bots):
        account = create_account(user, f"bench bot {i}")
        bot_settings = BotSettings(
            intel_level=1 + i % 10,
            prices="replay",
            speed=None,
            seed=i,
            period_start=timeline[i * last_start // bots],
            session_name=f"capacity {i}",
        )
        session = start_session(account, bot_settings)
        stop = threading.Event()
        loop = build_loop(session, stop)
        loop.sinks = [*loop.sinks, StopRequestWatcher(session.session_id, stop)]
        store = next(s for s in loop.sinks if isinstance(s, DjangoStore))
        others = [s for s in loop.sinks if s is not store]
        wired.append((account, loop, store, others, iter(loop.schedule.ticks(stop))))
    setup_seconds = time.perf_counter() - began

    config_ms: list[float] = []
    engine: list[float] = []
    store_ms: list[float] = []
    engine_store: list[float] = []
    engine_store_cpu: list[float] = []
    other_sinks: list[float] = []
    full: list[float] = []
    trades = thoughts = 0
    measured_seconds = 0.0
    for round_no in range(warmup_rounds + rounds):
        round_began = time.perf_counter()
        for account, loop, store, others, ticks in wired:
            now = next(ticks)
            t0 = time.perf_counter()
            loop.analyzer.config = trading_config(account)  # the loop's config_source
            t1 = time.perf_counter()
            c1 = time.process_time()
            result = loop.analyzer.tick(now)
            t2 = time.perf_counter()
            store.publish(result)
            t3 = time.perf_counter()
            c3 = time.process_time()
            for sink in others:
                sink.publish(result)
            t4 = time.perf_counter()
            if round_no >= warmup_rounds:
                config_ms.append((t1 - t0) * 1000)
                engine.append((t2 - t1) * 1000)
                store_ms.append((t3 - t2) * 1000)
                engine_store.append((t3 - t1) * 1000)
                engine_store_cpu.append((c3 - c1) * 1000)
                other_sinks.append((t4 - t3) * 1000)
                full.append((t4 - t0) * 1000)
                trades += len(result.of_type(TradeExecuted))
                thoughts += len(result.of_type(ThoughtLogged))
        if round_no >= warmup_rounds:
            measured_seconds += time.perf_counter() - round_began
    from paper_trading.models import PaperTrade

    vendor = connection.vendor
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return {
        "database": vendor,
        "channel_layer": layer,
        "bots": bots,
        "rounds": rounds,
        "warmup_rounds": warmup_rounds,
        "bot_ticks": len(engine),
        "setup_seconds": setup_seconds,
        "measured_seconds": measured_seconds,
        "thoughts_per_tick": thoughts / max(1, len(engine)),
        "trades_per_tick": trades / max(1, len(engine)),
        "trades_stored": PaperTrade.objects.count(),
        "config_read": _stats(config_ms),
        "engine": _stats(engine),
        "store": _stats(store_ms),
        "engine_store": _stats(engine_store),
        #: This process's CPU only (a database server's work is elsewhere).
        "engine_store_cpu": _stats(engine_store_cpu),
        "other_sinks": _stats(other_sinks),
        "full_loop": _stats(full),
    }


# -- the parent: databases, processes, table ----------------------------------------------


def _postgres_database(url: str, action: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if action == "create":
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _run_child(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.bot_capacity",
        "--child",
        "--bots",
        str(args.bots),
        "--rounds",
        str(args.rounds),
        "--warmup-rounds",
        str(args.warmup_rounds),
    ]
    out = subprocess.run(
        command,
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the benchmark process failed:\n{out.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _environment(database_url: str, redis_url: str, folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dexproject.settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="bench-only-" + uuid.uuid4().hex,
        PRICE_CACHE_DIR=str(folder / "prices"),
        COINGECKO_API_URL="http://127.0.0.1:9/api/v3",
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        PRICE_CACHE_KEY_PREFIX=f"bench-{uuid.uuid4().hex[:8]}",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bots", type=int, default=50, help="bots in the process")
    parser.add_argument("--rounds", type=int, default=8, help="measured ticks per bot")
    parser.add_argument("--warmup-rounds", type=int, default=2, help="unmeasured ticks per bot")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", ""),
        help="a PostgreSQL server URL (a temporary database is created on it); empty: skip",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="publish with channels-redis on this server (empty: the in-memory layer)",
    )
    parser.add_argument("--target", type=float, default=TARGET_BOTS_PER_CORE)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    report.add_results_option(parser)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.bots, args.rounds, args.warmup_rounds)))
        return 0

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="dexpaper-bot-capacity-") as tmp:
        folder = Path(tmp)
        print(f"sqlite: {args.bots} bots x {args.rounds} measured ticks ...", flush=True)
        sqlite_url = f"sqlite:///{folder / 'capacity.sqlite3'}"
        runs.append(_run_child(_environment(sqlite_url, args.redis, folder), args))
        if args.postgres:
            name = f"dexpaper_bench_{uuid.uuid4().hex[:12]}"
            print(f"postgresql: {args.bots} bots x {args.rounds} measured ticks ...", flush=True)
            _postgres_database(args.postgres, "create", name)
            try:
                pg_url = _with_database(args.postgres, name)
                runs.append(_run_child(_environment(pg_url, args.redis, folder), args))
            finally:
                _postgres_database(args.postgres, "drop", name)

    rows: list[tuple[str, str, str, str]] = []
    targets: list[dict[str, Any]] = []
    failed = 0
    for run in runs:
        db = run["database"]
        engine = run["engine"]["median_ms"]
        rows.append((f"{db}.engine_ms_per_bot_tick", f"{engine:.2f}", "(context)", ""))
        rows.append(
            (f"{db}.engine_bots_per_core", f"{TICK_SECONDS * 1000 / engine:,.0f}", "(context)", "")
        )
        rows.append((f"{db}.store_ms_per_bot_tick", f"{run['store']['median_ms']:.2f}", "", ""))
        cost = run["engine_store"]["median_ms"]
        capacity = TICK_SECONDS * 1000 / cost
        ok = capacity >= args.target
        failed += not ok
        rows.append((f"{db}.engine_store_ms_per_bot_tick", f"{cost:.2f}", "", ""))
        rows.append(
            (
                f"{db}.bots_per_core",
                f"{capacity:,.0f}",
                f">= {args.target:g} bots",
                "pass" if ok else "FAIL",
            )
        )
        full = run["full_loop"]["median_ms"]
        rows.append((f"{db}.full_loop_ms_per_bot_tick", f"{full:.2f}", "(context)", ""))
        rows.append(
            (f"{db}.full_loop_bots_per_core", f"{TICK_SECONDS * 1000 / full:,.0f}", "(context)", "")
        )
        run["bots_per_core"] = capacity
        targets.append(
            {
                "metric": f"{db}.bots_per_core",
                "kind": "min",
                "bound": args.target,
                "value": capacity,
                "ok": ok,
            }
        )
    print()
    print(
        f"Bots per worker process: {args.bots} bots round-robin, {TICK_SECONDS:g} s tick, "
        f"median over {runs[0]['bot_ticks']} bot ticks per database "
        f"(channel layer: {runs[0]['channel_layer']})"
    )
    print("\n".join(text_table(TARGET_HEADER, rows)))

    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "setup": {
            "bots": args.bots,
            "rounds": args.rounds,
            "warmup_rounds": args.warmup_rounds,
            "tick_seconds": TICK_SECONDS,
            "prices": "replay 1h (shipped recording), Intel 5, base chain",
        },
        "runs": runs,
        "targets": targets,
        "failed": failed,
    }
    print(f"\nSaved {report.save(document, 'bot-capacity', args.results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
