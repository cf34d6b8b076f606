"""The real server (`manage.py run_local`) as a subprocess, and Debian's Chromium to drive it.

Shared by the browser tests and `bench.dashboard_render`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MANAGE = str(ROOT / "manage.py")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class LocalServer:
    """`run_local --no-bot` on a temporary SQLite database, restartable on the same port."""

    def __init__(self, folder: Path, extra_env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db = folder / "browser.sqlite3"
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{self.db}",
            "DEMO_CREDENTIALS_FILE": str(folder / "demo-credentials"),
            "PRICE_CACHE_DIR": str(folder / "price-cache"),
            "COINGECKO_API_URL": os.environ.get("COINGECKO_API_URL", "http://127.0.0.1:9/api/v3"),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "CELERY_BROKER_URL"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[str] | None = None
        self.log = folder / "server.log"

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, MANAGE, "migrate", "--noinput", "-v0"],
            env=self.env,
            timeout=180,
            check=True,
        )

    def start(self, timeout: float = 60) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, MANAGE, "run_local", "--port", str(self.port), "--no-bot"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("the server did not start listening in time")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    @property
    def password(self) -> str:
        text = (self.folder / "demo-credentials").read_text()
        return next(
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("pass")
        )
