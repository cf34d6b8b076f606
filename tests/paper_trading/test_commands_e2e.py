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

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


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
    for line in product.stdout:
        match = re.search(r"Sign in as 'demo' with password: (\S+)", line)
        if match:
            password = match.group(1)
        if "Ctrl+C stops" in line:
            break
    assert password, "the demo password was not printed"
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
