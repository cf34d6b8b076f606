"""The commands as a user runs them: real processes, real signals, a real web server."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.fakes.coingecko import FakeCoinGecko, fake_coingecko  # noqa: F401
from tests.paper_trading.live_support import price_all

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")

pytestmark = pytest.mark.own_database


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    db = tmp_path / "e2e.sqlite3"
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "DEMO_CREDENTIALS_FILE": str(tmp_path / "demo-credentials"),
        "PYTHONUNBUFFERED": "1",
    }
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    migrate = subprocess.run(
        [sys.executable, MANAGE, "migrate", "--noinput", "-v0"], env=environment, timeout=120
    )
    assert migrate.returncode == 0
    return environment


def _db(env: dict[str, str]) -> str:
    return env["DATABASE_URL"].removeprefix("sqlite:///")


def _count(env: dict[str, str], sql: str) -> int:
    with sqlite3.connect(_db(env), timeout=30) as conn:
        return int(conn.execute(sql).fetchone()[0])


def _wait(predicate: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_tick_and_prints_a_summary(
    env: dict[str, str], signum: signal.Signals
) -> None:
    bot = subprocess.Popen(
        [sys.executable, MANAGE, "run_paper_bot", "--speed", "72000", "-v0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ticks = "SELECT COALESCE(MAX(total_ticks), 0) FROM paper_trading_papertradingsession"
    _wait(lambda: _count(env, ticks) >= 3)
    bot.send_signal(signum)
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err
    assert "REPLAY: recorded real market prices" in out
    assert re.search(r"Session \S+ STOPPED \(replay\), \d+ ticks", out), out
    for line in ("trades ", "win rate ", "swap fees ", "gas ", "account value "):
        assert line in out
    status = "SELECT COUNT(*) FROM paper_trading_papertradingsession WHERE status = 'STOPPED'"
    assert _count(env, status) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_local_serves_the_admin_and_runs_a_bot(env: dict[str, str]) -> None:
    port = _free_port()
    product = subprocess.Popen(
        [sys.executable, MANAGE, "run_local", "--port", str(port), "--speed", "36000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert product.stdout is not None
    password = ""
    said_replay = False
    for line in product.stdout:
        said_replay = said_replay or "REPLAY: live prices are unavailable" in line
        match = re.search(r"Sign in as 'demo' with password: (\S+)", line)
        if match:
            password = match.group(1)
        if "Ctrl+C stops" in line:
            break
    assert password, "the demo password was not printed"
    assert said_replay, "make run did not say it fell back to replay"
    assert Path(env["DEMO_CREDENTIALS_FILE"]).read_text().endswith(f"password: {password}\n")

    trades = "SELECT COUNT(*) FROM paper_trading_papertrade"
    _wait(lambda: _count(env, trades) > 0)

    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = browser.open(f"{base}/admin/login/", timeout=10)
    assert login.status == 200
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {
            "username": "demo",
            "password": password,
            "csrfmiddlewaretoken": csrf,
            "next": "/admin/paper_trading/papertrade/",
        }
    ).encode()
    request = urllib.request.Request(
        f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"}
    )
    page = browser.open(request, timeout=10)
    html = page.read().decode()
    assert page.status == 200
    assert "Swap fee usd" in html
    assert "Gas cost usd" in html

    product.send_signal(signal.SIGINT)
    rest, _ = product.communicate(timeout=60)
    assert product.returncode == 0
    assert "Stopped the web server and the bot." in rest
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the web server is still running"


def test_live_bot_pauses_when_coingecko_stops_and_resumes(
    env: dict[str, str],
    fake_coingecko: FakeCoinGecko,  # noqa: F811
) -> None:
    price_all(fake_coingecko)
    env = {
        **env,
        "COINGECKO_API_URL": fake_coingecko.url,
        "COINGECKO_TIMEOUT_SECONDS": "0.5",
        "PRICE_CACHE_TTL_SECONDS": "0",
        "PRICE_BACKOFF_BASE_SECONDS": "0.1",
        "PRICE_BACKOFF_MAX_SECONDS": "0.2",
    }
    bot = subprocess.Popen(
        [
            sys.executable,
            MANAGE,
            "run_paper_bot",
            "--prices",
            "live",
            "--tick-interval",
            "1",
            "--intel",
            "10",
            "-v0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    session = (
        "SELECT status || '|' || status_reason || '|' || total_ticks FROM "
        "paper_trading_papertradingsession"
    )

    def state() -> list[str]:
        with sqlite3.connect(_db(env), timeout=30) as conn:
            row = conn.execute(session).fetchone()
        return str(row[0]).split("|") if row else ["", "", "0"]

    _wait(lambda: int(state()[2]) >= 2)
    assert state()[0] == "RUNNING"
    fake_coingecko.down()
    _wait(lambda: state()[0] == "PAUSED")
    assert "cannot reach CoinGecko" in state()[1]
    fake_coingecko.up()
    _wait(lambda: state()[0] == "RUNNING")
    paused_ticks = int(state()[2])
    _wait(lambda: int(state()[2]) >= paused_ticks + 2)
    bot.send_signal(signal.SIGTERM)
    out, err = bot.communicate(timeout=60)
    assert bot.returncode == 0, err
    assert "prices LIVE" in out
    observed = "SELECT COUNT(*) FROM paper_trading_pricehistory WHERE source = 'coingecko'"
    assert _count(env, observed) > 0
    blocked = (
        "SELECT COUNT(*) FROM paper_trading_paperaithoughtlog WHERE decision_type = 'BLOCKED' "
        "AND reasoning LIKE 'price feed unavailable: cannot reach CoinGecko%'"
    )
    assert _count(env, blocked) >= 1
