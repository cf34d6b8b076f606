"""`make run`: the whole product on one machine, no services: web server plus one bot."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from paper_trading.engine.chains import get_chain
from paper_trading.engine.loop import RunOutcome
from paper_trading.services.accounts import reset_account
from paper_trading.services.bot import (
    BotSettings,
    ReplayExhaustedError,
    build_loop,
    finish_session,
    resumable_price_source,
    session_summary,
    start_session,
)
from paper_trading.services.demo import DEMO_ACCOUNT, ensure_demo_user, get_or_create_account
from paper_trading.services.prices import SourceChoice, choose_price_source


class Command(BaseCommand):
    help = "Start the web server and a paper bot on replayed real prices; Ctrl+C stops both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--speed", default="7200", help="replay clock multiplier (7200: two hours per second)"
        )
        parser.add_argument("--intel", type=int, default=5)
        parser.add_argument(
            "--prices", default="auto", choices=["auto", "live", "replay"], help="price source"
        )
        parser.add_argument("--chain", default="base")

    def handle(self, *args: Any, **options: Any) -> None:
        user, password = ensure_demo_user()
        credentials = Path(settings.DEMO_CREDENTIALS_FILE)
        if password is not None:
            credentials.write_text(f"username: {user.username}\npassword: {password}\n")
            credentials.chmod(0o600)
        account = get_or_create_account(user, DEMO_ACCOUNT)
        port = options["port"]
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=settings.BASE_DIR,
        )
        if _wait_for_port(port, server) is False:
            raise CommandError(
                f"the web server could not start on port {port} (in use?); try PORT=8001 make run"
            )
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        choice = choose_price_source(resumable_price_source(account) or options["prices"])
        try:
            self._banner(url, user.username, password, credentials, choice.note)
            self._run_bot(account, options, stop, choice)
            if not stop.is_set():
                self.stdout.write("The replay has ended. The web server keeps running: Ctrl+C.")
                stop.wait()
        finally:
            server.terminate()
            server.wait(timeout=10)
            self.stdout.write("Stopped the web server and the bot.")

    def _banner(
        self, url: str, username: str, password: str | None, credentials: Path, prices: str
    ) -> None:
        w = self.stdout.write
        w("")
        w("dexpaper is running on this machine (no services needed).")
        w(f"  Admin (trades, positions, thoughts): {url}/admin/")
        if password:
            w(f"  Sign in as '{username}' with password: {password}")
            w(f"  (saved in {credentials})")
        else:
            w(f"  Sign in as '{username}'; the password is in {credentials}")
            w("  (or set a new one: .venv/bin/python manage.py changepassword demo)")
        w(f"  {prices}")
        w("  Ctrl+C stops the bot after its current tick, then the server.")
        w("")

    def _run_bot(
        self,
        account: Any,
        options: dict[str, Any],
        stop: threading.Event,
        choice: SourceChoice,
    ) -> None:
        bot_settings = BotSettings(
            intel_level=options["intel"],
            chain_id=get_chain(options["chain"]).chain_id,
            prices=choice.source,
            price_note=choice.note,
            speed=Decimal(options["speed"]),
            session_name="make run",
        )
        session = start_session(account, bot_settings)
        try:
            loop = build_loop(session, stop)
        except ReplayExhaustedError:
            session.delete()
            self.stdout.write("The demo account has replayed all recorded prices: resetting it.")
            reset_account(account)
            session = start_session(account, bot_settings)
            loop = build_loop(session, stop)
        outcome: RunOutcome | None = None
        try:
            outcome = loop.run()
        finally:
            finish_session(session, outcome, "" if outcome else "bot crashed")
        s = session_summary(session)
        self.stdout.write(
            f"Bot {s['status']}: {s['ticks']} ticks, {s['trades']} trades "
            f"({s['reverted']} reverted), win rate {s['win_rate_percent']}%, fees "
            f"${s['fees_usd']:,.2f}, gas ${s['gas_usd']:,.4f}, P&L ${s['account_pnl_usd']:,.2f}"
        )


def _wait_for_port(port: int, server: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    """True once the server accepts connections; False if it exited first or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False
