"""`python -m bench.ws_fanout`: one account's live updates fanned out to 500 websockets.

The real ASGI server (uvicorn, one process, `dexproject.asgi`) serves a fresh SQLite database
(a temporary file) with one user, one account and an API token. This process opens 500
websockets to `/ws/paper-trading/<account>/?token=<key>&frames=batch` (one frame per tick, as
the dashboard asks; `--frames message` for one per message), with asyncio + `websockets` and an
Origin header as a browser sends it; each socket is checked with a ping/pong. It records when
every frame arrives. Then a bot trades on the account, one replay tick every 2 s (1 h bars at
1800x):

* memory: the default one-machine mode (in-memory channel layer). The layer only delivers
  inside the server process, so the bot is started through the real API
  (`POST /paper-trading/api/bot/start/`) and runs as a thread of the server, as in production;
* redis: REDIS_URL set, so channels-redis carries the messages. The bot runs in its own process
  (`manage.py run_paper_bot`), as a Celery worker would, and publishes through Redis.

Delivery latency of a message = the time a client received it - the message's `timestamp`
(set by the server when it built the message; same machine, same clock). Per tick: the
latencies of all its messages at all clients (p50/p95/p99/max) and how many were delivered
out of messages x clients; reported as medians over the ticks. Target: p95 < 100 ms, with every
message delivered to every client.

Prints a table, writes bench/results/ws-fanout-<stamp>.json and ws-fanout-latest.json, and
exits 1 if a target fails. The Redis row needs `--redis URL` (or BENCH_REDIS_URL); without it
that row is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from bench import report
from bench.report import CONTEXT, Target
from paper_trading.management.tables import TARGET_HEADER, text_table

ROOT = Path(__file__).resolve().parent.parent
TARGET_P95_MS = 100.0
#: 1 h replay bars at 1800x: one tick every 2 s.
SPEED = 1800
#: Messages that belong to a tick (bot_status and session-end alerts do not).
BEFORE_PORTFOLIO = {"thought_log_created", "trade_executed", "position_updated"}
AFTER_PORTFOLIO = {"performance_update", "alert"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Client:
    ws: ClientConnection
    frames: list[tuple[float, str]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class ModeResult:
    mode: str
    clients: int
    connected: int
    ticks: int
    messages_per_tick: float
    delivered_per_tick: float
    expected_per_tick: float
    delivered_fraction: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    worst_tick_p95_ms: float
    per_tick: list[dict[str, Any]]
    ok: bool
    #: CPU seconds the server and this (client) process used while the bot ran.
    cpu: dict[str, float] = field(default_factory=dict)


# -- set-up ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        limit = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))


def _environment(folder: Path, redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dexproject.settings",
        DATABASE_URL=f"sqlite:///{folder / 'ws-fanout.sqlite3'}",
        DEBUG="0",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECRET_KEY="bench-only-shared-by-the-server-and-the-bot",
        PRICE_CACHE_DIR=str(folder / "prices"),
        COINGECKO_API_URL="http://127.0.0.1:9/api/v3",
        REDIS_URL=redis_url,
        CHANNELS_PREFIX=f"bench-ws-{uuid.uuid4().hex[:8]}",
        PRICE_CACHE_KEY_PREFIX=f"bench-ws-{uuid.uuid4().hex[:8]}",
        # Bots stay in the server (embedded) or in their own process; never a Celery queue.
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def _seed() -> tuple[str, str]:
    """A user, an account and an API token; returns (account id, key)."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from paper_trading.services.accounts import create_account
    from paper_trading.services.auth import create_api_token

    call_command("migrate", verbosity=0, interactive=False)
    user = User.objects.create_user("bench", "bench@localhost", uuid.uuid4().hex)
    account = create_account(user, "Fan-out")
    _, key = create_api_token(user, "bench")
    return str(account.account_id), key


def _request(url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if body is not None else "GET",
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "dexproject.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--log-level",
        "warning",
        # As the Procfile and `make run` serve it.
        "--ws-per-message-deflate",
        "false",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, account: str, key: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited early")
        try:
            if _request(f"{base}/paper-trading/api/bot/status/?account={account}", key)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer within 60 s")


# -- clients --------------------------------------------------------------------------------


async def _open(
    url: str, origin: str, compression: str | None, gate: asyncio.Semaphore
) -> Client | None:
    async with gate:
        try:
            ws = await connect(
                url,
                origin=Origin(origin),
                compression=compression,
                proxy=None,
                ping_interval=None,
                max_size=None,
            )
            await ws.send(json.dumps({"action": "ping"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except Exception:  # refused, closed, timed out: not connected
            return None
        if reply.get("type") != "pong":
            await ws.close()
            return None
        return Client(ws)


async def _read(client: Client) -> None:
    frames = client.frames
    try:
        async for raw in client.ws:
            frames.append((time.time(), raw if isinstance(raw, str) else raw.decode()))
    except Exception:
        return


# -- triggers -------------------------------------------------------------------------------


async def _bot_in_server(base: str, account: str, key: str, ticks: int) -> None:
    """memory: a bot started through the API runs as a thread of the server."""
    runtime_minutes = (ticks - 1) * 3600 / SPEED / 60 + 0.01
    status, body = await asyncio.to_thread(
        _request,
        f"{base}/paper-trading/api/bot/start/",
        key,
        {
            "account": account,
            "prices": "replay",
            "chain": "base",
            "speed": SPEED,
            "runtime_minutes": max(0.1, runtime_minutes),
        },
    )
    if status != 201:
        raise RuntimeError(f"bot/start answered {status}: {body}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        status, body = await asyncio.to_thread(
            _request, f"{base}/paper-trading/api/bot/status/?account={account}", key
        )
        if status == 200 and not body["running"]:
            return
    raise RuntimeError("the bot did not finish within 120 s")


async def _bot_process(env: dict[str, str], account: str, ticks: int, log: Path) -> None:
    """redis: the bot runs in its own process and publishes through Redis."""
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "manage.py",
            "run_paper_bot",
            "--account",
            account,
            "--prices",
            "replay",
            "--speed",
            str(SPEED),
            "--max-ticks",
            str(ticks),
            "--new-session",
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        code = await asyncio.wait_for(process.wait(), 180)
    if code != 0:
        raise RuntimeError(f"run_paper_bot exited with {code}; see {log}")


# -- analysis -------------------------------------------------------------------------------


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _ticks_of(frames: list[tuple[float, str]]) -> dict[int, list[tuple[str, float]]]:
    """One client's frames by tick number: (message key, latency ms). A tick's messages end
    with its `portfolio_update` (which carries the tick number); metrics and alerts follow it."""
    out: dict[int, list[tuple[str, float]]] = defaultdict(list)
    pending: list[tuple[str, float]] = []
    current: int | None = None
    messages = []
    for received, raw in frames:
        decoded = json.loads(raw)
        messages += [(received, x) for x in (decoded if isinstance(decoded, list) else [decoded])]
    for received, message in messages:
        kind = message.get("type")
        if kind == "alert" and message["data"].get("kind") == "session_ended":
            continue
        item = (f"{kind}@{message['timestamp']}", (received - _epoch(message["timestamp"])) * 1000)
        if kind == "portfolio_update":
            current = int(message["data"]["tick_number"])
            out[current] += [*pending, item]
            pending = []
        elif kind in AFTER_PORTFOLIO and not pending and current is not None:
            out[current].append(item)
        elif kind in BEFORE_PORTFOLIO or kind in AFTER_PORTFOLIO:
            pending.append(item)
    return out


def _analyse(mode: str, wanted: int, clients: list[Client], target: float) -> ModeResult:
    latencies: dict[int, list[float]] = defaultdict(list)
    keys: dict[int, set[str]] = defaultdict(set)
    for client in clients:
        for tick, items in _ticks_of(client.frames).items():
            latencies[tick] += [ms for _, ms in items]
            keys[tick].update(k for k, _ in items)
    per_tick: list[dict[str, Any]] = []
    for tick in sorted(latencies):
        values = latencies[tick]
        expected = len(keys[tick]) * len(clients)
        per_tick.append(
            {
                "tick": tick,
                "messages": len(keys[tick]),
                "delivered": len(values),
                "expected": expected,
                "p50_ms": _percentile(values, 50),
                "p95_ms": _percentile(values, 95),
                "p99_ms": _percentile(values, 99),
                "max_ms": max(values),
            }
        )
    if not per_tick:
        raise RuntimeError(f"{mode}: no tick reached the clients")

    def median(name: str) -> float:
        return float(statistics.median(t[name] for t in per_tick))

    delivered = sum(t["delivered"] for t in per_tick)
    expected = sum(t["expected"] for t in per_tick)
    p95 = median("p95_ms")
    complete = delivered == expected and len(clients) == wanted
    return ModeResult(
        mode=mode,
        clients=wanted,
        connected=len(clients),
        ticks=len(per_tick),
        messages_per_tick=median("messages"),
        delivered_per_tick=median("delivered"),
        expected_per_tick=median("expected"),
        delivered_fraction=delivered / expected if expected else 0.0,
        p50_ms=median("p50_ms"),
        p95_ms=p95,
        p99_ms=median("p99_ms"),
        max_ms=median("max_ms"),
        worst_tick_p95_ms=max(t["p95_ms"] for t in per_tick),
        per_tick=per_tick,
        ok=complete and p95 < target,
    )


# -- one mode -------------------------------------------------------------------------------


async def _run_mode(
    mode: str, env: dict[str, str], account: str, key: str, args: argparse.Namespace, folder: Path
) -> ModeResult:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / f"{mode}.log"
    server = _start_server(env, port, log)
    clients: list[Client] = []
    try:
        await asyncio.to_thread(_wait_ready, base, account, key, server)
        url = f"ws://127.0.0.1:{port}/ws/paper-trading/{account}/?token={key}"
        if args.frames == "batch":
            url += "&frames=batch"
        gate = asyncio.Semaphore(50)
        began = time.monotonic()
        compression = None if args.compression == "none" else args.compression
        opened = await asyncio.gather(
            *(_open(url, base, compression, gate) for _ in range(args.clients))
        )
        clients = [c for c in opened if c is not None]
        print(
            f"  {len(clients)}/{args.clients} websockets open in {time.monotonic() - began:.1f} s",
            flush=True,
        )
        for client in clients:
            client.task = asyncio.create_task(_read(client))
        cpu_before = (_cpu_seconds(psutil.Process(server.pid)), _cpu_seconds(psutil.Process()))
        trigger_began = time.monotonic()
        if mode == "memory":
            await _bot_in_server(base, account, key, args.ticks)
        else:
            await _bot_process(env, account, args.ticks, log)
        await asyncio.sleep(args.drain)
        wall = time.monotonic() - trigger_began
        cpu = {
            "wall_seconds": wall,
            "server_cpu_seconds": _cpu_seconds(psutil.Process(server.pid)) - cpu_before[0],
            "clients_cpu_seconds": _cpu_seconds(psutil.Process()) - cpu_before[1],
            # A reader that ended before the benchmark closed its socket: the server dropped it.
            "sockets_closed_early": sum(c.task is not None and c.task.done() for c in clients),
        }
    except RuntimeError as exc:
        raise SystemExit(f"{mode}: {exc}\n{log.read_text()[-3000:]}") from None
    finally:
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
        for c in clients:
            if c.task is not None:
                c.task.cancel()
        await asyncio.to_thread(_stop, server)
    result = _analyse(mode, args.clients, clients, args.target_p95_ms)
    result.cpu = cpu
    return result


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _prepare(folder: Path) -> tuple[dict[str, str], str, str]:
    """The database every mode shares, seeded here (before any event loop runs)."""
    env = _environment(folder, "")
    os.environ.update(env)
    import django

    django.setup()
    account, key = _seed()
    from django.db import connections

    connections.close_all()
    return env, account, key


async def _main_async(
    args: argparse.Namespace, folder: Path, env: dict[str, str], account: str, key: str
) -> list[ModeResult]:
    results = []
    for mode in args.modes:
        if mode == "redis" and not args.redis:
            print("redis: skipped (no --redis URL / BENCH_REDIS_URL)", flush=True)
            continue
        print(f"{mode}: {args.clients} clients, {args.ticks} ticks ...", flush=True)
        mode_env = _environment(folder, args.redis if mode == "redis" else "")
        mode_env["DATABASE_URL"] = env["DATABASE_URL"]
        results.append(await _run_mode(mode, mode_env, account, key, args, folder))
    return results


def _targets(r: ModeResult, p95_ms: float) -> list[Target]:
    """One mode's verdict rows, as `make bench` shows them."""
    return [
        Target(f"{r.mode}.clients_connected", r.connected, "min", r.clients),
        Target(f"{r.mode}.delivered_fraction", r.delivered_fraction, "min", 1),
        Target(f"{r.mode}.latency_p95_ms", r.p95_ms, "max", p95_ms, "ms"),
        Target(f"{r.mode}.latency_p99_ms", r.p99_ms, CONTEXT, unit="ms"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=7, help="bot ticks per mode (2 s apart)")
    parser.add_argument("--drain", type=float, default=2.0, help="seconds to wait after the bot")
    parser.add_argument(
        "--modes", type=lambda v: v.split(","), default=["memory", "redis"], help="memory,redis"
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="Redis for the channels-redis row (e.g. redis://127.0.0.1:6379/5); empty: skip",
    )
    parser.add_argument(
        "--compression",
        choices=["deflate", "none"],
        default="deflate",
        help="permessage-deflate, as browsers negotiate it (default), or none",
    )
    parser.add_argument(
        "--frames",
        choices=["batch", "message"],
        default="batch",
        help="one frame per tick (?frames=batch, as the dashboard asks) or one per message",
    )
    parser.add_argument("--target-p95-ms", type=float, default=TARGET_P95_MS)
    report.add_results_option(parser)
    args = parser.parse_args()
    _raise_fd_limit(2 * args.clients + 256)  # inherited by the server it starts

    with tempfile.TemporaryDirectory(prefix="dexpaper-ws-fanout-") as tmp:
        folder = Path(tmp)
        env, account, key = _prepare(folder)
        work = _main_async(args, folder, env, account, key)
        try:
            import uvloop
        except ImportError:
            results = asyncio.run(work)
        else:
            results = uvloop.run(work)

    rows: list[tuple[str, str, str, str]] = []
    for r in results:
        verdict = "pass" if r.ok else "FAIL"
        rows += [
            (f"{r.mode}.clients_connected", f"{r.connected}", f"= {r.clients}", ""),
            (f"{r.mode}.ticks_measured", f"{r.ticks}", "", ""),
            (f"{r.mode}.messages_per_tick", f"{r.messages_per_tick:g}", "", ""),
            (
                f"{r.mode}.delivered_per_tick",
                f"{r.delivered_per_tick:,.0f}",
                f"= {r.expected_per_tick:,.0f}",
                "pass" if r.delivered_fraction == 1 and r.connected == r.clients else "FAIL",
            ),
            (f"{r.mode}.latency_p50_ms", f"{r.p50_ms:.1f}", "", ""),
            (
                f"{r.mode}.latency_p95_ms",
                f"{r.p95_ms:.1f}",
                f"< {args.target_p95_ms:g} ms",
                verdict,
            ),
            (f"{r.mode}.latency_p99_ms", f"{r.p99_ms:.1f}", "", ""),
            (f"{r.mode}.latency_max_ms", f"{r.max_ms:.1f}", "", ""),
            (
                f"{r.mode}.server_cpu_ms_per_tick",
                f"{r.cpu['server_cpu_seconds'] * 1000 / r.ticks:,.0f}",
                "(context)",
                "",
            ),
        ]
    print()
    print(
        f"WebSocket fan-out: one account, {args.clients} sockets, uvicorn (1 process), "
        f"{args.frames} frames, medians over the ticks"
    )
    print("\n".join(text_table(TARGET_HEADER, rows)))
    failed = sum(not r.ok for r in results)

    document = {
        "created_at": report.stamp(),
        "machine": report.machine(),
        "setup": {
            "server": "uvicorn dexproject.asgi:application (one process, uvloop, websockets)",
            "clients": f"{args.clients} websockets in one asyncio process",
            "compression": args.compression,
            "frames": args.frames,
            "ticks": args.ticks,
            "tick_gap_seconds": 3600 / SPEED,
            "database": "sqlite (WAL), temporary file",
        },
        "target_p95_ms": args.target_p95_ms,
        "results": [r.__dict__ for r in results],
        "targets": [t.as_json() for r in results for t in _targets(r, args.target_p95_ms)],
        "failed": failed,
    }
    print(f"\nSaved {report.save(document, 'ws-fanout', args.results)}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    raise SystemExit(main())
