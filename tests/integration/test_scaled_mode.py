"""The scaled deployment for real: PostgreSQL, Redis, Celery worker and beat, uvicorn workers.

Everything runs as separate processes, as in production: the test only talks to them over HTTP,
websockets and PostgreSQL. A bot started through the API runs on the Celery worker; its ticks
reach the websocket through channels-redis; a worker killed with SIGKILL is noticed by the
reaper (beat every 3 heartbeats) and its session is resumed on a new worker (or failed); two
simultaneous starts for one account give exactly one bot.

Needs TEST_POSTGRES_URL and TEST_REDIS_URL (CI starts both services, see .ci/services.sh).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, LiteralString, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
import pytest
import redis
from psycopg import sql
from websockets.asyncio.client import connect
from websockets.typing import Origin

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(ROOT / "manage.py")
API = "/paper-trading/api"
#: A 1 h replay bar every 0.1 s: about 10 ticks a second.
SPEED = "36000"
START_BODY: dict[str, Any] = {"prices": "replay", "speed": SPEED, "intel_level": 9}
ACTIVE = ("RUNNING", "PAUSED")
ENDED_EVENTS = {"stopped", "completed", "failed"}
#: How long the killed worker stays down: two reaper periods (3 heartbeats of 1 s) and a bit.
WORKER_DOWNTIME_SECONDS = 7
T = TypeVar("T")

SETUP_SCRIPT = """
import json
from django.contrib.auth.models import User
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
user = User.objects.create_user("integration-trader")
accounts = {n: str(create_account(user, n).account_id) for n in ("ws", "kill", "race")}
_, key = create_api_token(user, "integration test")
print("SETUP " + json.dumps({"key": key, "accounts": accounts}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _empty_redis_db(url: str) -> int:
    """A Redis database number (8-15) that holds nothing now, at random among those."""
    empty = []
    for number in range(8, 16):
        client = redis.Redis.from_url(_with_path(url, f"/{number}"))
        try:
            if not client.dbsize():
                empty.append(number)
        finally:
            client.close()
    if not empty:
        pytest.fail(f"no empty Redis database among 8-15 on {url}")
    return secrets.choice(empty)


def _gone(pid: int) -> bool:
    """The process is dead (a zombie whose parent died with it counts: it only waits to be
    reaped, by an init that may never do it in a container)."""
    try:
        status: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return True
    return bool(status == psutil.STATUS_ZOMBIE)


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float, on_fail: Callable[[], str]
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{on_fail()}")
        time.sleep(0.2)


class Service:
    """A subprocess in a process group of its own (so its children can be killed with it)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> set[int]:
        """The process and its descendants (a Celery worker's pool, uvicorn's workers)."""
        try:
            parent = psutil.Process(self.proc.pid)
            return {self.proc.pid, *(p.pid for p in parent.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def kill(self) -> None:
        """SIGKILL the whole process group, at once (a crash, an OOM kill, a lost machine)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 8) -> None:
        """Terminate politely, then kill what is left of the group."""
        if self.alive():
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


class Stack:
    """The deployment under test and the ways the tests reach it."""

    def __init__(self, tmp: Path, postgres_url: str, redis_url: str) -> None:
        self.tmp = tmp
        self.postgres_url = postgres_url
        tag = secrets.token_hex(4)
        self.db_name = f"dexpaper_it_{tag}"
        self.database_url = _with_path(postgres_url, f"/{self.db_name}")
        # An empty Redis database for Celery's queue (its key names are fixed), and prefixes of
        # our own for the channel layer and the price cache.
        self.redis_url = _with_path(redis_url, f"/{_empty_redis_db(redis_url)}")
        self.prefix = f"dexpaper-it-{tag}"
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RPC_URL_") and k not in {"PRICE_CACHE_DIR", "CELERY_BROKER_URL"}
        }
        env.update(
            DJANGO_SETTINGS_MODULE="dexproject.settings",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CHANNELS_PREFIX=self.prefix,
            PRICE_CACHE_KEY_PREFIX=self.prefix,
            CELERY_RESULT_BACKEND="",
            COINGECKO_API_URL="http://127.0.0.1:9/api/v3",
            HEARTBEAT_INTERVAL_SECONDS="1",
            HEARTBEAT_TIMEOUT_SECONDS="5",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self.services: dict[str, Service] = {}
        self.workers_started = 0
        self.key = ""
        self.accounts: dict[str, str] = {}

    # -- processes -------------------------------------------------------------------------

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, MANAGE, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, args: list[str]) -> Service:
        service = Service(name, args, self.env, self.tmp / f"{name}.log")
        self.services[name] = service
        return service

    def start_worker(self) -> Service:
        self.workers_started += 1
        name = f"worker{self.workers_started}"
        worker = self.start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dexproject",
                "worker",
                "-Q",
                "paper_trading,paper_trading_jobs",
                "--concurrency",
                "2",
                "--loglevel",
                "info",
                "--hostname",
                f"{name}-{self.prefix}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self.services["worker"] = worker
        wait_for(
            f"Celery {name} to be ready",
            lambda: worker.alive() and " ready." in worker.log.read_text(errors="replace"),
            60,
            self.logs,
        )
        return worker

    @property
    def worker(self) -> Service:
        return self.services["worker"]

    def logs(self) -> str:
        seen: set[int] = set()
        parts = []
        for name, service in self.services.items():
            if id(service) in seen:
                continue
            seen.add(id(service))
            state = "running" if service.alive() else f"exited {service.proc.returncode}"
            parts.append(f"--- {name} ({state}) {service.log}\n{_tail(service.log)}")
        return "\n".join(parts)

    def close(self) -> None:
        seen: set[int] = set()
        for service in reversed(list(self.services.values())):
            if id(service) not in seen:
                seen.add(id(service))
                service.stop()
        self._drop_database()
        self._clean_redis()

    def _drop_database(self) -> None:
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.db_name,),
            )
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.db_name)
                )
            )

    def _clean_redis(self) -> None:
        """Our keys: prefixed ones, and Celery's (queue, bindings, a killed worker's unacked
        messages) in the database that was empty when we took it."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = [
                key
                for pattern in (f"*{self.prefix}*", "_kombu.*", "unacked*", "paper_trading*")
                for key in client.scan_iter(match=pattern, count=1000)
            ]
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    # -- the database ------------------------------------------------------------------------

    def create_database(self) -> None:
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))

    def query(self, statement: LiteralString, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()

    def session_row(self, session_id: str) -> dict[str, Any]:
        with (
            psycopg.connect(self.database_url, autocommit=True) as conn,
            conn.cursor(row_factory=psycopg.rows.dict_row) as cur,
        ):
            row = cur.execute(
                "SELECT * FROM paper_trading_papertradingsession WHERE session_id = %s",
                (session_id,),
            ).fetchone()
        assert row is not None, f"session {session_id} is not in PostgreSQL"
        return row

    # -- the API -----------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.key}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=30)

    def status(self, account: str) -> dict[str, Any]:
        with self.client() as http:
            response = http.get(f"{API}/bot/status/", params={"account": self.accounts[account]})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def session(self, account: str, session_id: str) -> dict[str, Any]:
        for row in self.status(account)["recent"]:
            if row["session_id"] == session_id:
                found: dict[str, Any] = row
                return found
        pytest.fail(f"session {session_id} is not in GET bot/status/ for account {account}")

    def start_bot(self, account: str) -> str:
        with self.client() as http:
            response = http.post(
                f"{API}/bot/start/", json={**START_BODY, "account": self.accounts[account]}
            )
        assert response.status_code == 201, f"start: {response.status_code} {response.text}"
        session_id: str = response.json()["session_id"]
        return session_id

    def stop_bot(self, account: str) -> None:
        with self.client() as http:
            response = http.post(
                f"{API}/bot/stop/", json={"account": self.accounts[account], "reason": "test"}
            )
        assert response.status_code == 200, f"stop: {response.status_code} {response.text}"

    def wait_until_ended(self, account: str, session_id: str, timeout: float = 30) -> str:
        def ended() -> str | None:
            status = str(self.session(account, session_id)["status"])
            return None if status in ACTIVE else status

        return wait_for(f"session {session_id} to end", ended, timeout, self.logs)

    def verify_ledger(self) -> None:
        result = self.manage("verify_paper_trading", "--check-all")
        assert result.returncode == 0, (
            f"verify_paper_trading --check-all failed:\n{result.stdout}\n{result.stderr}"
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    postgres_url = os.environ.get("TEST_POSTGRES_URL", "")
    redis_url = os.environ.get("TEST_REDIS_URL", "")
    if not postgres_url or not redis_url:
        pytest.skip("TEST_POSTGRES_URL and TEST_REDIS_URL are not set (CI starts both services)")
    started = time.monotonic()
    s = Stack(tmp_path_factory.mktemp("scaled"), postgres_url, redis_url)
    s.create_database()
    try:
        migrate = s.manage("migrate", "--noinput", "-v0")
        assert migrate.returncode == 0, f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}"
        setup = s.manage("shell", "-c", SETUP_SCRIPT)
        lines = [x for x in setup.stdout.splitlines() if x.startswith("SETUP ")]
        assert setup.returncode == 0, f"setup failed:\n{setup.stdout}\n{setup.stderr}"
        assert lines, f"setup printed no SETUP line:\n{setup.stdout}"
        created = json.loads(lines[-1].removeprefix("SETUP "))
        s.key, s.accounts = created["key"], created["accounts"]

        s.start_worker()
        schedule = str(s.tmp / "beat-schedule")
        s.start(
            "beat", [sys.executable, "-m", "celery", "-A", "dexproject", "beat", "-s", schedule]
        )
        server = s.start(
            "uvicorn",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "dexproject.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(s.port),
                "--workers",
                "2",
            ],
        )

        def serving() -> bool:
            if not server.alive():
                pytest.fail(f"uvicorn exited\n{s.logs()}")
            try:
                s.status("ws")
            except httpx.TransportError:
                return False
            return True

        wait_for("uvicorn to serve the API", serving, 60, s.logs)
        print(f"\n[scaled stack up in {time.monotonic() - started:.1f}s: {s.tmp}]")
        yield s
    finally:
        s.close()


# -- 1. a bot on the worker, watched over a websocket -------------------------------------------


async def _watch_bot(stack: Stack, timeout: float) -> tuple[str, list[dict[str, Any]]]:
    """Connect, start a bot, read until every kind of message came, stop it, read its end."""
    account = stack.accounts["ws"]
    ws_url = f"ws://127.0.0.1:{stack.port}/ws/paper-trading/{account}/?token={stack.key}"
    wanted = {"thought_log_created", "portfolio_update", "trade_executed"}
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout

    def summary() -> str:
        kinds = sorted({str(x["type"]) for x in received})
        return f"{len(received)} messages of types {kinds}\n{stack.logs()}"

    async def next_message(ws: Any) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        try:
            raw = await asyncio.wait_for(ws.recv(), max(remaining, 0.01))
        except TimeoutError:
            pytest.fail(f"websocket: nothing more within {timeout:.0f}s; got {summary()}")
        message: dict[str, Any] = json.loads(raw)
        assert set(message) == {"type", "data", "timestamp"}, message
        received.append(message)
        return message

    origin = Origin(f"http://127.0.0.1:{stack.port}")
    async with (
        connect(ws_url, origin=origin, open_timeout=15) as ws,
        httpx.AsyncClient(base_url=stack.base_url, headers=stack.headers, timeout=30) as http,
    ):
        await ws.send(json.dumps({"action": "ping"}))
        assert (await next_message(ws))["type"] == "pong"
        response = await http.post(f"{API}/bot/start/", json={**START_BODY, "account": account})
        assert response.status_code == 201, f"start: {response.status_code} {response.text}"
        session_id = str(response.json()["session_id"])

        seen: set[str] = set()
        started = False
        while not (started and wanted <= seen):
            message = await next_message(ws)
            seen.add(message["type"])
            data = message["data"]
            if message["type"] == "bot_status" and data["session"]["session_id"] == session_id:
                assert data["event"] == "started", f"first bot_status is {data['event']!r}"
                started = True
            if message["type"] == "portfolio_update":
                assert data["session"] == session_id, data

        response = await http.post(f"{API}/bot/stop/", json={"account": account})
        assert response.status_code == 200, f"stop: {response.status_code} {response.text}"
        while True:
            message = await next_message(ws)
            data = message["data"]
            if message["type"] == "bot_status" and data["event"] in ENDED_EVENTS:
                assert data["event"] == "stopped", f"bot ended with {data['event']!r}"
                assert data["running"] is False
                assert data["session"]["status"] == "STOPPED", data["session"]
                break
    return session_id, received


def test_bot_on_celery_worker_streams_to_websocket(stack: Stack) -> None:
    started = time.monotonic()
    session_id, received = asyncio.run(_watch_bot(stack, timeout=60))
    kinds = [m["type"] for m in received]

    assert stack.wait_until_ended("ws", session_id) == "STOPPED"
    session = stack.session("ws", session_id)
    assert session["stop_requested"] is True
    assert session["total_ticks"] > 0, session
    assert session["total_trades"] > 0, session
    # The websocket saw the ticks the worker made: one portfolio update per tick (so far).
    assert 0 < kinds.count("portfolio_update") <= session["total_ticks"]

    row = stack.session_row(session_id)
    assert row["status"] == "STOPPED"
    assert row["runner"] == "celery"
    # Run by the worker's pool, not by the web server that took the request.
    assert row["worker_pid"] not in stack.services["uvicorn"].pids()
    assert row["worker_pid"] in stack.worker.pids(), (row["worker_pid"], stack.worker.pids())
    [(trades,)] = stack.query(
        "SELECT COUNT(*) FROM paper_trading_papertrade WHERE session_id = %s", session_id
    )
    assert trades == session["total_trades"] > 0
    [(thoughts,)] = stack.query(
        "SELECT COUNT(*) FROM paper_trading_paperaithoughtlog WHERE session_id = %s", session_id
    )
    assert thoughts > 0
    assert kinds.count("thought_log_created") <= thoughts

    stack.verify_ledger()
    print(f"[websocket test: {len(received)} messages, {time.monotonic() - started:.1f}s]")


# -- 2. a worker killed mid-run -----------------------------------------------------------------


def test_killed_worker_is_reaped_and_resumed(stack: Stack) -> None:
    started = time.monotonic()
    session_id = stack.start_bot("kill")
    old_worker = stack.worker

    def ticking_on_worker() -> dict[str, Any] | None:
        row = stack.session_row(session_id)
        running = row["worker_pid"] in old_worker.pids() and row["total_ticks"] >= 10
        return row if running else None

    before = wait_for("the bot to tick on the worker", ticking_on_worker, 30, stack.logs)
    old_worker.kill()
    killed_at = time.monotonic()
    wait_for("the pool process to die", lambda: _gone(before["worker_pid"]), 10, stack.logs)
    # No worker for a few reaper periods (a restart takes a while): beat queues reaper runs
    # that nobody takes, and nothing can close the session meanwhile.
    time.sleep(WORKER_DOWNTIME_SECONDS)
    assert stack.session("kill", session_id)["status"] == "RUNNING"

    stack.start_worker()
    new_worker = stack.worker

    def resumed_or_failed() -> dict[str, Any] | None:
        row = stack.session_row(session_id)
        if row["status"] == "FAILED":
            return row
        on_new = row["worker_pid"] in new_worker.pids() and row["resume_count"] >= 1
        return row if on_new and row["total_ticks"] > before["total_ticks"] + 10 else None

    after = wait_for(
        "the reaper to resume (or fail) the killed worker's session",
        resumed_or_failed,
        45,
        stack.logs,
    )
    print(
        f"[after the kill: {after['status']} in {time.monotonic() - killed_at:.1f}s, "
        f"resume_count={after['resume_count']}, ticks {before['total_ticks']} -> "
        f"{after['total_ticks']}]"
    )
    if after["status"] == "FAILED":
        assert after["resume_count"] >= int(stack.env.get("MAX_BOT_RESUMES", "3")), after
    else:
        # One kill, one resume: a second would run the session twice at once.
        assert after["resume_count"] == 1, after
        via_api = stack.session("kill", session_id)
        assert via_api["status"] == "RUNNING"
        assert via_api["total_ticks"] > before["total_ticks"]
        stack.stop_bot("kill")
        assert stack.wait_until_ended("kill", session_id) == "STOPPED"

    # One runner at a time: two bots on one session would make every trade twice.
    doubles = stack.query(
        "SELECT token_symbol, side, created_at, COUNT(*) FROM paper_trading_papertrade "
        "WHERE session_id = %s GROUP BY token_symbol, side, created_at HAVING COUNT(*) > 1",
        session_id,
    )
    assert doubles == [], f"trades made twice (two runners on one session?): {doubles}"

    stack.verify_ledger()
    print(f"[kill test: {time.monotonic() - started:.1f}s]")


# -- 3. two starts at once ----------------------------------------------------------------------


def test_concurrent_starts_give_one_bot(stack: Stack) -> None:
    account = stack.accounts["race"]
    barrier = threading.Barrier(2)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def start() -> None:
        with stack.client() as http:
            barrier.wait(10)
            response = http.post(f"{API}/bot/start/", json={**START_BODY, "account": account})
        with lock:
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "a start request did not return in 60s"
    codes = sorted(code for code, _ in results)
    assert codes == [201, 409], f"expected one 201 and one 409, got {results}"
    session_id = next(str(body["session_id"]) for code, body in results if code == 201)
    conflict = next(body for code, body in results if code == 409)
    assert "already running" in json.dumps(conflict), conflict

    active = stack.query(
        "SELECT session_id::text FROM paper_trading_papertradingsession "
        "WHERE account_id = %s AND status IN ('RUNNING', 'PAUSED')",
        account,
    )
    assert active == [(session_id,)], f"active sessions in PostgreSQL: {active}"
    [(total,)] = stack.query(
        "SELECT COUNT(*) FROM paper_trading_papertradingsession WHERE account_id = %s", account
    )
    assert total == 1, "the refused start left a session behind"

    stack.stop_bot("race")
    assert stack.wait_until_ended("race", session_id) == "STOPPED"
    stack.verify_ledger()
