"""`python -m bench.api_load`: the REST API under load, through a real server and load generator.

A fresh SQLite database (a temporary file, migrated) gets one account with 10,000 trades, 50 open
positions, a few hundred thoughts and metrics rows, and an API token. The real server (gunicorn,
`dexproject.wsgi`, 2 workers x 4 threads) serves it, and wrk drives each endpoint with 20
concurrent connections (`Authorization: Token <key>`): a short warm-up, then the measured run.
p50/p95/p99 come from wrk's own latency histogram (a Lua `done()` prints them exactly).

Prints a table, writes bench/results/api-load-<stamp>.json and api-load-latest.json, and exits 1
if any endpoint misses its target (p95 < 20 ms, no errors, no non-2xx answers).
Needs `wrk` (Debian: apt-get install wrk) and gunicorn (a project dependency).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench import report
from bench.report import CONTEXT, Target

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = (
    "/paper-trading/api/portfolio/",
    "/paper-trading/api/trades/",
    "/paper-trading/api/metrics/",
)
TARGET_P95_MS = 20.0
TRADES = 10_000
OPEN_POSITIONS = 50
THOUGHTS = 400
METRICS = 300

#: Prints wrk's exact percentiles (microseconds) as one JSON line after the run.
WRK_SCRIPT = """
wrk.headers["Authorization"] = "Token %(key)s"
wrk.headers["Accept"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,'
    .. '"p50_us":%%d,"p75_us":%%d,"p90_us":%%d,"p95_us":%%d,"p99_us":%%d,'
    .. '"mean_us":%%.1f,"max_us":%%d,"connect_errors":%%d,"read_errors":%%d,'
    .. '"write_errors":%%d,"timeouts":%%d,"non_2xx":%%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Result:
    endpoint: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    queries_per_request: int
    response_bytes: int
    ok: bool


# -- the data set ---------------------------------------------------------------------------


def _environment(folder: Path) -> dict[str, str]:
    """The server's environment: a throwaway database, production-like settings, no network."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dexproject.settings",
        DATABASE_URL=f"sqlite:///{folder / 'api-load.sqlite3'}",
        DEBUG="0",
        API_BROWSABLE="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECRET_KEY="bench-only-" + uuid.uuid4().hex,
        PRICE_CACHE_DIR=str(folder / "prices"),
        COINGECKO_API_URL="http://127.0.0.1:9/api/v3",
        REDIS_URL="",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        # Throttles apply to writes only; make sure nothing here throttles the readers.
        PYTHONUNBUFFERED="1",
    )
    return env


def _seed() -> tuple[str, dict[str, int]]:
    """One account with a long history; returns an API key for its owner and the row counts."""
    from django.contrib.auth.models import User

    from paper_trading.engine import money
    from paper_trading.engine.chains import CHAINS
    from paper_trading.models import (
        PaperAIThoughtLog,
        PaperPerformanceMetrics,
        PaperPosition,
        PaperTrade,
        PaperTradingSession,
    )
    from paper_trading.services.accounts import create_account
    from paper_trading.services.auth import create_api_token

    rng = random.Random(20_261_122)
    user = User.objects.create_user("bench", "bench@localhost", uuid.uuid4().hex)
    account = create_account(user, "Bench", Decimal(1_000_000))
    end = datetime(2026, 11, 1, tzinfo=UTC)
    start = end - timedelta(days=60)
    session = PaperTradingSession.objects.create(
        account=account,
        name="bench history",
        status=PaperTradingSession.Status.STOPPED,
        intel_level=7,
        price_source=PaperTradingSession.PriceSource.REPLAY,
        starting_balance_usd=account.initial_balance_usd,
        last_tick_at=end,
        heartbeat_at=end,
        ended_at=end,
        total_ticks=1440,
        total_trades=TRADES,
        successful_trades=TRADES - TRADES // 50,
        failed_trades=TRADES // 50,
        total_thoughts=THOUGHTS,
    )
    # Every tradable (chain, token) pair, then long-tail tokens, for 50 distinct open positions.
    pairs = [(c.chain_id, t.symbol, t.address) for c in CHAINS.values() for t in c.tradable_tokens]
    tail = ["LINK", "AAVE", "CRV", "LDO", "MKR", "SNX", "COMP", "BAL", "SUSHI", "YFI", "PEPE"]
    chain_ids = [c.chain_id for c in CHAINS.values() if c.chain_id != 84532]
    while len(pairs) < OPEN_POSITIONS:
        i = len(pairs)
        symbol = tail[i % len(tail)] + ("" if i < 2 * len(tail) else str(i))
        chain_id = chain_ids[i % len(chain_ids)]
        if all((c, s) != (chain_id, symbol) for c, s, _ in pairs):
            pairs.append((chain_id, symbol, "0x" + rng.getrandbits(160).to_bytes(20).hex()))
    base_price = {s: Decimal(str(round(rng.uniform(0.5, 4000), 4))) for _, s, _ in pairs}
    base_price.update({"WETH": Decimal("3200"), "WBTC": Decimal("96000")})

    positions = []
    for chain_id, symbol, address in pairs[:OPEN_POSITIONS]:
        entry = base_price[symbol]
        now_price = money.price(entry * Decimal(str(rng.uniform(0.9, 1.15))))
        quantity = money.qty(Decimal(rng.uniform(1_000, 15_000)) / entry)
        cost = money.usd(quantity * entry)
        value = money.usd(quantity * now_price)
        positions.append(
            PaperPosition(
                account=account,
                session=session,
                token_symbol=symbol,
                token_address=address,
                chain_id=chain_id,
                quantity=quantity,
                cost_basis_usd=cost,
                entry_costs_usd=money.usd(cost * Decimal("0.0031")),
                average_entry_price_usd=money.price(entry),
                current_price_usd=now_price,
                current_value_usd=value,
                unrealized_pnl_usd=value - cost,
                peak_price_usd=max(now_price, money.price(entry)),
                is_open=True,
                opened_at=end - timedelta(hours=rng.randint(1, 240)),
            )
        )
    PaperPosition.objects.bulk_create(positions)

    thoughts = []
    for i in range(THOUGHTS):
        chain_id, symbol, _ = pairs[i % len(pairs)]
        kind = rng.choice(["BUY", "SELL", "HOLD", "HOLD", "BLOCKED"])
        confidence = money.ratio(Decimal(str(round(rng.uniform(20, 95), 2))))
        thoughts.append(
            PaperAIThoughtLog(
                account=account,
                session=session,
                token_symbol=symbol,
                decision_type=kind,
                confidence_level=confidence,
                risk_assessment=money.ratio(Decimal(str(round(rng.uniform(5, 60), 2)))),
                opportunity_score=confidence,
                reasoning=f"{symbol}: trend and momentum scored; confidence {confidence}: {kind}.",
                market_data={"chain_id": chain_id, "price_usd": str(base_price[symbol])},
                strategy_name="intel_slider",
                created_at=end - timedelta(minutes=9 * i),
            )
        )
    PaperAIThoughtLog.objects.bulk_create(thoughts)

    trades = []
    step = (end - start) / TRADES
    for i in range(TRADES):
        chain_id, symbol, address = pairs[rng.randrange(len(pairs))]
        side = "BUY" if i % 2 == 0 else "SELL"
        reverted = i % 50 == 49
        mid = money.price(base_price[symbol] * Decimal(str(rng.uniform(0.8, 1.2))))
        size_usd = money.usd(Decimal(str(round(rng.uniform(50, 20_000), 2))))
        impact = Decimal(str(round(rng.uniform(0, 30), 4)))
        execution = money.price(
            mid * (1 + impact / 10_000) if side == "BUY" else mid * (1 - impact / 10_000)
        )
        tokens = money.qty(size_usd / execution)
        fee_pips = rng.choice([100, 500, 3000, 10_000])
        fee = money.usd(size_usd * fee_pips / 1_000_000)
        gas_units = rng.randint(110_000, 190_000)
        gwei = money.price(Decimal(str(round(rng.uniform(0.001, 30), 6))))
        native = money.qty(gwei * gas_units / 1_000_000_000)
        gas_usd = money.usd(native * Decimal(3200))
        realized = money.usd(Decimal(str(round(rng.uniform(-400, 500), 2)))) * (side == "SELL")
        trades.append(
            PaperTrade(
                account=account,
                session=session,
                chain_id=chain_id,
                token_symbol=symbol,
                token_address=address,
                side=side,
                status="REVERTED" if reverted else "EXECUTED",
                reason="strategy" if side == "BUY" else rng.choice(["strategy", "take_profit"]),
                token_in="USDC" if side == "BUY" else symbol,
                token_out=symbol if side == "BUY" else "USDC",
                amount_in=size_usd if side == "BUY" else tokens,
                amount_out=(Decimal(0) if reverted else tokens if side == "BUY" else size_usd),
                amount_in_usd=size_usd,
                amount_out_usd=Decimal(0) if reverted else money.usd(size_usd - fee),
                mid_price_usd=mid,
                execution_price_usd=execution,
                pool_kind=rng.choice(["v3", "v2"]),
                fee_pips=fee_pips,
                swap_fee_usd=Decimal(0) if reverted else fee,
                swap_fee_bps=money.ratio(Decimal(fee_pips) / 100),
                price_impact_bps=money.ratio(impact),
                slippage_bps=money.ratio(impact + Decimal(fee_pips) / 100),
                slippage_tolerance_bps=Decimal(50),
                min_amount_out=money.qty(tokens * Decimal("0.995")),
                gas_units=gas_units,
                gas_price_gwei=gwei,
                gas_cost_native=native,
                l1_fee_native=money.qty(native / 40) if chain_id != 1 else Decimal(0),
                approval_gas_usd=Decimal(0),
                gas_cost_usd=gas_usd,
                realized_pnl_usd=Decimal(0) if reverted else realized,
                net_pnl_usd=Decimal(0) if reverted else money.usd(realized - fee - gas_usd),
                revert_reason="slippage tolerance exceeded" if reverted else "",
                created_at=start + step * (i + 1),
            )
        )
    PaperTrade.objects.bulk_create(trades, batch_size=1000)

    metrics = []
    for i in range(METRICS):
        value = money.usd(Decimal(1_000_000) + Decimal(str(round(rng.uniform(-50_000, 80_000), 2))))
        metrics.append(
            PaperPerformanceMetrics(
                account=account,
                session=session,
                computed_at=end - timedelta(hours=4 * i),
                portfolio_value_usd=value,
                total_pnl_usd=value - account.initial_balance_usd,
                return_percent=money.ratio((value - account.initial_balance_usd) / 10_000),
                realized_pnl_usd=money.usd(Decimal(rng.uniform(-20_000, 30_000))),
                unrealized_pnl_usd=money.usd(Decimal(rng.uniform(-5_000, 5_000))),
                total_fees_usd=money.usd(Decimal(rng.uniform(1_000, 30_000))),
                total_gas_usd=money.usd(Decimal(rng.uniform(10, 900))),
                total_trades=TRADES - 30 * i,
                reverted_trades=(TRADES - 30 * i) // 50,
                closed_trades=(TRADES - 30 * i) // 2,
                winning_trades=(TRADES - 30 * i) // 4,
                losing_trades=(TRADES - 30 * i) // 4,
                win_rate=Decimal(50),
                profit_factor=money.ratio(Decimal(str(round(rng.uniform(0.6, 1.8), 4)))),
                sharpe_ratio=money.ratio(Decimal(str(round(rng.uniform(-2, 3), 4)))),
                sortino_ratio=money.ratio(Decimal(str(round(rng.uniform(-2, 4), 4)))),
                max_drawdown_percent=money.ratio(Decimal(str(round(rng.uniform(1, 25), 4)))),
                best_trade_usd=money.usd(Decimal(500)),
                worst_trade_usd=money.usd(Decimal(-400)),
            )
        )
    PaperPerformanceMetrics.objects.bulk_create(metrics)

    account.current_balance_usd = money.usd(Decimal(250_000))
    account.realized_pnl_usd = sum((t.realized_pnl_usd for t in trades), Decimal(0))
    account.total_fees_usd = sum((t.swap_fee_usd for t in trades), Decimal(0))
    account.total_gas_usd = sum((t.gas_cost_usd for t in trades), Decimal(0))
    account.save()

    _, key = create_api_token(user, "bench")
    counts = {
        "trades": PaperTrade.objects.filter(account=account).count(),
        "open_positions": PaperPosition.objects.filter(account=account, is_open=True).count(),
        "thoughts": PaperAIThoughtLog.objects.filter(account=account).count(),
        "metrics": PaperPerformanceMetrics.objects.filter(account=account).count(),
    }
    return key, counts


def _queries_per_request(key: str) -> dict[str, int]:
    """SQL queries each endpoint makes (in-process, same database): the first thing to profile."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {key}")
    counts = {}
    for endpoint in ENDPOINTS:
        client.get(endpoint)  # the token's last_used_at update happens once a minute at most
        with CaptureQueriesContext(connection) as queries:
            response = client.get(endpoint)
        assert response.status_code == 200, (endpoint, response.status_code)
        counts[endpoint] = len(queries)
    return counts


# -- server and load ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, key: str) -> tuple[int, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, 0


def _wait_ready(base: str, key: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited early:\n{log.read_text()[-3000:]}")
        try:
            if _get(base + ENDPOINTS[0], key)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


def _wrk(url: str, script: Path, connections: int, threads: int, seconds: float) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    stats: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    return stats


def _start_server(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> Any:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "dexproject.wsgi:application",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _targets(r: Result, p95_ms: float) -> list[Target]:
    """One endpoint's verdict rows, as `make bench` shows them."""
    return [
        Target(f"{r.endpoint} p95_ms", r.p95_ms, "max", p95_ms, "ms"),
        Target(f"{r.endpoint} errors + non-2xx", r.errors + r.non_2xx, "max", 0),
        Target(f"{r.endpoint} requests_per_second", r.requests_per_second, CONTEXT),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10, help="measured run per endpoint")
    parser.add_argument("--warmup", type=float, default=2, help="warm-up run per endpoint")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--wrk-threads", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--target-p95-ms", type=float, default=TARGET_P95_MS)
    report.add_results_option(parser)
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 2
    if importlib.util.find_spec("gunicorn") is None:
        print(
            "gunicorn is not installed in this environment (pip install gunicorn)", file=sys.stderr
        )
        return 2

    with tempfile.TemporaryDirectory(prefix="dexpaper-api-load-") as tmp:
        folder = Path(tmp)
        env = _environment(folder)
        os.environ.update(env)
        import django
        from django.core.management import call_command

        django.setup()
        print("migrating a fresh database and seeding it ...", flush=True)
        call_command("migrate", verbosity=0, interactive=False)
        began = time.monotonic()
        key, counts = _seed()
        print(f"seeded in {time.monotonic() - began:.1f} s: {counts}", flush=True)
        queries = _queries_per_request(key)
        from django.db import connections

        connections.close_all()

        script = folder / "auth.lua"
        script.write_text(WRK_SCRIPT % {"key": key})
        port = _free_port()
        log = folder / "server.log"
        server = _start_server(env, port, args.workers, args.threads, log)
        base = f"http://127.0.0.1:{port}"
        results: list[Result] = []
        try:
            _wait_ready(base, key, server, log)
            for endpoint in ENDPOINTS:
                status, size = _get(base + endpoint, key)
                if status != 200:
                    raise SystemExit(f"{endpoint} answered {status}:\n{log.read_text()[-3000:]}")
                if args.warmup > 0:
                    _wrk(base + endpoint, script, args.connections, args.wrk_threads, args.warmup)
                stats = _wrk(
                    base + endpoint, script, args.connections, args.wrk_threads, args.seconds
                )
                errors = sum(
                    int(stats[k])
                    for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
                )
                p95 = stats["p95_us"] / 1000
                results.append(
                    Result(
                        endpoint=endpoint,
                        requests=int(stats["requests"]),
                        requests_per_second=stats["requests"] / (stats["duration_us"] / 1e6),
                        p50_ms=stats["p50_us"] / 1000,
                        p95_ms=p95,
                        p99_ms=stats["p99_us"] / 1000,
                        max_ms=stats["max_us"] / 1000,
                        errors=errors,
                        non_2xx=int(stats["non_2xx"]),
                        queries_per_request=queries[endpoint],
                        response_bytes=size,
                        ok=p95 < args.target_p95_ms and errors == 0 and stats["non_2xx"] == 0,
                    )
                )
        finally:
            _stop_server(server)

    header = (
        f"{'endpoint':<32} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'SQL/req':>7} {'bytes':>7}  target"
    )
    print()
    print(
        f"API load: {args.connections} connections, {args.seconds:g} s per endpoint, gunicorn "
        f"{args.workers} workers x {args.threads} threads, SQLite (WAL); "
        f"{counts['trades']:,} trades, {counts['open_positions']} open positions"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        verdict = "ok" if r.ok else "FAIL"
        print(
            f"{r.endpoint:<32} {r.requests_per_second:>8.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors + r.non_2xx:>6} {r.queries_per_request:>7} "
            f"{r.response_bytes:>7}  p95 < {args.target_p95_ms:g} ms: {verdict}"
        )
    failed = sum(not r.ok for r in results)
    print(f"\n{len(results) - failed}/{len(results)} targets met")

    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "setup": {
            "server": f"gunicorn dexproject.wsgi -w {args.workers} --threads {args.threads}",
            "load": f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.seconds:g}s",
            "warmup_seconds": args.warmup,
            "database": "sqlite (WAL), temporary file",
            "data": counts,
        },
        "target_p95_ms": args.target_p95_ms,
        "results": [asdict(r) for r in results],
        "failed": failed,
        "targets": [t.as_json() for r in results for t in _targets(r, args.target_p95_ms)],
    }
    print(f"Saved {report.save(document, 'api-load', args.results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
